import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { isMicrovmError } from '../../engine/errors';
import { qemuBackend } from '../../engine/backend/qemu';
import { defaultBackend } from '../../engine/backend/select';
import { vfkitArgv, vfkitKernelCmdline, type VfkitSpec } from '../../engine/backend/vfkit/argv';
import { vfkitBackend } from '../../engine/backend/vfkit/backend';
import { findVfkit, gatherVfkitHostFacts } from '../../engine/backend/vfkit/detect';
import { vfkitExitError } from '../../engine/backend/vfkit/failures';
import { decideVfkitHost, parseVfkitVersion, type VfkitHostFacts } from '../../engine/backend/vfkit/host';
import { kernelPacking, uncompressedKernel } from '../../engine/backend/vfkit/kernel';
import { probeBoot } from '../../engine/backend/vfkit/probe';
import { parseRunState, runStateError, VfkitRest } from '../../engine/backend/vfkit/rest';

/** The vfkit backend's parts that run on Linux: argv, host detection, error and state mapping, REST, kernel. */

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-vfkit-test-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const SPEC: VfkitSpec = {
  kernel: '/Users/me/.cache/microvm/vfkit/kernels/abc.Image',
  initrd: '/Users/me/.cache/microvm/assets/initrd.cpio',
  cmdline: vfkitKernelCmdline({ rootDisk: true, agentPort: 1024 }),
  memoryMib: 512,
  vcpus: 2,
  disks: [
    { path: '/Users/me/.cache/microvm/rootfs/root.ext4', readOnly: true },
    { path: '/Users/me/.cache/microvm/volumes/cache.ext4', readOnly: false },
  ],
  shares: [{ hostPath: '/Users/me/src/app', tag: 'share0' }],
  agent: { port: 1024, socket: '/tmp/vm1/agent.sock' },
  consoleLog: '/tmp/vm1/console.log',
  restSocket: '/tmp/vm1/rest.sock',
  network: true,
  pidFile: '/tmp/vm1/vfkit.pid',
};

test('the vfkit command line: Linux bootloader, resources, disks, share, vsock agent, NIC, console, REST', () => {
  assert.deepEqual(vfkitArgv(SPEC), [
    '--cpus',
    '2',
    '--memory',
    '512',
    '--bootloader',
    'linux,kernel=/Users/me/.cache/microvm/vfkit/kernels/abc.Image,initrd=/Users/me/.cache/microvm/assets/initrd.cpio,' +
      'cmdline="console=hvc0 panic=-1 quiet rdinit=/init microvm.root=/dev/vda microvm.rootfstype=ext4 microvm.vsock=1024"',
    '--device',
    'virtio-blk,path=/Users/me/.cache/microvm/rootfs/root.ext4,readonly',
    '--device',
    'virtio-blk,path=/Users/me/.cache/microvm/volumes/cache.ext4',
    '--device',
    'virtio-fs,sharedDir=/Users/me/src/app,mountTag=share0',
    '--device',
    'virtio-vsock,port=1024,socketURL=/tmp/vm1/agent.sock,connect',
    '--device',
    'virtio-net,nat',
    '--device',
    'virtio-serial,logFilePath=/tmp/vm1/console.log',
    '--device',
    'virtio-rng',
    '--restful-uri',
    'unix:///tmp/vm1/rest.sock',
    '--pidfile',
    '/tmp/vm1/vfkit.pid',
  ]);
  const noNic = vfkitArgv({ ...SPEC, network: false, shares: [], disks: [], pidFile: undefined });
  assert.ok(!noNic.includes('virtio-net,nat'), 'network none: no NIC');
  assert.ok(!noNic.includes('--pidfile'));
});

test('values vfkit would split at a comma or a quote are refused, every one at once', () => {
  assert.throws(
    () =>
      vfkitArgv({
        ...SPEC,
        disks: [{ path: '/Users/me/a,b.ext4', readOnly: true }],
        shares: [{ hostPath: '/Users/me/src', tag: 'bad tag' }],
        cmdline: ['init="x"'],
        agent: { port: 5, socket: '/tmp/s' },
      }),
    (err) => {
      assert.ok(isMicrovmError(err, 'E_BAD_OPTION'));
      assert.match(err.message, /disk "\/Users\/me\/a,b.ext4" holds a comma/);
      assert.match(err.message, /kernel command line .* holds a quote/);
      assert.match(err.message, /share tag "bad tag"/);
      assert.match(err.message, /vsock port 5/);
      return true;
    },
  );
});

