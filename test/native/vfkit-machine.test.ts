import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isMicrovmError, type MicrovmError } from '../../engine/errors';
import { createVfkitBackend } from '../../engine/backend/vfkit/backend';
import type { VfkitHostFacts } from '../../engine/backend/vfkit/host';
import type { BootSpec } from '../../engine/backend/types';

/**
 * The vfkit backend's host side on Linux: boot, the agent over vfkit's vsock socket, exec,
 * health, stop through the REST API, cleanup. vfkit is a stand-in (test/helpers/fake-vfkit.mjs)
 * that runs the real agent binary in its host mode where the guest's vsock would be; only
 * Virtualization.framework itself is missing.
 */
const agentBinary = path.join(__dirname, '../../native/build/microvm-agent');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-vfkit-machine-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
fs.writeFileSync(path.join(tmp, 'vmlinuz'), 'plain kernel');
fs.writeFileSync(path.join(tmp, 'initrd.cpio'), 'initrd');
fs.writeFileSync(path.join(tmp, 'root.ext4'), '');

function backendWith(vfkit: string) {
  const facts: VfkitHostFacts = {
    platform: 'darwin',
    macosVersion: '14.5',
    machine: 'arm64',
    vfkit: { path: vfkit, versionOutput: 'vfkit version: v0.6.1\n' },
  };
  return createVfkitBackend({
    facts: () => Promise.resolve(facts),
    guest: () => Promise.resolve({ kernel: path.join(tmp, 'vmlinuz'), initrd: path.join(tmp, 'initrd.cpio') }),
  });
}

const SPEC: BootSpec = {
  rootDisk: path.join(tmp, 'root.ext4'),
  memoryMib: 256,
  vcpus: 1,
  network: 'none',
  arch: 'aarch64',
};

test('boot reaches the agent through the vsock socket, runs a command, and stop ends vfkit through REST', async () => {
  process.env.FAKE_VFKIT_AGENT = agentBinary;
  const backend = backendWith(path.join(__dirname, '../helpers/fake-vfkit.mjs'));
  assert.equal((await backend.capabilities()).backend, 'vfkit');
  const vm = await backend.boot(SPEC);
  const pid = vm.pid;
  assert.ok(pid && vm.alive);
  assert.equal(vm.accel.accel, 'hvf');
  const result = await vm.agent.exec(
    { argv: ['/bin/sh', '-c', 'echo from-the-agent'], env: [], cwd: '/', timeoutMs: 10_000, stageFiles: [], chain: [] },
    1024 * 1024,
  );
  assert.equal(result.stdout.toString(), 'from-the-agent\n');
  assert.equal(await vm.checkHealth(), 'healthy');
  let exitError: MicrovmError | undefined;
  vm.onExit((err) => (exitError = err));
  await vm.stop();
  assert.equal(vm.alive, false);
  assert.equal(exitError?.code, 'E_VM_RELEASED');
  assert.equal(await vm.checkHealth(), 'dead');
  assert.throws(() => process.kill(pid, 0), 'the stand-in vfkit has exited');
  await vm.stop();
});

test('connections vfkit closes while the guest listens nowhere yet are made anew until the agent answers', async () => {
  process.env.FAKE_VFKIT_AGENT = agentBinary;
  process.env.FAKE_VFKIT_AGENT_DELAY_MS = '1500';
  try {
    const started = Date.now();
    const vm = await backendWith(path.join(__dirname, '../helpers/fake-vfkit.mjs')).boot({ ...SPEC, bootTimeoutMs: 10_000 });
    assert.ok(Date.now() - started >= 1500, 'the agent answered once it was up');
    assert.equal(await vm.checkHealth(), 'healthy');
    await vm.stop();
  } finally {
    delete process.env.FAKE_VFKIT_AGENT_DELAY_MS;
  }
});

test('what a vfkit VM cannot do yet is refused at boot, every item at once', async () => {
  const backend = backendWith(path.join(__dirname, '../helpers/fake-vfkit.mjs'));
  await assert.rejects(
    backend.boot({
      ...SPEC,
      network: 'allowlist',
      arch: 'x86_64',
      volumes: [{ name: 'v', mountPoint: '/v', sizeMib: 64 }],
      mounts: [
        {
          hostPath: tmp,
          guestPath: '/w',
          readOnly: false,
          symlinks: 'opaque',
          filter: true,
          protect: [],
          protectPaths: [],
          git: 'writable',
        },
      ],
    } as BootSpec),
    (err) => {
      assert.ok(isMicrovmError(err, 'E_BACKEND_UNAVAILABLE'), String(err));
      assert.match(err.message, /an x86_64 guest \(Virtualization.framework runs aarch64 guests only here\); volumes; network allowlist; filtered shares \(.*without the filter view/);
      return true;
    },
  );
});

test('a vfkit that fails at start fails the boot at once with its mapped error, leaving nothing', async () => {
  const failing = path.join(tmp, 'vfkit-entitlement');
  fs.writeFileSync(
    failing,
    "#!/bin/sh\necho 'level=fatal msg=\"Error Domain=VZErrorDomain Code=2 missing com.apple.security.virtualization entitlement\"' >&2\nexit 1\n",
    { mode: 0o755 },
  );
  const before = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('microvm-vfkit-')).length;
  const started = Date.now();
  await assert.rejects(backendWith(failing).boot(SPEC), (err) => isMicrovmError(err, 'E_ACCEL_UNAVAILABLE'));
  assert.ok(Date.now() - started < 10_000, 'not a boot timeout');
  const after = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('microvm-vfkit-')).length;
  assert.equal(after, before, 'the state directory is removed');
});
