import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { Image, isMicrovmError, Vm } from '../../engine';
import { removeVolume, volumeFile } from '../../engine/mount';
import { testImage } from '../helpers/test-arch';

/** Volumes: sparse ext4 images under $MICROVM_HOME/volumes, kept across runs and re-bakes. */
const name = `test-${randomBytes(4).toString('hex')}`;

after(() => {
  fs.rmSync(volumeFile(name), { force: true });
  fs.rmSync(`${volumeFile(name)}.lock`, { force: true });
});

async function withVm<T>(
  options: { sizeMib: number; env?: Record<string, string> },
  body: (vm: Vm) => Promise<T>,
): Promise<T> {
  const image = await Image.build({
    ...testImage(),
    network: 'none',
    env: options.env ?? {},
    volumes: [{ name, sizeMib: options.sizeMib, mountPoint: '/data' }],
  });
  // min 0: no replacement VM boots (and takes the volume) after the release.
  const pool = image.pool({ min: 0, max: 1 });
  const vm = await pool.acquire();
  try {
    return await body(vm);
  } finally {
    await vm.release();
    await pool.shutdown();
  }
}

const sh = async (vm: Vm, script: string) => {
  const result = await vm.exec({ argv: ['sh', '-c', script] });
  assert.equal(result.exitCode, 0, result.stderr);
  return result.stdout;
};

test('a volume keeps its contents across two runs and a re-bake, and grows with sizeMib', async () => {
  await withVm({ sizeMib: 64 }, (vm) =>
    sh(vm, 'echo kept > /data/kept.txt && head -c 1048576 /dev/urandom > /data/blob'),
  );
  const file = volumeFile(name);
  const stat = fs.statSync(file);
  assert.equal(stat.size, 64 * 1024 * 1024);
  assert.ok(stat.blocks * 512 < stat.size / 2, 'the image is sparse');
  const sum = await withVm({ sizeMib: 64 }, (vm) => sh(vm, 'cat /data/kept.txt && sha256sum /data/blob'));
  assert.match(sum, /^kept\n/);
  // A different image configuration (another cache key: a re-bake) and a larger volume.
  const after = await withVm({ sizeMib: 96, env: { REBAKE: '1' } }, (vm) =>
    sh(vm, 'cat /data/kept.txt && sha256sum /data/blob && df -k /data | tail -1'),
  );
  assert.equal(after.split('\n').slice(0, 2).join('\n'), sum.trim());
  const totalKib = Number(after.trim().split('\n')[2]!.split(/\s+/)[1]);
  assert.ok(totalKib > 80 * 1024, `the file system grew to ${totalKib} KiB`);
  assert.equal(fs.statSync(file).size, 96 * 1024 * 1024);
});

test('after an unclean stop (QEMU killed mid-write) the guest replays the journal and the volume mounts again', async () => {
  await withVm({ sizeMib: 96 }, async (vm) => {
    await sh(vm, 'echo durable > /data/durable.txt && sync');
    void vm
      .exec({ argv: ['sh', '-c', 'while true; do echo x >> /data/churn; done'], timeoutMs: 0 })
      .catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const pid = execFileSync('pgrep', ['-f', `${volumeFile(name)}`], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number)
      .find((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('qemu'));
    assert.ok(pid, 'found QEMU');
    process.kill(pid, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }).catch(() => undefined);
  const out = await withVm({ sizeMib: 96 }, (vm) => sh(vm, 'cat /data/durable.txt /data/kept.txt'));
  assert.equal(out, 'durable\nkept\n');
});

test('a full volume gives ENOSPC in the guest; the VM and the data already there are fine', async () => {
  await withVm({ sizeMib: 96 }, async (vm) => {
    await sh(vm, 'echo durable > /data/durable.txt && sync');
    // dd, not head: busybox's head (the arm64 image's) fails without a message on a write error.
    const fill = await vm.exec({ argv: ['sh', '-c', 'dd if=/dev/zero of=/data/fill bs=1M count=200'] });
    assert.notEqual(fill.exitCode, 0);
    assert.match(fill.stderr, /No space left on device/);
    assert.equal(await sh(vm, 'cat /data/durable.txt'), 'durable\n');
    await sh(vm, 'rm /data/fill && echo room > /data/room.txt');
    assert.equal(await sh(vm, 'cat /data/room.txt'), 'room\n');
  });
});

test('a volume whose metadata the guest wrecked: host root never runs e2fsck or resize2fs on it; it fails clearly and can be recreated', async () => {
  // Spies first on PATH: if the engine ran an ext4 tool on the guest's image, the sentinel would appear.
  const spy = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-spy-'));
  const sentinel = path.join(spy, 'ran');
  for (const tool of ['e2fsck', 'fsck.ext4', 'resize2fs', 'debugfs', 'tune2fs', 'dumpe2fs']) {
    fs.writeFileSync(path.join(spy, tool), `#!/bin/sh\necho ${tool} "$@" >> ${sentinel}\nexit 0\n`, { mode: 0o755 });
  }
  const savedPath = process.env.PATH;
  process.env.PATH = `${spy}:${savedPath}`;
  try {
    // As guest root: raw writes over the superblock and group descriptors of its own disk.
    await withVm({ sizeMib: 96 }, (vm) =>
      sh(
        vm,
        'sync; dev=$(awk \'$2 == "/data" { print $1 }\' /proc/mounts); dd if=/dev/urandom of=$dev bs=4096 count=16 conv=notrunc 2>/dev/null; sync; echo ok',
      ),
    );
    await assert.rejects(
      withVm({ sizeMib: 128 }, () => Promise.resolve()),
      (err: unknown) =>
        isMicrovmError(err, 'E_VOLUME') &&
        (err as Error).message.includes(volumeFile(name)) &&
        /remove the volume/.test((err as Error).message),
    );
    assert.equal(
      fs.existsSync(sentinel),
      false,
      `the host ran: ${fs.existsSync(sentinel) ? fs.readFileSync(sentinel, 'utf8') : ''}`,
    );
    await removeVolume(name);
    assert.equal(
      await withVm({ sizeMib: 64 }, (vm) => sh(vm, 'ls -A /data; echo fresh > /data/f && cat /data/f')),
      'lost+found\nfresh\n',
    );
  } finally {
    process.env.PATH = savedPath;
    fs.rmSync(spy, { recursive: true, force: true });
  }
});