const MAC: VfkitHostFacts = {
  platform: 'darwin',
  macosVersion: '14.5',
  machine: 'arm64',
  vfkit: { path: '/opt/homebrew/bin/vfkit', versionOutput: 'vfkit version: v0.6.1\n' },
};

test('capabilities on Apple silicon, macOS 14: hvf, vsock, virtio-fs; no snapshots (vfkit has no save/restore)', () => {
  const host = decideVfkitHost(MAC);
  assert.ok(host.ok);
  assert.equal(host.guestArch, 'aarch64');
  assert.equal(host.vfkitVersion, '0.6.1');
  assert.equal(host.frameworkSaveRestore, true);
  assert.deepEqual(host.capabilities, {
    backend: 'vfkit',
    accel: 'hvf',
    isolation: 'hardware',
    snapshot: false,
    snapshotWithShares: false,
    hotPlug: false,
    virtioFs: true,
    vsock: true,
  });
  assert.ok(host.notes.some((n) => /experimental/.test(n)));
});

test('capabilities on an Intel Mac with macOS 12: x86_64 guests, no virtio-fs, no framework save/restore', () => {
  const host = decideVfkitHost({ ...MAC, macosVersion: '12.7.4', machine: 'x86_64' });
  assert.ok(host.ok);
  assert.equal(host.guestArch, 'x86_64');
  assert.equal(host.capabilities.virtioFs, false);
  assert.equal(host.frameworkSaveRestore, false);
  assert.ok(host.notes.some((n) => /virtio-fs needs macOS 13/.test(n)));
});

test('vfkit cannot run: not macOS, macOS 11, unknown hardware, no vfkit, not vfkit', () => {
  const reason = (facts: VfkitHostFacts) => {
    const host = decideVfkitHost(facts);
    assert.ok(!host.ok);
    return host.reason;
  };
  assert.match(reason({ platform: 'linux' }), /macOS only.*this host is linux/);
  assert.match(reason({ ...MAC, macosVersion: '11.7' }), /older than 12/);
  assert.match(reason({ ...MAC, macosVersion: undefined }), /no macOS version/);
  assert.match(reason({ ...MAC, machine: 'ppc' }), /unknown Mac hardware "ppc"/);
  assert.match(reason({ ...MAC, vfkit: undefined }), /brew install vfkit/);
  assert.match(reason({ ...MAC, vfkit: { path: '/bin/x', versionOutput: 'x 1.0' } }), /not vfkit's version line/);
  assert.equal(parseVfkitVersion('vfkit version: 0.5.1-12-gdeadbee'), '0.5.1-12-gdeadbee');
});

/** A directory of fake commands that print fixed outputs, as PATH for detection. */
function fakeCommands(outputs: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(tmp, 'bin-'));
  for (const [name, text] of Object.entries(outputs))
    fs.writeFileSync(path.join(dir, name), `#!/bin/sh\nprintf '${text}'\n`, { mode: 0o755 });
  return dir;
}

test('detection runs sw_vers, uname and vfkit --version as PATH finds them (fakes here), and nothing on Linux', async () => {
  const bin = fakeCommands({ sw_vers: '15.1\\n', uname: 'arm64\\n', vfkit: 'vfkit version: v0.6.1\\n' });
  const facts = await gatherVfkitHostFacts({ PATH: bin }, 'darwin');
  assert.deepEqual(facts, {
    platform: 'darwin',
    macosVersion: '15.1',
    machine: 'arm64',
    vfkit: { path: path.join(bin, 'vfkit'), versionOutput: 'vfkit version: v0.6.1\n' },
  });
  assert.ok(decideVfkitHost(facts).ok);
  const none = fakeCommands({ sw_vers: '14.0\\n', uname: 'x86_64\\n' });
  const missing = await gatherVfkitHostFacts({ PATH: none }, 'darwin');
  assert.equal(missing.vfkit, undefined, 'no vfkit on PATH (nor in the Homebrew directories of this Linux host)');
  assert.equal(findVfkit({ MICROVM_VFKIT: '/opt/vfkit', PATH: bin }), '/opt/vfkit', 'MICROVM_VFKIT wins');
  assert.deepEqual(await gatherVfkitHostFacts({ PATH: bin }, 'linux'), { platform: 'linux' });
});

