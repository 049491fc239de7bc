import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Image } from '../../engine';
import { homePaths } from '../../engine/paths';

/** The default image with `User: "1000:1000"` in its config, as a new OCI layout. */
function layoutWithUser(user: string): string {
  const source = homePaths.defaultImage();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-user-image-'));
  fs.cpSync(source, dir, { recursive: true });
  const blob = (digest: string) => path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const write = (data: Buffer) => {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    fs.writeFileSync(blob(digest), data);
    return { digest, size: data.length };
  };
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
  const manifest = JSON.parse(fs.readFileSync(blob(index.manifests[0].digest), 'utf8'));
  const config = JSON.parse(fs.readFileSync(blob(manifest.config.digest), 'utf8'));
  config.config = { ...config.config, User: user };
  manifest.config = { ...manifest.config, ...write(Buffer.from(JSON.stringify(config))) };
  index.manifests[0] = { ...index.manifests[0], ...write(Buffer.from(JSON.stringify(manifest))) };
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index));
  return dir;
}

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

test('processes run as the image config User', async () => {
  const dir = layoutWithUser('1000:1000');
  dirs.push(dir);
  const image = await Image.build({ ref: dir, snapshot: false });
  const pool = image.pool({ min: 0, max: 1 });
  const vm = await pool.acquire();
  try {
    // The default image's WorkingDir is /root, which uid 1000 cannot enter.
    const ids = await vm.exec({
      argv: ['sh', '-c', 'id -u; id -g; touch /tmp/mine; stat -c %u /tmp/mine'],
      cwd: '/tmp',
    });
    assert.equal(ids.stdout, '1000\n1000\n1000\n');
    const denied = await vm.exec({ argv: ['sh', '-c', 'echo x > /root/nope'], cwd: '/tmp' });
    assert.notEqual(denied.exitCode, 0, 'the user is not root');
  } finally {
    await vm.release();
    await pool.shutdown();
  }
});
