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

test('integration pattern, untrusted code: staged record-form files, a time limit, a clean VM after', async () => {
  const out = await runExample('untrusted-code.ts');
  assert.deepEqual(out.trim().split('\n'), [
    'finish: exit 0, timed out false, stdout "sum 10"',
    'spin: exit -1, timed out true, stdout "sum 10"',
    'next borrower: clean',
  ]);
});

test('integration pattern, code-execution service: concurrent requests on a min/max pool', async () => {
  const out = await runExample('code-service.ts');
  for (const [id, square] of [
    [1, 9],
    [2, 36],
    [3, 81],
    [4, 144],
  ])
    assert.match(out, new RegExp(`^request ${id}: exit 0 "job${id} squared is ${square}"$`, 'm'));
  const most = /^most VMs at once: (\d+), most requests waiting: (\d+)$/m.exec(out);
  assert.ok(most, out);
  assert.ok(Number(most[1]) >= 1 && Number(most[1]) <= 2, `more VMs than max: ${most[0]}`);
  assert.match(out, /^after: inUse 0, waiting 0, min 1, max 2$/m);
});

test('integration pattern, dev server: a long-running server fetched through forward.localAddr', async () => {
  const out = await runExample('dev-server.ts');
  assert.match(out, /^dev server at http:\/\/127\.0\.0\.1:\d+\/$/m);
  assert.match(out, /^GET \/ -> 200 dev build 1\nGET \/ -> 200 dev build 2$/m);
  assert.match(out, /^server stopped \(signal SIGTERM\)$/m);
});

test('integration pattern, snapshot and clones: a prepared VM, clones from Image.fromSnapshot', async () => {
  const out = await runExample('snapshot-clones.ts');
  assert.deepEqual(out.trim().split('\n'), [
    'prepared snapshot: prepared',
    'clone 0: changed by clone 0, service running',
    'clone 1: prepared dataset, service running',
    'clone 2: prepared dataset, service running',
  ]);
});
