import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Image, Pool, Vm, isMicrovmError, qemuBackend, type VmBackend } from '../../engine';
import { homePaths, microvmHome } from '../../engine/paths';

/**
 * The agent over AF_VSOCK (vfkit's only channel to the guest on macOS). This host has no
 * /dev/vhost-vsock, so no guest here gets a vsock device: the guest kernel's vsock loopback
 * (CID 1) stands in for the host. vsock_loopback.ko is not in the initramfs (it would let
 * guest processes reach the agent), so the test loads it from the kernel package itself.
 */
const PORT = 7000;
let pool: Pool;
let vm: Vm;

/** vsock_loopback.ko of the guest kernel, from the Debian package setup downloaded. */
function loopbackModule(): Buffer {
  const home = microvmHome();
  const release = fs.readFileSync(path.join(homePaths.assetsDir(), 'kernel-release'), 'utf8').trim();
  const deb = fs.readdirSync(path.join(home, 'downloads')).find((f) => f.startsWith(`linux-image-${release}_`));
  assert.ok(deb, `the ${release} kernel package is in ${home}/downloads`);
  const member = `./lib/modules/${release}/kernel/net/vmw_vsock/vsock_loopback.ko`;
  const script = 'dpkg-deb --fsys-tarfile "$1" | tar -xO "$2"';
  return execFileSync('sh', ['-c', script, 'sh', path.join(home, 'downloads', deb), member], {
    maxBuffer: 16 << 20,
  });
}

const ping = (port: number) => vm.exec({ argv: ['/proc/1/exe', '--vsock-ping', String(port)], timeoutMs: 30_000 });

before(async () => {
  const image = await Image.build({});
  pool = image.pool({ min: 1, max: 1 });
  vm = await pool.acquire();
  await vm.writeFile('/tmp/vsock_loopback.ko', loopbackModule());
  const loaded = await vm.exec({ argv: ['busybox', 'insmod', '/tmp/vsock_loopback.ko'] });
  assert.equal(loaded.exitCode, 0, loaded.stderr);
});

after(async () => {
  await vm?.release();
  await pool?.shutdown();
});

test('without microvm.vsock nothing listens on vsock: a connection to the agent port is refused', async () => {
  for (const port of [1024, PORT]) {
    const started = Date.now();
    const result = await ping(port);
    console.log(`# refused ping to vsock port ${port}: ${Date.now() - started} ms (${result.stderr.trim()})`);
    assert.equal(result.exitCode, 1, result.stdout);
    assert.match(result.stderr, new RegExp(`vsock port ${port}: connect: Connection reset by peer`));
  }
});

test('the agent serves its protocol on vsock: a PING is answered, and so is a second connection after the first closed', async () => {
  const server = vm.spawn({ argv: ['/proc/1/exe', '--vsock', String(PORT)], timeoutMs: 0 });
  try {
    let first = await ping(PORT);
    for (let tries = 0; first.exitCode !== 0 && tries < 50; tries++) first = await ping(PORT);
    assert.equal(first.exitCode, 0, first.stderr);
    assert.equal(first.stdout, `pong from vsock port ${PORT}\n`);
    const started = Date.now();
    const again = await vm.exec({
      argv: ['sh', '-c', `for i in 1 2 3; do /proc/1/exe --vsock-ping ${PORT} || exit; done`],
      timeoutMs: 30_000,
    });
    assert.equal(again.exitCode, 0, again.stderr);
    assert.equal(again.stdout, `pong from vsock port ${PORT}\n`.repeat(3));
    console.log(`# three vsock connections, each a PING round trip: ${Date.now() - started} ms (TCG, with exec)`);
  } finally {
    server.signal('SIGTERM');
    await server.wait();
  }
});

test('microvm.vsock=PORT on the kernel command line: PID 1 serves vsock instead of the virtio-serial port', async () => {
  // A wrapping backend is the engine's way to add kernel command-line words (BootSpec.kernelArgs).
  const vsockBackend: VmBackend = {
    name: 'qemu-vsock-test',
    capabilities: (arch) => qemuBackend.capabilities(arch),
    boot: (spec, restore) => qemuBackend.boot({ ...spec, kernelArgs: [`microvm.vsock=${PORT}`] }, restore),
  };
  const image = await Image.build({ backend: vsockBackend, snapshot: false, bootTimeoutMs: 20_000 });
  const vsockPool = image.pool({ min: 0, max: 1 });
  try {
    // The host side here speaks virtio-serial only, so the boot cannot finish: the guest console says why.
    await assert.rejects(vsockPool.acquire(), (err) => {
      assert.ok(isMicrovmError(err, 'E_BOOT_TIMEOUT'), String(err));
      assert.match(err.message, new RegExp(`microvm-agent: serving the host on vsock port ${PORT}`));
      console.log(`# ${err.message.split('\n').slice(-3).join(' | ')}`);
      return true;
    });
  } finally {
    await vsockPool.shutdown();
  }
});

test('kernel command-line words with whitespace or quotes are refused, every one at once', async () => {
  const spec = { rootDisk: '/nonexistent', memoryMib: 256, vcpus: 1, kernelArgs: ['ok=1', 'a b', '', 'q="x"'] };
  await assert.rejects(qemuBackend.boot(spec), (err) => {
    assert.ok(isMicrovmError(err, 'E_BAD_OPTION'), String(err));
    assert.match(err.message, /\["a b","","q=\\"x\\""\]/);
    return true;
  });
});