test("vfkit's failures become engine errors with the next step", () => {
  const error = (output: string, code: number | null = 1, signal: NodeJS.Signals | null = null) =>
    vfkitExitError({ code, signal, output }, 'boot');
  const entitlement = error(
    'Error Domain=VZErrorDomain Code=2 "The process doesn’t have the “com.apple.security.virtualization” entitlement."',
  );
  assert.equal(entitlement.code, 'E_ACCEL_UNAVAILABLE');
  assert.match(entitlement.message, /brew reinstall vfkit/);
  const compressed = error('level=fatal msg="kernel must be uncompressed, /x/vmlinuz is a compressed file"');
  assert.equal(compressed.code, 'E_BOOT_FAILED');
  assert.match(compressed.message, /compressed kernel/);
  assert.equal(error('Error: unknown flag: --bootloader').code, 'E_BACKEND_UNAVAILABLE');
  assert.equal(error('level=fatal msg="timeout waiting for VM state"').code, 'E_BOOT_TIMEOUT');
  assert.equal(error('listen unix /tmp/x/rest.sock: bind: address already in use').code, 'E_STATE_DIR');
  assert.equal(error('level=fatal msg="hypervisor virtualization error"').code, 'E_BOOT_FAILED');
  assert.equal(error('', 0).code, 'E_VM_EXITED');
  assert.match(error('', null, 'SIGKILL').message, /killed by SIGKILL/);
  const other = error('something else\nlast line', 3);
  assert.equal(other.code, 'E_BOOT_FAILED');
  assert.match(other.message, /status 3 while the VM booted \("something else \| last line"\)/);
  assert.equal(vfkitExitError({ code: 3, signal: null, output: '' }, 'run').code, 'E_VM_EXITED');
});

test('REST states map to what calls on the VM fail with', () => {
  assert.equal(parseRunState('VirtualMachineStateRunning'), 'running');
  assert.equal(runStateError('running', 'vm1'), undefined);
  assert.equal(runStateError('starting', 'vm1'), undefined);
  assert.equal(runStateError('stopped', 'vm1')?.code, 'E_VM_EXITED');
  assert.match(runStateError('error', 'vm1')?.message ?? '', /error state/);
  assert.throws(
    () => parseRunState('VirtualMachineStateWeird'),
    (err) => isMicrovmError(err, 'E_BACKEND_UNAVAILABLE'),
  );
});

test("the REST client speaks vfkit's /vm/state on a Unix socket", async () => {
  const socket = path.join(tmp, 'rest.sock');
  const changes: unknown[] = [];
  let state = 'VirtualMachineStateRunning';
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/vm/state') {
      res.end(JSON.stringify({ state, canStop: true, canPause: true }));
      return;
    }
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      changes.push(JSON.parse(body));
      if (JSON.parse(body).state === 'Bogus') {
        res.statusCode = 500;
        res.end('invalid new VMState: Bogus');
        return;
      }
      state = 'VirtualMachineStateStopped';
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  try {
    const rest = new VfkitRest(socket);
    assert.equal(await rest.state(), 'running');
    await rest.change('Stop');
    assert.deepEqual(changes, [{ state: 'Stop' }]);
    assert.equal(await rest.state(), 'stopped');
    await assert.rejects(
      rest.change('Bogus' as 'Stop'),
      (err) => isMicrovmError(err, 'E_BACKEND_UNAVAILABLE') && /HTTP 500/.test(err.message),
    );
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  await assert.rejects(
    new VfkitRest(path.join(tmp, 'gone.sock')).state(),
    (err) => isMicrovmError(err, 'E_VM_EXITED') && /ENOENT/.test(err.message),
  );
});

test("a gzip'd kernel is unpacked once into the cache; a plain one is used as it is; EFI zboot is refused", async () => {
  const image = Buffer.concat([Buffer.from('ARMd'), Buffer.alloc(4096, 7)]);
  const packed = path.join(tmp, 'vmlinuz');
  fs.writeFileSync(packed, gzipSync(image));
  const cache = path.join(tmp, 'kernels');
  const unpacked = await uncompressedKernel(packed, cache);
  assert.ok(unpacked.startsWith(cache));
  assert.deepEqual(fs.readFileSync(unpacked), image);
  assert.equal(await uncompressedKernel(packed, cache), unpacked, 'cached');
  assert.deepEqual(fs.readdirSync(cache), [path.basename(unpacked)], 'no temp file is left');
  assert.equal(await uncompressedKernel(unpacked, cache), unpacked, 'a plain Image as it is');
  const zboot = Buffer.concat([Buffer.from('MZ\0\0zimg'), Buffer.alloc(64)]);
  assert.equal(kernelPacking(zboot), 'efi-zboot');
  fs.writeFileSync(path.join(tmp, 'zboot'), zboot);
  await assert.rejects(uncompressedKernel(path.join(tmp, 'zboot'), cache), (err) =>
    isMicrovmError(err, 'E_SETUP_MISSING'),
  );
});

