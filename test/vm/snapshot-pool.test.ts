import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Image, isMicrovmError } from '../../engine';
import { qemuPidOf } from './qemu-proc';
import { testImage } from '../helpers/test-arch';

/**
 * Bake once (with a warmup) into a private snapshots dir, then restore VMs from it under TCG.
 * Each pool here restores; nothing boots from disk after the bake.
 */
const snapshotsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-snapshots-'));
let image: Image;
const bakeReasons: string[] = [];

before(async () => {
  image = await Image.build({
    ...testImage(),
    snapshotsDir,
    warmupTag: 'v1',
    warmup: async (vm) => {
      await vm.exec({ argv: ['sh', '-c', 'echo warmed > /root/warm.txt'] });
    },
    onProgress: (event) => {
      if (event.phase === 'bake') bakeReasons.push(event.reason);
    },
  });
});

after(() => fs.rmSync(snapshotsDir, { recursive: true, force: true }));

test('the first build bakes (saying why), and the bake VM is handed to the first acquire', async () => {
  assert.equal(bakeReasons.length, 1);
  assert.match(bakeReasons[0]!, /no snapshot yet/);
  assert.ok(image.snapshot?.handoff, 'the baked VM waits for the first acquire');
  const pool = image.pool({ min: 0, max: 1 });
  const vm = await pool.acquire();
  assert.equal((await vm.exec({ argv: ['cat', '/root/warm.txt'] })).stdout, 'warmed\n');
  await vm.release();
  await pool.shutdown();
});

test('20 acquire/release cycles: restoreOnRelease gives a clean VM each time; false keeps the files', async () => {
  const clean = image.pool({ min: 1, max: 1 });
  for (let i = 0; i < 20; i++) {
    const vm = await clean.acquire();
    const seen = await vm.exec({
      argv: ['sh', '-c', 'cat /tmp/mark 2>/dev/null; echo $0 > /tmp/mark; cat /root/warm.txt', String(i)],
    });
    assert.equal(seen.stdout, 'warmed\n', `cycle ${i} saw a previous cycle's file`);
    await vm.release();
  }
  await clean.shutdown();

  const reused = image.pool({ min: 1, max: 1, restoreOnRelease: false });
  const first = await reused.acquire();
  await first.writeFile('/tmp/kept', 'still here');
  await first.release();
  const second = await reused.acquire();
  assert.equal(second.id, first.id);
  assert.equal((await second.readFile('/tmp/kept')).toString(), 'still here');
  await second.release();
  await reused.shutdown();
});

test('max 2 with three acquirers: the third waits for the first release; a 500 ms acquireTimeoutMs fails with E_ACQUIRE_TIMEOUT', async () => {
  const pool = image.pool({ min: 0, max: 2, restoreOnRelease: false });
  const [a, b] = await Promise.all([pool.acquire(), pool.acquire()]);
  const third = pool.acquire();
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(pool.stats(), { alive: 2, inUse: 2, idle: 0, booting: 0, waiting: 1, min: 0, max: 2, idlePids: [] });
  await a.release();
  const c = await third;
  assert.equal(c.id, a.id);
  await Promise.all([b.release(), c.release()]);
  await pool.shutdown();

  const tight = image.pool({ min: 0, max: 1, acquireTimeoutMs: 500 });
  const held = await tight.acquire();
  const started = Date.now();
  await assert.rejects(
    tight.acquire(),
    (err) => isMicrovmError(err, 'E_ACQUIRE_TIMEOUT') && /acquireTimeoutMs/.test(err.message),
  );
  assert.ok(Date.now() - started < 2000);
  await held.release();
  await tight.shutdown();
});

test('idle VMs above min are evicted after idleTimeoutMs', async () => {
  const pool = image.pool({ min: 1, max: 3, idleTimeoutMs: 300, restoreOnRelease: false });
  const vms = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
  await Promise.all(vms.map((vm) => vm.release()));
  assert.equal(pool.stats().idle, 3);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(pool.stats().idle, 1);
  assert.equal(pool.stats().alive, 1);
  await pool.shutdown();
});

test('two VMs restored from one snapshot get different random bytes and the host wall clock', async () => {
  const pool = image.pool({ min: 2, max: 2 });
  const vms = await Promise.all([pool.acquire(), pool.acquire()]);
  const [one, two] = await Promise.all(
    // bash's $EPOCHREALTIME, not date +%s.%N: busybox's date (the arm64 image's) has no %N.
    vms.map((vm) => vm.exec({ argv: ['bash', '-c', 'head -c 32 /dev/urandom | od -An -tx1; echo $EPOCHREALTIME'] })),
  );
  const lines = (r: { stdout: string }) => r.stdout.trim().split('\n');
  assert.notEqual(lines(one!).slice(0, -1).join(), lines(two!).slice(0, -1).join());
  for (const result of [one, two]) {
    const guestSeconds = Number(lines(result!).at(-1));
    assert.ok(Math.abs(guestSeconds - Date.now() / 1000) < 2, `guest clock ${guestSeconds} is off`);
  }
  await Promise.all(vms.map((vm) => vm.release()));
  await pool.shutdown();
});

