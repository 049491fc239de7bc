import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { engineInfo, Image, type Pool, type Vm } from '../../engine';
import { removeVolume, volumeFile } from '../../engine/mount';
import { debianArm64Image } from '../helpers/debian-arm64';
import { GuestLines } from '../helpers/guest-lines';
import { pushImage } from '../helpers/registry-push';
import { startRegistry, type TestRegistry } from '../helpers/registry-server';

/**
 * arm64 guests under TCG: an image made from Debian's arm64 packages, pushed as a
 * single-platform linux/arm64 manifest to the loopback registry, runs as an aarch64 guest
 * (qemu-system-aarch64 -M virt) because its config says `architecture: arm64`. One VM from
 * the baked snapshot (network 'outbound': virtio-net) serves the exec, pty, files and forward tests; one fresh boot serves the
 * share and the volume (VMs with storage boot fresh), another a share with host file events.
 */
let tmp: string;
let registry: TestRegistry;
let ref: string;
let image: Image;
let pool: Pool;
let vm: Vm;
const volume = `arm64-test-${process.pid}`;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-arm64-'));
  registry = await startRegistry(path.join(tmp, 'registry'));
  ref = `${registry.host}/test/debian-arm64:1`;
  await pushImage(registry.base, 'test/debian-arm64', '1', debianArm64Image());
  const started = performance.now();
  // The warmup's file is in the snapshot: a VM that has it was restored from (or is) the bake's VM.
  image = await Image.build({
    ref,
    pullPolicy: 'always',
    warmupTag: 'arm64-warm',
    warmup: (warm) => warm.writeFile('/root/warm', 'baked'),
  });
  process.stderr.write(`# pull + disk + bake (or cached snapshot): ${(performance.now() - started).toFixed(0)} ms\n`);
  pool = image.pool({ min: 1, max: 1 });
  vm = await pool.acquire();
});

after(async () => {
  await vm?.release();
  await pool?.shutdown();
  await registry?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
  await removeVolume(volume).catch(() => undefined);
  fs.rmSync(volumeFile(volume), { force: true });
});

const sh = async (target: Vm, script: string) => {
  const result = await target.exec({ argv: ['sh', '-c', script] });
  assert.equal(result.exitCode, 0, `${script}\n${result.stderr}`);
  return result.stdout;
};

test('the guest is aarch64, emulated under TCG here, and engineInfo lists the architecture', async () => {
  assert.equal(await sh(vm, 'uname -m'), 'aarch64\n');
  // network 'outbound' (the default): the virtio-net NIC is up with QEMU's user-mode address.
  assert.match(await sh(vm, 'ip -4 -o addr show eth0'), /inet 10\.0\.2\.15\//);
  assert.equal(image.arch, 'aarch64');
  assert.equal(vm.accel.accel, process.arch === 'arm64' ? vm.accel.accel : 'tcg');
  assert.equal(vm.capabilities.snapshot, true);
  assert.equal(vm.capabilities.hotPlug, false);
  const info = await engineInfo();
  const arm64 = info.architectures.find((a) => a.arch === 'aarch64');
  assert.ok(arm64, `engineInfo lists aarch64: ${JSON.stringify(info.architectures)}`);
  assert.match(arm64.qemu.path, /qemu-system-aarch64$/);
  assert.match(arm64.kernel, /arm64/);
});

test('pools restore arm64 guests from the baked snapshot', async () => {
  assert.ok(image.snapshotPath, 'the image has a snapshot');
  assert.equal(await sh(vm, 'cat /root/warm'), 'baked');
  // max 1: the second VM is the replacement the pool restored after the first one's release.
  const other = await Image.fromSnapshot(image.snapshotPath);
  const restoredPool = other.pool({ min: 0, max: 1 });
  try {
    const started = performance.now();
    const restored = await restoredPool.acquire();
    process.stderr.write(`# restore + acquire: ${(performance.now() - started).toFixed(0)} ms\n`);
    try {
      assert.equal(await sh(restored, 'uname -m; cat /root/warm'), 'aarch64\nbaked');
    } finally {
      await restored.release();
    }
  } finally {
    await restoredPool.shutdown();
  }
});

test('exec: stdout, stderr and the exit code come back', async () => {
  const result = await vm.exec({ argv: ['sh', '-c', 'echo $((6 * 7)); echo oops >&2; exit 3'] });
  assert.deepEqual([result.stdout, result.stderr, result.exitCode], ['42\n', 'oops\n', 3]);
});

test('a pty spawn: the process has a terminal of the asked size', async () => {
  const child = vm.spawn({ argv: ['sh', '-c', 'tty; stty size'], tty: true, winsize: { rows: 33, cols: 101 } });
  const chunks: Buffer[] = [];
  for (let c = await child.readStdout(); c.length > 0; c = await child.readStdout()) chunks.push(c);
  const result = await child.wait();
  assert.equal(result.exitCode, 0);
  const out = Buffer.concat(chunks).toString();
  assert.match(out, /^\/dev\/pts\/\d+\r?\n33 101\r?\n$/);
});

test('files: a put file reads back whole, in the guest and on the host', async () => {
  const data = randomBytes(512 * 1024);
  await vm.writeFile('/tmp/blob.bin', data);
  assert.ok((await vm.readFile('/tmp/blob.bin')).equals(data));
  assert.equal(await sh(vm, 'wc -c < /tmp/blob.bin'), `${data.length}\n`);
});

test('a TCP forward reaches an HTTP server in the guest', async () => {
  await vm.writeFile('/srv/index.html', 'hello from aarch64\n');
  const server = vm.spawn({ argv: ['httpd', '-f', '-p', '8080', '-h', '/srv'], timeoutMs: 0 });
  try {
    const deadline = Date.now() + 20_000;
    while (!(await vm.listeningPorts()).some((l) => l.port === 8080)) {
      assert.ok(Date.now() < deadline, 'httpd listens on guest port 8080');
      await new Promise((r) => setTimeout(r, 100));
    }
    const forwarder = await vm.exposeTcp(0, 8080);
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: forwarder.port, path: '/index.html', agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => resolve(Buffer.concat(chunks).toString()));
          res.on('error', reject);
        })
        .on('error', reject);
    });
    assert.equal(body, 'hello from aarch64\n');
  } finally {
    server.signal('SIGKILL');
  }
});

