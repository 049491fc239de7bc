import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { ChildProcess, spawn } from 'node:child_process';
import { AgentConnection } from '../../engine/agent/connection';
import { PortWatch } from '../../engine/agent/port-watch';
import { pipeSocketToGuest } from '../../engine/agent/tcp-stream';
import { TcpForwarder } from '../../engine/forward';
import { MicrovmError } from '../../engine/errors';

/**
 * TCP_CONNECT and WATCH_PORTS against the real agent binary over its --unix transport: on
 * the host, "guest ports" are the host's own loopback ports.
 */
const agentBinary = path.join(__dirname, '../../native/build/microvm-agent');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-agent-fwd-'));
const socketPath = path.join(dir, 'agent.sock');
let agent: ChildProcess;
let connection: AgentConnection;

before(async () => {
  agent = spawn(agentBinary, ['--unix', socketPath], { stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; i < 200 && !fs.existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 10));
  ({ connection } = await AgentConnection.open(socketPath, {
    timeoutMs: 5000,
    describeLoss: async () => new MicrovmError('E_AGENT_PROTOCOL', 'test connection lost'),
  }));
});

after(() => {
  connection?.close();
  agent.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

async function listenOn(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

const forwardTo = (guestPort: number) =>
  TcpForwarder.listen(0, guestPort, (socket) => pipeSocketToGuest(connection, socket, guestPort));

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function readAll(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
}

test('a forwarded connection carries 8 MiB each way intact, with half-close both ways', async () => {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const hash = createHash('sha256');
    s.on('data', (d: Buffer) => hash.update(d));
    s.on('end', () => s.end(hash.digest('hex')));
  });
  const port = await listenOn(server);
  const forwarder = await forwardTo(port);
  const data = randomBytes(8 * 1024 * 1024);
  const client = await connect(forwarder.port);
  const reply = readAll(client);
  client.end(data);
  assert.equal((await reply).toString(), createHash('sha256').update(data).digest('hex'));
  await forwarder.stop();
  server.close();
});

test('the guest side half-closes first: the host still sends and reads its answer', async () => {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.write('hello ');
    s.end();
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => assert.equal(Buffer.concat(chunks).toString(), 'late data'));
  });
  const port = await listenOn(server);
  const forwarder = await forwardTo(port);
  const client = await connect(forwarder.port);
  const reply = await readAll(client);
  assert.equal(reply.toString(), 'hello ');
  client.end('late data');
  await new Promise((resolve) => client.on('close', resolve));
  await forwarder.stop();
  server.close();
});

test('no listener on the guest port: the host connection is closed promptly; the forwarder keeps working', async () => {
  const probe = net.createServer();
  const deadPort = await listenOn(probe);
  await new Promise((resolve) => probe.close(resolve));
  const forwarder = await forwardTo(deadPort);
  const started = Date.now();
  const client = await connect(forwarder.port);
  await new Promise((resolve) => { client.on('close', resolve); client.on('error', () => undefined); });
  assert.ok(Date.now() - started < 1000);
  assert.equal(forwarder.listening, true);
  await forwarder.stop();
  await forwarder.stop();
});

test('a reset by the guest program reaches the host client, and a host reset reaches the guest', async () => {
  let guestSide: net.Socket | undefined;
  let accepted = 0;
  const server = net.createServer((s) => {
    guestSide = s;
    if (++accepted === 1) s.once('data', () => s.resetAndDestroy());
  });
  const port = await listenOn(server);
  const forwarder = await forwardTo(port);
  const client = await connect(forwarder.port);
  const error = new Promise<NodeJS.ErrnoException>((resolve) => client.on('error', resolve));
  client.write('x');
  assert.equal((await error).code, 'ECONNRESET');

  const second = await connect(forwarder.port);
  second.write('y');
  while (accepted < 2 || !guestSide) await new Promise((r) => setTimeout(r, 10));
  const reset = guestSide;
  const guestError = new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    reset.on('error', resolve);
    reset.on('close', () => resolve(undefined));
  });
  second.resetAndDestroy();
  assert.equal((await guestError)?.code, 'ECONNRESET');
  await forwarder.stop();
  server.close();
});

test('a host port in use is refused with E_PORT_IN_USE naming the port', async () => {
  const taken = net.createServer();
  const port = await listenOn(taken);
  await assert.rejects(TcpForwarder.listen(port, 80, async () => undefined),
    (err: MicrovmError) => err.code === 'E_PORT_IN_USE' && err.message.includes(String(port)));
  taken.close();
});

test('WATCH_PORTS reports a new listener with its process, and its disappearance', async () => {
  const watch = new PortWatch(connection);
  await watch.ready;
  const server = net.createServer();
  const seen = new Promise<number>((resolve) => {
    const started = Date.now();
    const dispose = watch.onChange((change) => {
      if (change.added.some((l) => l.port === (server.address() as net.AddressInfo | null)?.port)) {
        dispose();
        resolve(Date.now() - started);
      }
    });
  });
  const port = await listenOn(server);
  assert.ok((await seen) < 1000);
  const entry = watch.current.find((l) => l.port === port);
  assert.equal(entry?.pid, process.pid);
  assert.equal(entry?.command, 'node');
  assert.equal(entry?.address, '127.0.0.1');
  const gone = new Promise<void>((resolve) => watch.onChange((c) => { if (c.removed.some((l) => l.port === port)) resolve(); }));
  server.close();
  await gone;
  watch.stop();
  await watch.ended;
});
