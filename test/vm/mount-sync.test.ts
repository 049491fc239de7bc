import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { Image, Pool, Vm } from '../../engine';
import { SLOW } from '../helpers/slow';
import { testImage } from '../helpers/test-arch';

/** A live share both ways: host edits reach the guest without a remount; guest trees land on the host. */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-sync-'));
let pool: Pool;
let vm: Vm;

before(async () => {
  fs.chmodSync(dir, 0o755);
  const image = await Image.build({
    ...testImage(),
    network: 'none',
    mounts: [{ hostPath: dir, guestPath: '/workspace', protect: [] }],
  });
  pool = image.pool({ min: 1, max: 1 });
  vm = await pool.acquire();
});

after(async () => {
  await vm?.release();
  await pool?.shutdown();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a host edit is visible to a guest cat within 1 s', async () => {
  fs.writeFileSync(path.join(dir, 'edit.txt'), 'before\n');
  assert.equal((await vm.exec({ argv: ['cat', '/workspace/edit.txt'] })).stdout, 'before\n');
  fs.writeFileSync(path.join(dir, 'edit.txt'), 'after, longer\n');
  const started = Date.now();
  for (;;) {
    const { stdout } = await vm.exec({ argv: ['cat', '/workspace/edit.txt'] });
    if (stdout === 'after, longer\n') break;
    assert.ok(Date.now() - started < 1000, `still ${JSON.stringify(stdout)} after ${Date.now() - started} ms`);
  }
  console.log(`host edit seen by the guest after ${Date.now() - started} ms`);
});

test('a 10k-file tree created in the guest appears on the host intact', SLOW, async () => {
  const script =
    'cd /workspace && mkdir tree && for d in $(seq 0 99); do mkdir tree/d$d; done && ' +
    'for i in $(seq 0 9999); do echo "file $i" > tree/d$((i % 100))/f$i; done && sync';
  const started = Date.now();
  const result = await vm.exec({ argv: ['bash', '-c', script], timeoutMs: 300_000 });
  assert.equal(result.exitCode, 0, result.stderr);
  console.log(`10k files created through virtio-fs in ${Date.now() - started} ms`);
  const guestSum = (
    await vm.exec({ argv: ['bash', '-c', 'cd /workspace/tree && find . -type f | sort | xargs cat | sha256sum'] })
  ).stdout.split(' ')[0];
  const files: string[] = [];
  for (const d of fs.readdirSync(path.join(dir, 'tree')))
    for (const f of fs.readdirSync(path.join(dir, 'tree', d))) files.push(`./${d}/${f}`);
  assert.equal(files.length, 10_000);
  files.sort();
  const hash = createHash('sha256');
  for (const f of files) hash.update(fs.readFileSync(path.join(dir, 'tree', f)));
  assert.equal(hash.digest('hex'), guestSum);
  assert.equal(fs.readFileSync(path.join(dir, 'tree', 'd42', 'f4242'), 'utf8'), 'file 4242\n');
});