test('a host folder over virtio-fs and a volume, in a freshly booted arm64 guest', async () => {
  const share = path.join(tmp, 'share');
  fs.mkdirSync(share);
  fs.writeFileSync(path.join(share, 'from-host.txt'), 'host data\n');
  const withStorage = await Image.build({
    ref,
    network: 'none',
    mounts: [{ hostPath: share, guestPath: '/workspace', protect: [] }],
    volumes: [{ name: volume, sizeMib: 64, mountPoint: '/data' }],
  });
  assert.equal(withStorage.snapshotPath, undefined, 'VMs with storage boot fresh');
  const storagePool = withStorage.pool({ min: 0, max: 1 });
  try {
    const started = performance.now();
    const fresh = await storagePool.acquire();
    process.stderr.write(`# fresh boot with a share and a volume: ${(performance.now() - started).toFixed(0)} ms\n`);
    try {
      assert.equal(await sh(fresh, 'uname -m; cat /workspace/from-host.txt'), 'aarch64\nhost data\n');
      await sh(fresh, 'echo from-guest > /workspace/from-guest.txt');
      assert.equal(fs.readFileSync(path.join(share, 'from-guest.txt'), 'utf8'), 'from-guest\n');
      assert.equal(
        await sh(fresh, 'awk \'$2 == "/data" { print $3 }\' /proc/mounts; echo kept > /data/f; cat /data/f'),
        'ext4\nkept\n',
      );
    } finally {
      await fresh.release();
    }
  } finally {
    await storagePool.shutdown();
  }
});

test('host edits of a share with fileEvents raise inotify events in the arm64 guest (microvm_fsnotify)', async () => {
  const share = path.join(tmp, 'events');
  fs.mkdirSync(share);
  fs.writeFileSync(path.join(share, 'watched.txt'), 'one\n');
  const withEvents = await Image.build({
    ref,
    network: 'none',
    mounts: [{ hostPath: share, guestPath: '/workspace', protect: [], fileEvents: true }],
  });
  const eventsPool = withEvents.pool({ min: 0, max: 1 });
  try {
    const guest = await eventsPool.acquire();
    const problems: string[] = [];
    guest.onFileEventProblem((p) => problems.push(p.message));
    let inotify: GuestLines | undefined;
    try {
      // The initramfs loaded the module (cross-built for this kernel by scripts/setup).
      assert.match(await sh(guest, 'cat /sys/module/microvm_fsnotify/parameters/delivered'), /^\d+\n$/);
      for (let waited = 0; guest.fileEventStats.length === 0; waited += 50) {
        assert.ok(waited < 30_000, `no file-event relay after 30 s: ${problems.join('; ')}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // A pty: inotifywait's stdout is line-buffered, and its "Watches established." (stderr) is the ready line.
      inotify = new GuestLines(
        guest.spawn({ argv: ['inotifywait', '-m', '--format', '%e %f', '/workspace'], tty: true, timeoutMs: 0 }),
      );
      await inotify.waitFor(/^Watches established\.$/, 0, 30_000);
      const timings: number[] = [];
      for (const [change, event] of [
        [() => fs.appendFileSync(path.join(share, 'watched.txt'), 'two\n'), /^MODIFY watched\.txt$/],
        [() => fs.writeFileSync(path.join(share, 'new.txt'), 'fresh\n'), /^CREATE new\.txt$/],
        [() => fs.rmSync(path.join(share, 'new.txt')), /^DELETE new\.txt$/],
      ] as const) {
        const mark = inotify.mark;
        const started = performance.now();
        change();
        timings.push(Math.round((await inotify.waitFor(event, mark, 10_000)).at - started));
      }
      process.stderr.write(`# host modify, create, delete -> guest inotifywait line: ${timings.join(', ')} ms\n`);
      assert.equal(await sh(guest, 'cat /workspace/watched.txt'), 'one\ntwo\n');
      assert.deepEqual(problems, []);
    } finally {
      inotify?.child.signal('SIGKILL');
      await guest.release();
    }
  } finally {
    await eventsPool.shutdown();
  }
});
