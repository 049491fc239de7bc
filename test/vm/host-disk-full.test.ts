import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { Image, isMicrovmError, MicrovmError, Pool, Vm } from '../../engine';
import { microvmHome } from '../../engine/paths';
import { volumeFile } from '../../engine/mount';
import { qemuPidOf } from './qemu-proc';

/**
 * T21, host disk full. This process's $MICROVM_HOME is a copy of the real one made of
 * symlinks, except volumes/, which is a 64 MiB tmpfs; a 128 MiB (sparse) volume on it is
 * filled from the guest until the host file system runs out.
 */
const realHome = microvmHome();
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-t21-'));
const volumes = path.join(home, 'volumes');
const filler = path.join(volumes, 'filler');
const MIB = 1024 * 1024;
let mounted = false;
let pool: Pool | undefined;

before(() => {
  for (const entry of fs.readdirSync(realHome)) {
    if (entry !== 'volumes' && entry !== 'run') fs.symlinkSync(path.join(realHome, entry), path.join(home, entry));
  }
  fs.mkdirSync(volumes, { mode: 0o700 });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', 'microvm-t21', volumes]);
  mounted = true;
  process.env.MICROVM_HOME = home;
  // Placed beforehand, so that deleting it frees host space without touching the volume.
  fs.writeFileSync(filler, Buffer.alloc(24 * MIB, 1));
});

after(async () => {
  await pool?.shutdown();
  if (mounted) execFileSync('umount', [volumes]);
  fs.rmSync(home, { recursive: true, force: true });
});

const settle = <T>(promise: Promise<T>) =>
  promise.then(
    (value) => ({ value, error: undefined, at: Date.now() }),
    (error: MicrovmError) => ({ value: undefined, error, at: Date.now() }),
  );

async function sh(vm: Vm, script: string, timeoutMs = 60_000): Promise<string> {
  const result = await vm.exec({ argv: ['sh', '-c', script], timeoutMs });
  assert.equal(result.exitCode, 0, result.stderr);
  return result.stdout;
}

test('T21: a full host disk pauses the VM with E_HOST_DISK_FULL (not "unresponsive"); after space is freed it resumes and nothing is corrupted', async () => {
  const image = await Image.build({
    network: 'none',
    memoryMib: 512,
    volumes: [{ name: 'full', sizeMib: 128, mountPoint: '/data' }],
  });
  pool = image.pool({ min: 0, max: 1 });
  const vm = await pool.acquire();
  const file = volumeFile('full');
  assert.equal(path.dirname(file), volumes);
  let exitedEarly: MicrovmError | undefined;
  vm.onExit((error) => {
    exitedEarly = error;
  });

  const sum = (await sh(vm, 'head -c 41943040 /dev/urandom > /tmp/rand && sha256sum /tmp/rand')).split(' ')[0];
  const paused = new Promise<{ error: MicrovmError; at: number }>((resolve) =>
    vm.onHostDiskFull((error) => resolve({ error, at: Date.now() })),
  );
  const started = Date.now();
  // 40 MiB do not fit next to the 24 MiB filler. Its host deadline (15 s + 5 s) passes while the VM is paused.
  const fill = settle(
    vm.exec({ argv: ['sh', '-c', 'cp /tmp/rand /data/fill && sync && touch /data/done'], timeoutMs: 15_000 }),
  );

  const full = await paused;
  const fullMs = full.at - started;
  assert.ok(isMicrovmError(full.error, 'E_HOST_DISK_FULL'), full.error.message);
  assert.match(full.error.message, /host disk is full/);
  assert.ok(full.error.message.includes(file) && full.error.message.includes(volumes), full.error.message);
  assert.match(full.error.message, /vm\.resume\(\)/);
  assert.ok(isMicrovmError(full.error, 'E_HOST_DISK_FULL'));
  assert.deepEqual(full.error.details, { file, directory: volumes });
  await assert.rejects(
    vm.exec({ argv: ['true'] }),
    (err) => isMicrovmError(err, 'E_HOST_DISK_FULL'),
    'calls fail at once while paused',
  );

  // The exec's deadline passes while paused: the health check asks QEMU (io-error) and leaves the VM alone.
  const missed = await fill;
  assert.ok(isMicrovmError(missed.error, 'E_HOST_DISK_FULL'), `the fill: ${missed.error?.message}`);
  await delay(500);
  assert.equal(exitedEarly, undefined, 'the VM was not stopped');
  assert.ok(qemuPidOf(vm.id) > 0);

  fs.rmSync(filler);
  const resumedAt = Date.now();
  await vm.resume();
  const guestSum = (
    await sh(
      vm,
      'while [ ! -e /data/done ]; do sleep 0.1; done; sync; echo 3 > /proc/sys/vm/drop_caches; sha256sum /data/fill',
    )
  ).split(' ')[0];
  const doneMs = Date.now() - resumedAt;
  assert.equal(guestSum, sum, 'the file reads back intact in the guest');
  assert.equal(
    await sh(vm, 'dmesg | grep -ci -e "I/O error" -e "EXT4-fs error" || true'),
    '0\n',
    'the guest saw no I/O error',
  );
  await sh(vm, 'echo after > /data/after.txt && sync');
  await vm.release();
  await pool.shutdown();
  pool = undefined;

  execFileSync('e2fsck', ['-fn', file], { stdio: 'pipe' });
  const dumped = path.join(home, 'fill.dump');
  execFileSync('debugfs', ['-R', `dump /fill ${dumped}`, file], { stdio: 'pipe' });
  assert.equal(
    createHash('sha256').update(fs.readFileSync(dumped)).digest('hex'),
    sum,
    'the volume holds the same bytes on the host',
  );
  console.log(
    `fill -> E_HOST_DISK_FULL ${fullMs} ms; resume -> the write done and read back ${doneMs} ms; e2fsck -fn clean`,
  );
});
