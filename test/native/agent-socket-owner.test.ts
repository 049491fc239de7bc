import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import { ChildProcess, spawn } from 'node:child_process';
import { AgentClient } from '../../engine/agent/client';
import { AgentConnection } from '../../engine/agent/connection';
import { MicrovmError } from '../../engine/errors';

/**
 * SOCKET_OWNER against the real agent binary over its --unix transport: on the host, the
 * "guest" connections are this test's own.
 */
const agentBinary = path.join(__dirname, '../../native/build/microvm-agent');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-agent-owner-'));
const socketPath = path.join(dir, 'agent.sock');
let agent: ChildProcess;
let client: AgentClient;

before(async () => {
  agent = spawn(agentBinary, ['--unix', socketPath], { stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; i < 200 && !fs.existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 10));
  const { connection, info } = await AgentConnection.open(socketPath, {
    timeoutMs: 5000,
    describeLoss: async () => new MicrovmError('E_AGENT_PROTOCOL', 'test connection lost'),
  });
  client = new AgentClient(connection, info);
});

after(() => {
  client?.connection.close();
  agent.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('SOCKET_OWNER: the process holding a TCP connection, by its local port; none for a listener or a free port', async () => {
  assert.ok(client.info.features.includes('socket-owner'), client.info.features.join(' '));
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const listening = (server.address() as net.AddressInfo).port;
  const socket = net.connect(listening, '127.0.0.1');
  await once(socket, 'connect');
  try {
    const comm = fs.readFileSync('/proc/self/comm', 'utf8').trim();
    assert.deepEqual(await client.socketOwner(socket.localPort!), { pid: process.pid, comm });
    socket.destroy();
    await once(socket, 'close');
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const free = (probe.address() as net.AddressInfo).port;
    probe.close();
    assert.equal(await client.socketOwner(free), undefined, 'nothing holds that port');
  } finally {
    socket.destroy();
    server.close();
  }
});
