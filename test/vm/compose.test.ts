import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { isMicrovmError, prepareWorkspace, Session, type SessionEvents } from '../../engine';
import { readServiceLog } from '../../engine/workspace/services/log-file';
import { pushComposeImages } from '../helpers/compose-images';
import { startRegistry, type TestRegistry } from '../helpers/registry-server';
import { loggingEvents } from '../helpers/session-events';
import { liveProcessesMentioning, qemuPidOf, tcpListenPortsOf } from './qemu-proc';
import { testPlanSettings } from '../helpers/plan-settings';

/**
 * A compose workspace as the Dev Containers templates write one: an app service (node) that is
 * the workspace VM, and a `db` service running Debian's redis-server in its own microVM, with a
 * named volume and a health check the app waits for. Both images stand in for Docker Hub's
 * node and redis: one Debian layer with nodejs and redis-server (one mmdebstrap run), served
 * by a loopback registry as docker.io/library/node and docker.io/library/redis.
 */
const SETTINGS = testPlanSettings({ memoryMib: 512, network: 'outbound' });
let tmp: string;
let registry: TestRegistry;
const savedMirrors = process.env.MICROVM_REGISTRY_MIRRORS;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-compose-'));
  fs.chmodSync(tmp, 0o755);
  registry = await startRegistry(path.join(tmp, 'registry'));
  // redis:7-bookworm EXPOSEs 6379, as Docker Hub's does: the compose file need not declare it.
  await pushComposeImages(registry.base);
  process.env.MICROVM_REGISTRY_MIRRORS = `docker.io=${registry.base}`;
});