test('backend selection: MICROVM_BACKEND, vfkit by default on macOS only, and a clear error for vfkit on Linux', async () => {
  assert.equal(defaultBackend({}, 'linux'), qemuBackend);
  assert.equal(defaultBackend({ MICROVM_BACKEND: 'qemu' }, 'darwin'), qemuBackend);
  assert.equal(defaultBackend({}, 'darwin'), vfkitBackend);
  assert.equal(defaultBackend({ MICROVM_BACKEND: 'vfkit' }, 'darwin'), vfkitBackend);
  assert.throws(
    () => defaultBackend({ MICROVM_BACKEND: 'vfkit' }, 'linux'),
    (err) => isMicrovmError(err, 'E_BACKEND_UNAVAILABLE') && /needs macOS.*this host is linux/.test(err.message),
  );
  assert.throws(
    () => defaultBackend({ MICROVM_BACKEND: 'hyperv' }, 'linux'),
    (err) => isMicrovmError(err, 'E_BAD_OPTION') && /qemu or vfkit/.test(err.message),
  );
  await assert.rejects(
    vfkitBackend.capabilities(),
    (err) => isMicrovmError(err, 'E_BACKEND_UNAVAILABLE') && /macOS only/.test(err.message),
  );
});

/** A stand-in for vfkit: a shell script that acts on the command line the engine generated. */
function fakeVfkit(body: string): string {
  const file = path.join(fs.mkdtempSync(path.join(tmp, 'fake-')), 'vfkit');
  const logOf = `log=$(printf '%s\\n' "$@" | sed -n 's/^virtio-serial,logFilePath=//p')`;
  fs.writeFileSync(file, `#!/bin/sh\n${logOf}\n${body}\n`, { mode: 0o755 });
  return file;
}

const ASSETS = {
  kernel: path.join(tmp, 'Image'),
  initrd: path.join(tmp, 'initrd.cpio'),
  launcher: '/nonexistent',
  kernelRelease: 'test',
  agentSha256: '',
  bootSha256: '',
};
fs.writeFileSync(ASSETS.kernel, 'plain kernel');
fs.writeFileSync(ASSETS.initrd, 'initrd');

test('the probe boot runs vfkit with the generated command line and reads the guest console', async () => {
  const vfkit = fakeVfkit(`printf 'booting\\nMICROVM_PROBE_OK\\n' > "$log"; exit 0`);
  const report = await probeBoot(vfkit, ASSETS, 10_000);
  assert.equal(report.ok, true, report.error);
  assert.equal(report.marker, true);
  assert.match(report.console, /booting/);
  assert.ok(report.argv.includes('--bootloader'));
  assert.ok(report.argv.some((a) => a.includes('microvm.mode=probe')));
});

test('a failed probe says what vfkit said, and a guest that never powers off is killed at the deadline', async () => {
  const refused = fakeVfkit(
    `echo 'level=fatal msg="Error Domain=VZErrorDomain Code=2 com.apple.security.virtualization entitlement"' >&2; exit 1`,
  );
  const failed = await probeBoot(refused, ASSETS, 10_000);
  assert.equal(failed.ok, false);
  assert.match(failed.error ?? '', /entitlement.*brew reinstall vfkit/);
  const pidFile = path.join(tmp, 'hung.pid');
  const hung = fakeVfkit(`echo $$ > ${pidFile}; exec sleep 60`);
  const started = Date.now();
  const timedOut = await probeBoot(hung, ASSETS, 500);
  assert.equal(timedOut.ok, false);
  assert.ok(Date.now() - started < 5000, 'killed at the deadline');
  assert.match(timedOut.error ?? '', /SIGKILL.*no power-off within 500 ms/);
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  assert.throws(() => process.kill(pid, 0), 'the fake vfkit is gone');
});
