import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DEFAULT_PROTECT,
  isMicrovmError,
  PlanSettings,
  prepareWorkspace,
  Session,
  type SessionEvents,
} from '../../engine';
import { readServiceLog } from '../../engine/workspace/services/log-file';
import { pushComposeImages } from '../helpers/compose-images';
import { startRegistry, type TestRegistry } from '../helpers/registry-server';
import { loggingEvents } from '../helpers/session-events';
import { liveProcessesMentioning } from './qemu-proc';

/**
 * A compose workspace as the Dev Containers templates write one: an app service (node) that is
 * the workspace VM, and a `db` service running Debian's redis-server in its own microVM, with a
 * named volume and a health check the app waits for. Both images stand in for Docker Hub's
 * node and redis: one Debian layer with nodejs and redis-server (one mmdebstrap run), served
 * by a loopback registry as docker.io/library/node and docker.io/library/redis.
 */
const SETTINGS: PlanSettings = {
  image: '',
  memoryMib: 512,
  cpus: 1,
  network: 'outbound',
  symlinks: 'opaque',
  protect: [...DEFAULT_PROTECT],
  git: 'writable',
};
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
  const reply = mode === 'write' ? await redis(['SET greeting hello-from-app', 'SAVE']) : await redis(['GET greeting']);
  const other = await tryConnect('db', 6380);
  const block = await tryConnect('198.18.0.9', 6379);
  const host = await tryConnect('10.0.2.2', Number(process.argv[3]));
  console.log(JSON.stringify({ reply, other, block, host, pghost: process.env.REDIS_HOST }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

function composeFolder(name: string, db: string[], condition = 'service_healthy', app: string[] = []): string {
  const folder = path.join(tmp, name);
  fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
  fs.writeFileSync(path.join(folder, 'app-test.js'), APP_TEST);
  fs.writeFileSync(
    path.join(folder, '.devcontainer', 'devcontainer.json'),
    JSON.stringify({
      dockerComposeFile: 'docker-compose.yml',
      service: 'app',
      workspaceFolder: '/workspaces/${localWorkspaceFolderBasename}',
      forwardPorts: ['db:6379'],
      userEnvProbe: 'none',
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
      '    command: sleep infinity',
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

/** QEMU processes of this machine (the tests of a file run one at a time). */
function liveVms(): number[] {
  return liveProcessesMentioning('qemu-system')
    .filter((p) => p.program.startsWith('qemu-system'))
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

test('compose: the app reaches db:6379 by name and nothing else of the db VM nor the host; forwardPorts db:6379 reaches it from the host; the data survive a reopen', async () => {
  const folder = composeFolder('app', REDIS);
  const hostListener = net.createServer((c) => c.end('host secret\n'));
  await new Promise<void>((r) => hostListener.listen(0, '127.0.0.1', r));
  const hostPort = (hostListener.address() as net.AddressInfo).port;
  const guestPath = `/workspaces/${path.basename(folder)}`;
  const vmsBefore = liveVms();
  try {
    for (const round of ['write', 'read'] as const) {
      const logs: string[] = [];
      const dbOutput: string[] = [];
      const session = await open(folder, {
        ...loggingEvents(logs),
        serviceOutput: (service, chunk) => dbOutput.push(`${service}: ${String(chunk)}`),
      });
      try {
        assert.ok(
          logs.some((l) => l === 'service db is healthy'),
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