after(async () => {
  await registry?.stop();
  if (savedMirrors === undefined) delete process.env.MICROVM_REGISTRY_MIRRORS;
  else process.env.MICROVM_REGISTRY_MIRRORS = savedMirrors;
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The app's own test: talks RESP to db:6379 by name, and reports what else it can reach. */
const APP_TEST = `
const net = require('net');
const tryConnect = (host, port) => new Promise((resolve) => {
  const s = net.connect({ host, port, timeout: 3000 });
  s.once('connect', () => { s.destroy(); resolve('connected'); });
  s.once('timeout', () => { s.destroy(); resolve('timeout'); });
  s.once('error', (e) => resolve(e.code));
});
const redis = (commands) => new Promise((resolve, reject) => {
  const s = net.connect({ host: 'db', port: 6379 });
  let out = '';
  s.on('data', (d) => { out += d; if (out.split('\\r\\n').length > commands.length) { s.end(); resolve(out); } });
  s.on('error', reject);
  s.write(commands.map((c) => c + '\\r\\n').join(''));
});
(async () => {
  const mode = process.argv[2];
  // The app service's own command (overrideCommand false) listens on 3000; give it time to start under TCG.
  let own = await tryConnect('127.0.0.1', 3000);
  for (let i = 0; i < 60 && own !== 'connected'; i++) {
    await new Promise((r) => setTimeout(r, 500));
    own = await tryConnect('127.0.0.1', 3000);
  }
  const reply = mode === 'write' ? await redis(['SET greeting hello-from-app', 'SAVE']) : await redis(['GET greeting']);
  const other = await tryConnect('db', 6380);
  const block = await tryConnect('198.18.0.9', 6379);
  const host = await tryConnect('10.0.2.2', Number(process.argv[3]));
  console.log(JSON.stringify({ reply, other, block, host, own, pghost: process.env.REDIS_HOST }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

/** What the db VM itself sees: its main process's argv and environment, its tmpfs, and what it can reach. */
const DB_TEST = `
const fs = require('fs');
const net = require('net');
const tryConnect = (host, port) => new Promise((resolve) => {
  const s = net.connect({ host, port, timeout: 3000 });
  s.once('connect', () => { s.destroy(); resolve('connected'); });
  s.once('timeout', () => { s.destroy(); resolve('timeout'); });
  s.once('error', (e) => resolve(e.code));
});
(async () => {
  const main = fs.readFileSync('/scratch/main', 'utf8');
  const mount = fs.readFileSync('/proc/mounts', 'utf8').split('\\n').find((l) => l.split(' ')[1] === '/scratch') || '';
  const app = await tryConnect('app', 3000);
  const host = await tryConnect('10.0.2.2', Number(process.argv[1]));
  console.log(JSON.stringify({ main, mount, app, host }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

/** The app service's own command (overrideCommand false), started in its working_dir: a server on an undeclared port. */
const APP_SERVER = "require('net').createServer((c) => c.end('app secret\\n')).listen(3000, '0.0.0.0');\n";

function composeFolder(
  name: string,
  db: string[],
  condition = 'service_healthy',
  app: string[] = [],
  devcontainer: Record<string, unknown> = {},
): string {
  const folder = path.join(tmp, name);
  fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
  fs.writeFileSync(path.join(folder, 'app-test.js'), APP_TEST);
  fs.writeFileSync(path.join(folder, 'app-server.js'), APP_SERVER);
  fs.writeFileSync(path.join(folder, '.devcontainer', 'db.env'), 'DB_FROM_FILE=file-value\n');
  fs.writeFileSync(
    path.join(folder, '.devcontainer', 'devcontainer.json'),
    JSON.stringify({
      dockerComposeFile: 'docker-compose.yml',
      service: 'app',
      workspaceFolder: '/workspaces/${localWorkspaceFolderBasename}',
      forwardPorts: ['db:6379'],
      userEnvProbe: 'none',
      ...devcontainer,
    }),
  );
  fs.writeFileSync(
    path.join(folder, '.devcontainer', 'docker-compose.yml'),
    [
      'services:',
      '  app:',
      '    image: node:22-bookworm',
      '    volumes: ["../..:/workspaces:cached"]',
      '    environment: { REDIS_HOST: db }',
      ...(app.some((l) => /^ {4}command:/.test(l)) ? [] : ['    command: sleep infinity']),
      `    depends_on: { db: { condition: ${condition} } }`,
      ...app,
      '  db:',
      '    image: redis:7-bookworm',
      ...db,
      'volumes: { redisdata: {} }',
    ].join('\n'),
  );
  return folder;
}

const REDIS = [
  '    command: ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data"]',
  '    volumes: ["redisdata:/data"]',
  '    healthcheck: { test: ["CMD-SHELL", "redis-cli ping | grep -q PONG"], interval: 1s, retries: 30 }',
];

/**
 * The db as a compose file may give it all: an entrypoint of its own that records its argv and
 * environment in its tmpfs and execs the command, environment and env_file.
 */
const DB_FULL = [
  String.raw`    entrypoint: ["sh", "-c", "printf '%s|%s|%s' \"$$*\" \"$$DB_FROM_ENV\" \"$$DB_FROM_FILE\" > /scratch/main; exec \"$$@\"", "entry"]`,
  ...REDIS,
  '    environment: { DB_FROM_ENV: env-value }',
  '    env_file: db.env',
  '    tmpfs: ["/scratch:size=16m"]',
];

/** QEMU processes this test process started (other tests on the machine run VMs of their own meanwhile). */
function liveVms(): number[] {
  const parentOf = (pid: number) => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return undefined;
    }
  };
  return liveProcessesMentioning('qemu-system')
    .filter((p) => p.program.startsWith('qemu-system') && parentOf(p.pid) === process.pid)
    .map((p) => p.pid)
    .sort();
}

async function open(folder: string, events: SessionEvents): Promise<Session> {
  const prepared = await prepareWorkspace({
    folder,
    settings: SETTINGS,
    allowLocalEnv: [],
    onConfigChanged: async () => 'apply',
    onOverLimits: async () => true,
  });
  assert.ok(prepared);
  assert.deepEqual(
    prepared.problems.filter((p) => p.severity === 'error'),
    [],
  );
  const session = new Session(prepared.plan, events, prepared.lifecycle);
  await session.start();
  return session;
}

/** A host client of the forward forwardPorts asked for: one RESP command, its reply. */
function hostRedis(localAddr: string, command: string): Promise<string> {
  const [host, port] = localAddr.split(':');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port: Number(port) });
    let out = '';
    socket.on('data', (d) => {
      out += String(d);
      if (out.endsWith('\r\n')) socket.end();
    });
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    socket.write(`${command}\r\n`);
  });
}

