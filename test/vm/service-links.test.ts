import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import { ExecChild, Image, NetworkMode, Pool, serviceLinkAddress, ServiceLink, Vm } from '../../engine';
import { ServiceRelay } from '../../engine/workspace/services/relay';
import { createStateDir, type StateDir } from '../../engine/vm/state-dir';
import { qemuUser } from '../../engine/qemu/run-as';
import { isGone, qemuPidOf } from './qemu-proc';

/**
 * Service links between two real VMs. "db" (network 'none') serves TCP port 5432, and the host
 * relays a unix socket in a private run directory to it (a compose workspace's ServiceRelay,
 * carrying each connection with db.connectTcp: no TCP listener). "app" links
 * serviceLinkAddress(0):5432 to that socket and reads db's answer at 198.18.0.2:5432; nothing
 * else of the block, of the host or of the world is within its reach, beyond what its network allows.
 */
const DB_ANSWER = 'db answer over the link';
let dbPool: Pool;
let db: Vm;
let dbServer: ExecChild;
let relay: ServiceRelay;
let linkDir: StateDir;
let host: net.Server;
let hostPort: number;

before(async () => {
  host = net.createServer((socket) => socket.on('error', () => undefined).end('host secret\n'));
  host.listen(0, '127.0.0.1');
  await once(host, 'listening');
  hostPort = (host.address() as net.AddressInfo).port;
  dbPool = (await Image.build({ network: 'none' })).pool({ min: 1, max: 1 });
  db = await dbPool.acquire();
  await db.writeFile('/srv/answer.sh', `#!/bin/sh\necho '${DB_ANSWER}'\n`, { mode: 0o755 });
  dbServer = db.spawn({ argv: ['nc', '-ll', '-p', '5432', '-e', '/srv/answer.sh'], timeoutMs: 0 });
  while (!(await db.listeningPorts()).some((l) => l.port === 5432))
    await new Promise((resolve) => setTimeout(resolve, 100));
  linkDir = createStateDir(qemuUser());
  relay = ServiceRelay.in(linkDir.dir, 'db', 5432, 0, qemuUser());
  await relay.setTarget((socket) => db.connectTcp(socket, 5432));
});

after(async () => {
  dbServer?.signal('SIGKILL');
  await db?.release();
  await dbPool?.shutdown();
  await relay?.close();
  linkDir?.remove();
  host?.close();
});

function dbLink(): ServiceLink {
  return { address: serviceLinkAddress(0), port: 5432, path: relay.path };
}

interface App {
  vm: Vm;
  pool: Pool;
  qemuPid: number;
}

async function startApp(network: NetworkMode, serviceLinks: ServiceLink[]): Promise<App> {
  const pool = (await Image.build({ network, serviceLinks })).pool({ min: 0, max: 1 });
  const vm = await pool.acquire();
  return { vm, pool, qemuPid: qemuPidOf(vm.id) };
}

/** Releases the app VM: its QEMU is gone and the relay holds none of its connections. */
async function stopApp(app: App): Promise<void> {
  await app.vm.release();
  await app.pool.shutdown();
  for (let i = 0; i < 100 && (!isGone(app.qemuPid) || relay.activeConnections > 0); i++)
    await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(isGone(app.qemuPid), `QEMU ${app.qemuPid} of VM ${app.vm.id} still runs after release`);
  assert.equal(relay.activeConnections, 0, 'the relay still carries connections of the released VM');
}

/** What the guest reads from address:port, with nc's complaint and exit code. */
async function guestNc(vm: Vm, address: string, port: number): Promise<{ out: string; code: number }> {
  const r = await vm.exec({ argv: ['sh', '-c', `nc -w 5 ${address} ${port} </dev/null`], timeoutMs: 60_000 });
  return { out: r.stdout + r.stderr, code: r.exitCode };
}

async function assertUnreachable(vm: Vm, targets: Array<[string, number]>): Promise<void> {
  for (const [address, port] of targets) {
    const r = await guestNc(vm, address, port);
    assert.doesNotMatch(r.out, /db answer|host secret/, `the guest reached ${address}:${port}`);
    assert.notEqual(r.code, 0, `${address}:${port}: ${r.out}`);
    assert.match(r.out, /refused/i, `${address}:${port}: the guard refuses at once`);
  }
}

test("network 'none' with a link: app reads db at 198.18.0.2:5432, and reaches nothing else: not the block, the host, the world or DNS", async () => {
  const app = await startApp('none', [dbLink()]);
  try {
    const nics = await app.vm.exec({ argv: ['ls', '/sys/class/net'] });
    assert.deepEqual(nics.stdout.trim().split(/\s+/).sort(), ['eth0', 'lo'], 'a NIC for the links');
    assert.deepEqual(await guestNc(app.vm, '198.18.0.2', 5432), { out: `${DB_ANSWER}\n`, code: 0 });
    await assertUnreachable(app.vm, [
      ['198.18.0.2', 5433],
      ['198.18.0.3', 5432],
      ['10.0.2.2', hostPort],
      ['10.0.2.2', 5432],
      ['1.1.1.1', 80],
    ]);
    const resolve = await app.vm.exec({ argv: ['nslookup', 'deb.debian.org'], timeoutMs: 30_000 });
    assert.notEqual(resolve.exitCode, 0, 'DNS answered');
    assert.deepEqual(
      await guestNc(app.vm, '198.18.0.2', 5432),
      { out: `${DB_ANSWER}\n`, code: 0 },
      'the link still works',
    );
  } finally {
    await stopApp(app);
  }
});

test("network 'outbound' with a link: the link works, the rest of the block and the host's loopback stay refused", async () => {
  const app = await startApp('outbound', [dbLink()]);
  try {
    assert.deepEqual(await guestNc(app.vm, '198.18.0.2', 5432), { out: `${DB_ANSWER}\n`, code: 0 });
    await assertUnreachable(app.vm, [
      ['198.18.0.2', 5433],
      ['198.18.0.9', 80],
      ['10.0.2.2', hostPort],
    ]);
  } finally {
    await stopApp(app);
  }
});

test('the image key holds the NIC the links add, not the links; a snapshot of a linked VM is restored with its NIC and no links', async () => {
  const key = async (network: NetworkMode, serviceLinks?: ServiceLink[]) =>
    (await Image.build({ network, serviceLinks, snapshot: false })).cacheKey;
  const other = { ...dbLink(), path: '/run/other.sock' };
  assert.equal(await key('none', [dbLink()]), await key('none', [other]));
  assert.equal(await key('none', [dbLink()]), await key('none', []));
  assert.notEqual(await key('none', [dbLink()]), await key('none'));
  assert.equal(await key('outbound', [dbLink()]), await key('outbound'));

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-linked-snapshot-'));
  const app = await startApp('none', [dbLink()]);
  let restored: App | undefined;
  try {
    const image = await app.vm.snapshot(dir);
    const pool = image.pool({ min: 0, max: 1 });
    const vm = await pool.acquire();
    restored = { vm, pool, qemuPid: qemuPidOf(vm.id) };
    const nics = await vm.exec({ argv: ['ls', '/sys/class/net'] });
    assert.deepEqual(nics.stdout.trim().split(/\s+/).sort(), ['eth0', 'lo']);
    await assertUnreachable(vm, [
      ['198.18.0.2', 5432],
      ['1.1.1.1', 80],
    ]);
  } finally {
    if (restored) await stopApp(restored);
    await stopApp(app);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