test('a pooled VM killed from outside is replaced, and its holder gets a clear error', async () => {
  const pool = image.pool({ min: 1, max: 1 });
  const vm = await pool.acquire();
  const pid = qemuPidOf(vm.id);
  const exits: string[] = [];
  vm.onExit((error) => exits.push(error.code));
  const running = vm.exec({ argv: ['sleep', '30'] });
  await new Promise((resolve) => setTimeout(resolve, 200));
  process.kill(pid, 'SIGKILL');
  const started = Date.now();
  await assert.rejects(running, (err) => isMicrovmError(err, 'E_VM_EXITED') && /SIGKILL/.test(err.message));
  assert.ok(Date.now() - started < 2000, 'the call fails within 2 s');
  assert.deepEqual(exits, ['E_VM_EXITED'], 'vm.onExit reported the death once');
  await vm.release();
  const next = await pool.acquire();
  assert.notEqual(next.id, vm.id);
  assert.equal((await next.exec({ argv: ['true'] })).exitCode, 0);
  await next.release();
  await pool.shutdown();
});

test('vm.snapshot(dir) saves a VM mid-flight; Image.fromSnapshot restores it', async () => {
  const pool = image.pool({ min: 0, max: 1 });
  const vm = await pool.acquire();
  await vm.writeFile('/root/mid-flight.txt', 'saved state');
  const dir = path.join(snapshotsDir, 'mine');
  const saved = await vm.snapshot(dir);
  assert.equal(
    (await vm.exec({ argv: ['cat', '/root/mid-flight.txt'] })).stdout,
    'saved state',
    'the VM goes on after the snapshot',
  );
  await vm.release();
  await pool.shutdown();

  const loaded = await Image.fromSnapshot(dir);
  assert.ok(saved instanceof Image);
  for (const candidate of [image, saved, loaded]) {
    assert.match(candidate.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(candidate.digest, image.manifestDigest);
    assert.equal(candidate.memoryMib, 256);
    assert.equal(candidate.vcpus, 1);
  }
  assert.equal(saved.snapshotPath, dir);
  assert.equal(loaded.snapshotPath, dir);
  assert.equal(path.dirname(image.snapshotPath ?? ''), snapshotsDir, 'a baked image restores from its snapshots dir');
  for (const candidate of [saved, loaded]) {
    const restored = candidate.pool({ min: 0, max: 1 });
    const clone = await restored.acquire();
    assert.equal((await clone.readFile('/root/mid-flight.txt')).toString(), 'saved state');
    await clone.release();
    await restored.shutdown();
  }
  await assert.rejects(Image.fromSnapshot(path.join(snapshotsDir, 'nothing-here')), (err) =>
    isMicrovmError(err, 'E_SNAPSHOT_INVALID'),
  );
});

test('a changed warmupTag, a changed extra file, a flipped byte in the memory file and a truncated state file each re-bake with a reason', async () => {
  const extra = path.join(snapshotsDir, 'extra.txt');
  fs.writeFileSync(extra, 'one');
  const build = async (warmupTag: string) => {
    const reasons: string[] = [];
    const built = await Image.build({
      ...testImage(),
      snapshotsDir,
      warmupTag,
      extraFiles: [{ hostPath: extra, guestPath: '/etc/extra.txt' }],
      onProgress: (event) => {
        if (event.phase === 'bake') reasons.push(event.reason);
      },
    });
    await built.snapshot?.handoff?.stop();
    return { built, reasons };
  };
  assert.equal((await build('a')).reasons.length, 1);
  assert.equal((await build('a')).reasons.length, 0, 'same inputs: the snapshot is reused');
  assert.match((await build('b')).reasons[0]!, /no snapshot yet/, 'a new warmupTag is a new snapshot');
  fs.writeFileSync(extra, 'two');
  const edited = await build('b');
  assert.equal(edited.reasons.length, 1, 'editing an extra file re-bakes');
  const memFile = path.join(edited.built.snapshot?.dir as string, 'mem');
  const fd = fs.openSync(memFile, 'r+');
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, 4096);
  byte[0]! ^= 0x01;
  fs.writeSync(fd, byte, 0, 1, 4096);
  fs.closeSync(fd);
  const flipped = await build('b');
  assert.match(flipped.reasons[0]!, /mem file does not match its checksum/);
  const stateFile = path.join(flipped.built.snapshot?.dir as string, 'state');
  fs.truncateSync(stateFile, 100);
  const truncated = await build('b');
  assert.match(truncated.reasons[0]!, /state file has 100 bytes/);
  const pool = truncated.built.pool({ min: 0, max: 1 });
  const vm = await pool.acquire();
  assert.equal((await vm.readFile('/etc/extra.txt')).toString(), 'two');
  await vm.release();
  await pool.shutdown();
});