test("compose: the app reaches db:6379 by name and nothing else of the db VM nor the host; the db reaches neither the host nor the app's undeclared port; the db's entrypoint, command, environment, env_file and tmpfs reach its VM; the app's own command runs in its working_dir (overrideCommand false) after db is healthy; forwardPorts db:6379 reaches it from the host; the data survive a reopen", async () => {
  const folder = composeFolder(
    'app',
    DB_FULL,
    'service_healthy',
    ['    working_dir: /workspaces/app', '    command: ["node", "app-server.js"]'],
    { overrideCommand: false },
  );
  const hostListener = net.createServer((c) => c.end('host secret\n'));
  await new Promise<void>((r) => hostListener.listen(0, '127.0.0.1', r));
  const hostPort = (hostListener.address() as net.AddressInfo).port;
  const guestPath = `/workspaces/${path.basename(folder)}`;
  const vmsBefore = liveVms();
  const listenersBefore = tcpListenPortsOf([process.pid]);
  try {
    for (const round of ['write', 'read'] as const) {
      const logs: string[] = [];
      const dbOutput: string[] = [];
      const session = await open(folder, {
        ...loggingEvents(logs),
        serviceOutput: (service, chunk) => dbOutput.push(`${service}: ${String(chunk)}`),
      });
      try {
        const healthy = logs.indexOf('service db is healthy');
        const appVm = logs.findIndex((l) => /^VM \S+ is running under/.test(l));
        assert.ok(healthy >= 0 && appVm > healthy, `the app VM starts after db is healthy:\n${logs.join('\n')}`);
        assert.ok(
          logs.includes(
            'service app: running its command ["node","app-server.js"] in /workspaces/app (overrideCommand is false)',
          ),
          logs.join('\n'),
        );
        assert.ok(
          logs.some((l) => /service db started; the other VMs reach it as db:6379$/.test(l)),
          "the image's EXPOSE makes 6379 reachable",
        );
        const r = await session.running.exec({
          argv: ['node', `${guestPath}/app-test.js`, round, String(hostPort)],
          timeoutMs: 60_000,
        });
        assert.equal(r.exitCode, 0, `${r.stdout}${r.stderr}`);
        const seen = JSON.parse(String(r.stdout)) as Record<string, string>;
        assert.equal(
          seen.reply,
          round === 'write' ? '+OK\r\n+OK\r\n' : '$14\r\nhello-from-app\r\n',
          'the app talks to db:6379 by name',
        );
        assert.equal(seen.other, 'ECONNREFUSED', 'another port of the db VM is out of reach');
        assert.equal(seen.block, 'ECONNREFUSED', 'another address of the service block is out of reach');
        assert.notEqual(seen.host, 'connected', 'the host is out of reach');
        assert.equal(seen.pghost, 'db', 'the service environment reaches the workspace');
        assert.equal(seen.own, 'connected', "the app service's own command runs, in its working_dir");
        const db = session.serviceVms.find((s) => s.service === 'db');
        assert.ok(db);
        const d = await db.vm.exec({ argv: ['node', '-e', DB_TEST, String(hostPort)], timeoutMs: 60_000 });
        assert.equal(d.exitCode, 0, `${d.stdout}${d.stderr}`);
        const dbSeen = JSON.parse(String(d.stdout)) as Record<string, string>;
        assert.equal(
          dbSeen.main,
          'redis-server --bind 0.0.0.0 --protected-mode no --dir /data|env-value|file-value',
          "the db's entrypoint runs its command, with environment and env_file",
        );
        assert.match(dbSeen.mount ?? '', /^\S+ \/scratch tmpfs .*size=16384k/, 'the tmpfs is mounted with its size');
        assert.notEqual(dbSeen.app, 'connected', "the db cannot reach the app's undeclared port");
        assert.notEqual(dbSeen.host, 'connected', 'the db cannot reach the host');
        const [forward] = session.serviceForwards;
        assert.equal(forward!.service, 'db');
        assert.equal(forward!.port, 6379);
        assert.equal(
          await hostRedis(forward!.localAddr, 'PING'),
          '+PONG\r\n',
          'forwardPorts db:6379 reaches the db from the host',
        );
        assert.ok(
          dbOutput.some((l) => l.startsWith('db: ') && /Ready to accept connections/.test(l)),
          dbOutput.join(''),
        );
        // The link app -> db:6379 is a unix socket, and the db VM has no forward of it: the only
        // TCP listeners the workspace added on the host (in this process or its QEMUs) are the
        // forward forwardPorts asked for and the workspace VM's own ports (app-server.js's).
        const qemus = [session.running, ...session.serviceVms.map((s) => s.vm)].map((vm) => qemuPidOf(vm.id));
        assert.equal(qemus.length, 2, 'the app and db VMs');
        const added = tcpListenPortsOf([process.pid, ...qemus]).filter((p) => !listenersBefore.includes(p));
        const asked = [Number(forward!.localAddr.split(':')[1]), ...session.portState().forwards.values()];
        assert.deepEqual(
          added,
          [...new Set(asked)].sort((a, b) => a - b),
          "no host TCP listener but the asked-for forward and the workspace's own ports",
        );
        assert.ok(
          session.serviceLinks.every((l) => path.isAbsolute(l.path) && fs.statSync(l.path).isSocket()),
          "the app's links are unix sockets",
        );
      } finally {
        await session.stop();
      }
    }
    assert.match(readServiceLog(folder, 'db'), /Ready to accept connections/, "microvm logs reads the db's output");
    assert.deepEqual(liveVms(), vmsBefore, 'no VM outlives the workspace');
  } finally {
    hostListener.close();
  }
});

