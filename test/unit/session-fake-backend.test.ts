import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { type PlanSettings, prepareWorkspace, Session } from '../../engine';
import { CancelledError } from '../../engine/workspace/session';
import { fakeCapabilities, FakeBackend } from '../helpers/fake-backend';
import { isMicrovmError } from '../../engine/errors';
import type { Capabilities } from '../../engine/backend/types';
import type { GuestArch } from '../../engine/qemu/types';
import { createHash } from 'node:crypto';
import { loggingEvents } from '../helpers/session-events';
import { homePaths } from '../../engine/paths';
import { gzipLayer, imageOf, tarOf } from '../helpers/image-fixtures';
import { pushImage } from '../helpers/registry-push';
import { startRegistry } from '../helpers/registry-server';
import { testPlanSettings } from '../helpers/plan-settings';

/**
 * Session through the backend seam: the workspace's image is the embedded default one (its
 * root disk built once in a private MICROVM_HOME, no VM), its VM a fake whose loopback is the
 * host's. Start, stop and forwards run as the extension drives them, in seconds.
 */
const SETTINGS = testPlanSettings();
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-session-fake-'));
const savedHome = process.env.MICROVM_HOME;

/** A private home with the embedded default image that setup stored (its root disk is built here, once). */
before(() => {
  const home = path.join(root, 'home');
  const defaultImage = homePaths.defaultImage(); // the real home's, read before MICROVM_HOME points elsewhere
  fs.mkdirSync(path.join(home, 'images'), { recursive: true });
  fs.cpSync(defaultImage, path.join(home, 'images', 'default'), { recursive: true });
  process.env.MICROVM_HOME = home;
});

after(() => {
  if (savedHome === undefined) delete process.env.MICROVM_HOME;
  else process.env.MICROVM_HOME = savedHome;
  fs.rmSync(root, { recursive: true, force: true });
});

async function openSession(
  name: string,
  backend: FakeBackend,
  config: unknown = {},
  settings: Partial<PlanSettings> = {},
): Promise<{ session: Session; logs: string[] }> {
  const folder = path.join(root, name);
  fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
  fs.writeFileSync(path.join(folder, '.devcontainer', 'devcontainer.json'), JSON.stringify(config));
  const prepared = await prepareWorkspace({
    folder,
    settings: { ...SETTINGS, ...settings },
    allowLocalEnv: [],
    onConfigChanged: async () => 'apply',
    onOverLimits: async () => true,
  });
  assert.ok(prepared);
  const logs: string[] = [];
  const session = new Session(prepared.plan, loggingEvents(logs), prepared.lifecycle, { backend });
  session.typeProjection = false;
  return { session, logs };
}

/** A TCP server on the host's loopback (the fake guest's) that answers each connection with `reply` and closes. */
async function guestServer(reply: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((socket) => socket.end(reply));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function fetchOnce(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
  });
}

test('a session starts its workspace VM through the backend and stops it', async () => {
  const backend = new FakeBackend();
  const { session, logs } = await openSession('plain', backend);
  const vm = await session.start();
  assert.equal(vm.capabilities.backend, 'fake');
  assert.equal(backend.vms.length, 1);
  assert.ok(
    backend.specs[0]?.mounts?.some((m) => m.guestPath.startsWith('/workspaces/')),
    'the folder is shared',
  );
  assert.ok(
    logs.some((line) => line.includes(`VM ${vm.id} is running`)),
    logs.join('\n'),
  );
  await session.stop();
  assert.equal(backend.running().length, 0);
});

