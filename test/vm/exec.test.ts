import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Image, Pool, Vm, isMicrovmError } from '../../engine';
import { testArch, testImage } from '../helpers/test-arch';

/** One real VM (TCG here) serves every test in this file, as a user's session would. */
let pool: Pool;
let vm: Vm;

before(async () => {
  const image = await Image.build(testImage());
  pool = image.pool({ min: 1, max: 1 });
  vm = await pool.acquire();
});

after(async () => {
  await vm?.release();
  await pool?.shutdown();
});

test('exit codes, env and cwd reach the guest process', async () => {
  const result = await vm.exec({
    argv: ['sh', '-c', 'echo "$GREETING from $(pwd)"; exit 5'],
    env: { GREETING: 'hi' },
    cwd: '/tmp',
  });
  assert.equal(result.stdout, 'hi from /tmp\n');
  assert.equal(result.exitCode, 5);
  assert.equal(result.signal, null);
  assert.equal(result.timedOut, false);
  assert.ok(result.peakRssKib > 0);
});

test('the guest runs its own kernel, not the host one', async () => {
  const result = await vm.exec({ argv: ['uname', '-r'] });
  assert.equal(result.exitCode, 0);
  assert.match(result.stdout, testArch() === 'aarch64' ? /arm64/ : /cloud-amd64/);
});

test('1 MiB of stdout arrives intact', async () => {
  const result = await vm.exec({
    argv: ['sh', '-c', 'head -c 1048576 /dev/urandom > /tmp/big; sha256sum /tmp/big >&2; cat /tmp/big'],
    encoding: 'buffer',
  });
  assert.equal(result.stdout.length, 1024 * 1024);
  const guestSum = result.stderr.toString().split(' ')[0];
  assert.equal(createHash('sha256').update(result.stdout).digest('hex'), guestSum);
});

test('a timeout kills the process: exit code -1, SIGKILL, timedOut', async () => {
  const started = Date.now();
  const result = await vm.exec({ argv: ['sleep', '100'], timeoutMs: 500 });
  assert.equal(result.exitCode, -1);
  assert.equal(result.signal, 'SIGKILL');
  assert.equal(result.timedOut, true);
  assert.ok(Date.now() - started < 10_000);
});

test('chain runs the next command only after a success', async () => {
  const ok = await vm.exec({
    argv: ['echo', 'one'],
    chain: [
      ['echo', 'two'],
      ['sh', '-c', 'echo three; exit 4'],
      ['echo', 'never'],
    ],
  });
  assert.equal(ok.stdout, 'one\ntwo\nthree\n');
  assert.equal(ok.exitCode, 4);
});

test('staged files are written first, with their modes', async () => {
  const result = await vm.exec({
    argv: ['/opt/t/run.sh'],
    stageFiles: [
      { path: '/opt/t/run.sh', data: '#!/bin/sh\ncat /opt/t/data.txt\n', mode: 0o755 },
      { path: '/opt/t/data.txt', data: 'staged' },
    ],
  });
  assert.equal(result.stdout, 'staged');
  assert.equal(result.exitCode, 0);
  const mode = await vm.exec({ argv: ['stat', '-c', '%a', '/opt/t/run.sh', '/opt/t/data.txt'] });
  assert.equal(mode.stdout, '755\n644\n');
});

test("staged files in the seed's record form take stageFilesMode", async () => {
  const result = await vm.exec({
    argv: ['sh', '/app/main.sh'],
    stageFiles: { '/app/main.sh': 'cat /app/data.bin | wc -c\n', '/app/data.bin': Buffer.alloc(1000, 7) },
    stageFilesMode: 0o600,
  });
  assert.equal(result.stdout.trim(), '1000');
  assert.equal((await vm.exec({ argv: ['stat', '-c', '%a', '/app/main.sh', '/app/data.bin'] })).stdout, '600\n600\n');
});

test('a program that does not exist exits 127 with a message', async () => {
  const result = await vm.exec({ argv: ['no-such-command'] });
  assert.equal(result.exitCode, 127);
  assert.match(result.stderr, /no-such-command/);
});

test('spawn: stdin and stdout interleave', async () => {
  const child = vm.spawn({ argv: ['sh', '-c', 'while read line; do echo "got $line"; done'] });
  for (const word of ['alpha', 'beta', 'gamma']) {
    await child.writeStdin(`${word}\n`);
    assert.equal((await child.readStdout()).toString(), `got ${word}\n`);
  }
  child.closeStdin();
  assert.equal((await child.wait()).exitCode, 0);
});