test('compose: a db that never becomes healthy fails the open with its log and a clear message, and leaves nothing running', async () => {
  const folder = composeFolder('sick', [
    '    command: ["sh", "-c", "echo starting the sick db; echo \\"\\u001b[31mred\\u001b[0m\\"; sleep 600"]',
    '    healthcheck: { test: ["CMD", "false"], interval: 1s, retries: 2 }',
  ]);
  const logs: string[] = [];
  const vmsBefore = liveVms();
  await assert.rejects(open(folder, loggingEvents(logs)), (err: unknown) => {
    assert.ok(isMicrovmError(err, 'E_SERVICE_FAILED'), String(err));
    assert.match(err.message, /compose service "db" did not become healthy after 2 check\(s\).*so app cannot start/s);
    assert.match(err.message, /starting the sick db/, "the message quotes the service's last lines");
    assert.ok(!err.message.includes('\x1b'), 'escape sequences from the guest are shown escaped');
    return true;
  });
  assert.deepEqual(liveVms(), vmsBefore, 'no VM outlives the failed open');
});

test('compose: a service that stops while the workspace runs is reported with its last lines, escaped', async () => {
  const folder = composeFolder(
    'crash',
    ['    command: ["sh", "-c", "sleep 3; echo \\"\\u001b]8;;http://x\\u0007db is going away\\"; exit 3"]'],
    'service_started',
  );
  const logs: string[] = [];
  const crashed: Array<{ service: string; message: string }> = [];
  const vmsBefore = liveVms();
  const session = await open(folder, {
    ...loggingEvents(logs),
    serviceCrashed: (service, message) => crashed.push({ service, message }),
  });
  try {
    for (let i = 0; i < 300 && crashed.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(crashed.length, 1, logs.join('\n'));
    assert.equal(crashed[0]!.service, 'db');
    assert.match(crashed[0]!.message, /compose service "db" stopped: its main process exited with code 3/);
    assert.match(
      crashed[0]!.message,
      /\\x1b\]8;;http:\/\/x\\x07db is going away/,
      "the guest's escape sequence is shown as text",
    );
    assert.ok(logs.includes(crashed[0]!.message), 'and it is in the workspace log');
  } finally {
    await session.stop();
  }
  assert.deepEqual(liveVms(), vmsBefore);
});

test("compose: network_mode service:db (the templates' way) makes localhost:6379 in the app reach the db, and nothing else of it", async () => {
  const folder = composeFolder('shared-net', REDIS, 'service_healthy', ['    network_mode: service:db']);
  const guestPath = `/workspaces/${path.basename(folder)}`;
  const logs: string[] = [];
  const vmsBefore = liveVms();
  const session = await open(folder, loggingEvents(logs));
  try {
    const script =
      "const s=require('net').connect(Number(process.argv[1]),'127.0.0.1');let o='';s.on('data',d=>{o+=d;s.end()});s.on('error',e=>o=e.code);s.on('close',()=>console.log(o.trim()));s.write('PING\\r\\n');";
    let reply = '';
    // The relay starts with the VM; give it a moment under TCG.
    for (let i = 0; i < 20 && reply !== '+PONG'; i++) {
      reply = String(
        (await session.running.exec({ argv: ['node', '-e', script, '6379'], cwd: guestPath, timeoutMs: 30_000 }))
          .stdout,
      ).trim();
      if (reply !== '+PONG') await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(reply, '+PONG', logs.join('\n'));
    const other = String(
      (await session.running.exec({ argv: ['node', '-e', script, '6380'], timeoutMs: 30_000 })).stdout,
    ).trim();
    assert.equal(other, 'ECONNREFUSED', "only the db's declared ports are on localhost");
    assert.ok(
      logs.some((l) => /network_mode service:db: localhost:6379 in this VM reach db/.test(l)),
      logs.join('\n'),
    );
  } finally {
    await session.stop();
  }
  assert.deepEqual(liveVms(), vmsBefore);
});