test('stop() while the VM boots cancels start() and leaves no VM running', async () => {
  const backend = new FakeBackend();
  backend.holdBoots();
  const { session } = await openSession('stop-during-start', backend);
  const starting = session.start();
  const deadline = Date.now() + 20_000;
  while (backend.heldBoots === 0) {
    assert.ok(Date.now() < deadline, 'the boot never began');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const stopping = session.stop();
  backend.resumeBoots();
  await assert.rejects(starting, (err) => err instanceof CancelledError);
  await stopping;
  assert.equal(backend.running().length, 0, 'the VM that finished booting after stop() was stopped');
  assert.equal(session.isRunning, false);
});

test("a failed boot fails start() with the backend's error", async () => {
  const backend = new FakeBackend();
  backend.failBoots(1, Object.assign(new Error('the fake hypervisor refused'), { code: 'E_BOOT_FAILED' }));
  const { session } = await openSession('boot-failure', backend);
  await assert.rejects(session.start(), /the fake hypervisor refused/);
  await session.stop();
  assert.equal(backend.running().length, 0);
});

test('concurrent forwards of several ports each get their own host port and carry traffic', async () => {
  const backend = new FakeBackend();
  const { session } = await openSession('forwards', backend);
  await session.start();
  const servers = await Promise.all(['a', 'b', 'c', 'd'].map((reply) => guestServer(reply)));
  try {
    // Each guest port forwarded twice at once: the second call finds the first's forward.
    const requests = [...servers, ...servers].map((s) => session.forward(s.port));
    const opened = await Promise.all(requests);
    const hostPorts = new Map<number, number>();
    for (const [i, forward] of opened.entries()) {
      const guestPort = servers[i % servers.length]!.port;
      const known = hostPorts.get(guestPort);
      if (known !== undefined)
        assert.equal(forward.hostPort, known, `guest port ${guestPort} forwarded twice to different host ports`);
      hostPorts.set(guestPort, forward.hostPort);
    }
    assert.equal(new Set(hostPorts.values()).size, servers.length);
    assert.deepEqual(session.portState().forwards, hostPorts);
    const replies = await Promise.all(servers.map((s) => fetchOnce(hostPorts.get(s.port) as number)));
    assert.deepEqual(replies, ['a', 'b', 'c', 'd']);
    await Promise.all(servers.map((s) => session.unforward(s.port, true)));
    assert.equal(session.portState().forwards.size, 0);
  } finally {
    await session.stop();
    await Promise.all(servers.map((s) => s.close()));
  }
});

test("a compose workspace's other services run on the session's backend too", async () => {
  const registryDir = path.join(root, 'registry');
  const registry = await startRegistry(registryDir);
  try {
    const layer = gzipLayer(
      tarOf([
        { path: 'etc/', type: 'dir' },
        { path: 'etc/passwd', data: 'root:x:0:0:root:/root:/bin/sh\n' },
        { path: 'etc/group', data: 'root:x:0:\n' },
        { path: 'root/', type: 'dir', mode: 0o700 },
      ]),
    );
    // No command: the fake agent cannot spawn a service's main process.
    await pushImage(registry.base, 'test/svc', '1', imageOf([layer], { ExposedPorts: { '6379/tcp': {} } }));
    const ref = `${registry.host}/test/svc:1`;
    const folder = path.join(root, 'compose');
    fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
    fs.writeFileSync(
      path.join(folder, '.devcontainer', 'docker-compose.yml'),
      `services:\n  app:\n    image: ${ref}\n    volumes: ['..:/workspace']\n  db:\n    image: ${ref}\n`,
    );
    const backend = new FakeBackend();
    const { session } = await openSession('compose', backend, {
      dockerComposeFile: 'docker-compose.yml',
      service: 'app',
      workspaceFolder: '/workspace',
    });
    try {
      await session.start();
      assert.equal(backend.running().length, 2, 'the db service and the workspace VM, both fake');
      assert.ok(
        backend.specs.some((spec) => spec.serviceLinks?.some((link) => link.port === 6379)),
        'the workspace VM reaches the db port by name',
      );
    } finally {
      await session.stop();
    }
    assert.equal(backend.running().length, 0);
  } finally {
    await registry.stop();
  }
});

/** The embedded default image as an OCI layout whose config says `architecture: arm64`. */
function arm64Layout(): string {
  const source = path.join(process.env.MICROVM_HOME as string, 'images', 'default');
  const dir = path.join(root, 'arm64-layout');
  fs.cpSync(source, dir, { recursive: true });
  const blob = (digest: string) => path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const put = (data: Buffer) => {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    fs.writeFileSync(blob(digest), data);
    return { digest, size: data.length };
  };
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
  const manifest = JSON.parse(fs.readFileSync(blob(index.manifests[0].digest), 'utf8'));
  const config = JSON.parse(fs.readFileSync(blob(manifest.config.digest), 'utf8'));
  manifest.config = { ...manifest.config, ...put(Buffer.from(JSON.stringify({ ...config, architecture: 'arm64' }))) };
  index.manifests = [{ ...index.manifests[0], ...put(Buffer.from(JSON.stringify(manifest))) }];
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index));
  return dir;
}

