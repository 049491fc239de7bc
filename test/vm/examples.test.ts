import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';

/**
 * Each program in examples/ runs for real, as a user would run it (its own Node process, the
 * embedded default image, no registry), and prints what its pattern promises.
 */
const root = path.join(__dirname, '../..');

function runExample(name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join('examples', name)],
      { cwd: root, timeout: 300_000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${name} failed: ${err.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

test('quick start: build, pool, acquire, exec, release', async () => {
  const out = await runExample('quick-start.ts');
  assert.match(out, /^hello from Linux \S+cloud-amd64$/m);
  assert.match(out, /^exit code 0 in \d+ ms$/m);
  assert.match(out, /^pool: \{"alive":\d,"inUse":1,/m);
});

test('streaming spawn with a pty: stdin, output as it comes, a resize, the end', async () => {
  const out = await runExample('streaming-spawn.ts');
  assert.deepEqual(out.trim().split('\n'), ['24 80', 'hello, microvm', '40 120', 'exit code 0']);
});

test('files: writeFile, readFile and stageFiles in the record form', async () => {
  const out = await runExample('files.ts');
  assert.deepEqual(out.trim().split('\n'), [
    'readFile: written by the host',
    'config says: staged',
    '4096',
    'from the guest: made in the guest',
  ]);
});

test('exposeTcp: a guest web server fetched from the host at localAddr', async () => {
  const out = await runExample('expose-tcp.ts');
  assert.match(out, /^forwarding 127\.0\.0\.1:\d+ -> guest port 8080$/m);
  assert.match(out, /^HTTP 200: hello through the forward$/m);
});

test('snapshot: vm.snapshot, Image.fromSnapshot, a pool of clones', async () => {
  const out = await runExample('snapshot.ts');
  assert.match(out, /^saved \/\S+\/prepared \(256 MiB, 1 vCPU, sha256:[0-9a-f]{12}\.\.\.\)$/m);
  assert.match(out, /^clone a: prepared before the snapshot$/m);
  assert.match(out, /^clone b: prepared before the snapshot$/m);
});
