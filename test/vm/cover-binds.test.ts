import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Image, Pool, Vm } from '../../engine';
import { removeVolume } from '../../engine/mount';

/**
 * A volume covers the host's copy beneath it (node_modules: the user's own, with .bin scripts
 * the host runs, or the type projection) in every share of that host folder, not only in the
 * share the volume is mounted under: a second bind of the folder (devcontainer mounts, a
 * compose service's `..:/mirror`) must not reach it either.
 */
const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-cover-')));
const volume = `test-cover-${randomBytes(4).toString('hex')}`;
const HOST_SCRIPT = '#!/bin/sh\necho the host jest\n';
let pool: Pool;
let vm: Vm;

before(async () => {
  fs.mkdirSync(path.join(root, 'node_modules', '.bin'), { recursive: true });
  fs.writeFileSync(path.join(root, 'node_modules', '.bin', 'jest'), HOST_SCRIPT, { mode: 0o755 });
  fs.writeFileSync(path.join(root, 'file.txt'), 'shared\n');
  const image = await Image.build({
    network: 'none',
    mounts: [
      { hostPath: root, guestPath: '/ws' },
      { hostPath: root, guestPath: '/mirror' },
    ],
    volumes: [{ name: volume, sizeMib: 64, mountPoint: '/ws/node_modules' }],
  });
  pool = image.pool({ min: 0, max: 1 });
  vm = await pool.acquire();
});

after(async () => {
  await vm?.release();
  await pool?.shutdown();
  await removeVolume(volume);
  fs.rmSync(root, { recursive: true, force: true });
});

test("a second share of the folder shows the volume-covered node_modules empty and read-only; the host's scripts stay as they were", async () => {
  const run = (script: string) => vm.exec({ argv: ['sh', '-c', script] });
  assert.equal((await run('cat /mirror/file.txt')).stdout, 'shared\n', 'the second share works');
  const listed = await run('ls -A /mirror/node_modules');
  assert.equal(listed.stdout, '', `the host copy is covered: ${listed.stdout}${listed.stderr}`);
  for (const attempt of [
    'echo evil > /mirror/node_modules/.bin/jest',
    'mkdir -p /mirror/node_modules/.bin',
    'echo evil > /mirror/node_modules/planted.js',
    'mv /mirror/node_modules /mirror/nm-old',
    'rm -rf /mirror/node_modules',
  ]) {
    const result = await run(attempt);
    assert.notEqual(result.exitCode, 0, `${attempt} must fail: ${result.stderr}`);
  }
  assert.equal((await run('echo mine > /ws/node_modules/x && cat /ws/node_modules/x')).stdout, 'mine\n');
  assert.equal(fs.readFileSync(path.join(root, 'node_modules', '.bin', 'jest'), 'utf8'), HOST_SCRIPT);
  assert.deepEqual(fs.readdirSync(path.join(root, 'node_modules')), ['.bin']);
  assert.ok(fs.existsSync(path.join(root, 'node_modules')));
});