test(
  'where the host hardware-isolates its own guests, a workspace refuses an image the host only emulates',
  {
    skip: process.arch === 'x64' ? undefined : 'the fake backend plays an x86_64 host',
  },
  async () => {
    /** KVM for x86_64 guests, TCG for aarch64 ones: an x86_64 host with KVM. */
    class KvmX86Backend extends FakeBackend {
      override capabilities(arch: GuestArch = 'x86_64'): Promise<Capabilities> {
        return Promise.resolve({
          ...fakeCapabilities({}),
          ...(arch === 'x86_64'
            ? { accel: 'kvm' as const, isolation: 'hardware' as const }
            : { accel: 'tcg' as const, isolation: 'emulated' as const }),
        });
      }
    }
    const backend = new KvmX86Backend();
    // The microvm.image setting: a repository's own configuration may not name a host folder.
    const { session } = await openSession('arm64-image', backend, {}, { image: arm64Layout() });
    await assert.rejects(
      session.start(),
      (err) =>
        isMicrovmError(err, 'E_CONFIG') &&
        /is for aarch64, which this x86_64 host only emulates \(tcg, not a security boundary\)/.test(err.message),
    );
    assert.equal(backend.vms.length, 0, 'no VM booted');
    await session.stop();
  },
);

/** Polls `ready` until it holds (or fails the test after 20 s). */
async function until(ready: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!ready()) {
    assert.ok(Date.now() < deadline, what);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test("aborting start()'s signal while the VM boots rejects E_ABORTED and leaves no VM", async () => {
  const backend = new FakeBackend();
  backend.holdBoots();
  const { session } = await openSession('abort-during-boot', backend);
  const controller = new AbortController();
  const starting = session.start({ signal: controller.signal });
  await until(() => backend.heldBoots > 0, 'the boot never began');
  controller.abort();
  await assert.rejects(starting, (err) => isMicrovmError(err, 'E_ABORTED'));
  // The boot that was under way finishes after the abort: its VM is stopped, not lent.
  backend.resumeBoots();
  await until(() => backend.vms.length === 1, 'the held boot never finished');
  await until(() => backend.running().length === 0, 'the VM booted after the abort still runs');
  assert.equal(session.isRunning, false);
  await session.stop();
  assert.equal(backend.running().length, 0);
});

test("aborting start()'s signal while a lifecycle hook runs rejects E_ABORTED and stops the VM", async () => {
  const backend = new FakeBackend();
  const controller = new AbortController();
  const { session, logs } = await openSession('abort-during-hooks', backend, {
    onCreateCommand: 'sleep 3600',
  });
  // The hook never ends by itself; only the end of its VM ends it.
  backend.onBoot = (booted) => (booted.agent.onSpawn = () => new Promise(() => undefined));
  const starting = session.start({ signal: controller.signal });
  await until(() => backend.vms.length === 1, 'the VM never booted');
  const vm = backend.vms[0]!;
  await until(() => vm.agent.spawned.some((argv) => argv.join(' ').includes('sleep 3600')), 'the hook never ran');
  controller.abort();
  await assert.rejects(starting, (err) => isMicrovmError(err, 'E_ABORTED'));
  assert.equal(vm.alive, false, 'the VM running the hook was stopped');
  assert.equal(backend.running().length, 0);
  assert.equal(session.isRunning, false);
  assert.ok(!logs.some((line) => /onCreateCommand.*(exited|killed)/.test(line)), logs.join('\n'));
  await session.stop();
});

test('a signal aborted before start() rejects E_ABORTED and boots nothing', async () => {
  const backend = new FakeBackend();
  const { session } = await openSession('abort-before-start', backend);
  await assert.rejects(session.start({ signal: AbortSignal.abort() }), (err) => isMicrovmError(err, 'E_ABORTED'));
  assert.equal(backend.vms.length, 0);
  await session.stop();
});