test('spawn: signal 15 ends sleep 100', async () => {
  const child = vm.spawn({ argv: ['sleep', '100'], timeoutMs: 0 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  child.signal('SIGTERM');
  const result = await child.wait();
  assert.equal(result.signal, 'SIGTERM');
  assert.equal(result.exitCode, -1);
  assert.equal(result.timedOut, false);
});

test('tty: stty size reports the winsize, and again after a resize', async () => {
  const child = vm.spawn({
    argv: ['sh', '-c', 'stty size; read go; stty size'],
    tty: true,
    winsize: { rows: 33, cols: 101 },
  });
  let screen = '';
  const readUntil = async (pattern: RegExp) => {
    while (!pattern.test(screen)) {
      const chunk = await child.readStdout();
      if (chunk.length === 0) break;
      screen += chunk.toString();
    }
  };
  await readUntil(/33 101/);
  child.resize(50, 120);
  await new Promise((resolve) => setTimeout(resolve, 100));
  await child.writeStdin('go\r');
  await readUntil(/50 120/);
  assert.match(screen, /33 101[\s\S]*50 120/);
  assert.equal((await child.wait()).exitCode, 0);
});

test('files: a binary round trip, and more than 4 MiB is refused with a clear error', async () => {
  const data = randomBytes(3 * 1024 * 1024);
  await vm.writeFile('/tmp/blob.bin', data, { mode: 0o600 });
  assert.ok((await vm.readFile('/tmp/blob.bin')).equals(data));
  assert.equal((await vm.exec({ argv: ['stat', '-c', '%a', '/tmp/blob.bin'] })).stdout, '600\n');
  await assert.rejects(
    vm.writeFile('/tmp/huge', Buffer.alloc(4 * 1024 * 1024 + 1)),
    (err) => isMicrovmError(err, 'E_FILE_TOO_LARGE') && /\/tmp\/huge/.test(err.message),
  );
  await vm.exec({ argv: ['sh', '-c', 'head -c 5000000 /dev/zero > /tmp/big5'] });
  await assert.rejects(
    vm.readFile('/tmp/big5'),
    (err) => isMicrovmError(err, 'E_FILE_TOO_LARGE') && /big5/.test(err.message),
  );
  await assert.rejects(vm.readFile('/tmp/does-not-exist'), (err) => isMicrovmError(err, 'E_FILE_NOT_FOUND'));
});

test('100 sequential execs on one VM', async () => {
  for (let i = 0; i < 100; i++) {
    const result = await vm.exec({ argv: ['echo', String(i)] });
    assert.equal(result.stdout, `${i}\n`);
  }
});

test('workloadSignal without a workload is a clear error', async () => {
  await assert.rejects(vm.workloadSignal('SIGHUP'), (err) => isMicrovmError(err, 'E_NO_WORKLOAD'));
});

test('abort: exec and spawn kill the guest process and fail with E_ABORTED; the VM goes on', async () => {
  const isAlive = async (pidFile: string) =>
    (await vm.exec({ argv: ['sh', '-c', `kill -0 "$(cat ${pidFile})" 2>/dev/null`] })).exitCode === 0;
  const waitForPid = async (pidFile: string) => {
    while ((await vm.exec({ argv: ['test', '-s', pidFile] })).exitCode !== 0)
      await new Promise((r) => setTimeout(r, 50));
  };
  const aborted = (err: unknown) => isMicrovmError(err, 'E_ABORTED') && err.name === 'AbortError';

  const controller = new AbortController();
  const running = vm.exec({
    argv: ['sh', '-c', 'echo $$ > /tmp/exec.pid; exec sleep 300'],
    timeoutMs: 0,
    signal: controller.signal,
  });
  await waitForPid('/tmp/exec.pid');
  controller.abort();
  await assert.rejects(running, aborted);
  assert.equal(await isAlive('/tmp/exec.pid'), false, 'the exec process is gone');

  const spawnAbort = new AbortController();
  const child = vm.spawn({
    argv: ['sh', '-c', 'echo $$ > /tmp/spawn.pid; echo started; exec sleep 300'],
    timeoutMs: 0,
    signal: spawnAbort.signal,
  });
  assert.equal((await child.readStdout()).toString(), 'started\n');
  spawnAbort.abort();
  await assert.rejects(child.wait(), aborted);
  assert.equal((await child.readStdout()).length, 0);
  assert.equal(await isAlive('/tmp/spawn.pid'), false, 'the spawned process is gone');

  await assert.rejects(vm.exec({ argv: ['true'], signal: AbortSignal.abort() }), aborted);
  assert.throws(() => vm.spawn({ argv: ['true'], signal: AbortSignal.abort() }), aborted);
  assert.equal((await vm.exec({ argv: ['echo', 'still here'] })).stdout, 'still here\n');
});
