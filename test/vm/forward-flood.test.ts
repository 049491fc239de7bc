import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { ExecChild, Image, MicrovmError, Pool, TcpForwarder, Vm } from '../../engine';
import { MAX_FORWARD_STREAMS } from '../../engine/agent/protocol';
import { FORWARD_QUEUE } from '../../engine/agent/stream-table';
import type { ForwardRefusal } from '../../engine';

/**
 * Issue 14, item 10: a flood of held forwarded connections must never take the VM down.
 * An echo server in the guest (busybox nc, a `cat` per connection, no timeout) holds each
 * connection as long as the host keeps it, as a keep-alive pool or a websocket would.
 */
let pool: Pool;
let vm: Vm;
let echo: ExecChild;
let forwarder: TcpForwarder;
const exits: MicrovmError[] = [];
const notices: ForwardRefusal[] = [];
const GUEST_PORT = 7000;

before(async () => {
  const image = await Image.build({});
  pool = image.pool({ min: 1, max: 1 });
  vm = await pool.acquire();
  vm.onExit((error) => exits.push(error));
  await vm.exec({ argv: ['sh', '-c', 'head -c 4000000 /dev/zero > /tmp/big'] });
  echo = vm.spawn({ argv: ['nc', '-ll', '-p', String(GUEST_PORT), '-e', 'cat'], timeoutMs: 0 });
  while (!(await vm.listeningPorts()).some((l) => l.port === GUEST_PORT)) await new Promise((r) => setTimeout(r, 100));
  forwarder = await vm.exposeTcp(0, GUEST_PORT);
  forwarder.onRefused((notice) => notices.push(notice));
});

after(async () => {
  echo?.signal('SIGKILL');
  await vm?.release();
  await pool?.shutdown();
});

/** Opens a connection and sends `line` through the guest's echo server; resolves with the socket once it came back. */
function carried(port: number, line: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('error', reject);
    socket.once('data', (d: Buffer) =>
      d.toString() === `${line}\n` ? resolve(socket) : reject(new Error(`echo of ${line}: ${d}`)),
    );
    socket.write(`${line}\n`);
  });
}

/**
 * `count` connections, one after another, each echoed by the guest before the next: the
 * guest's echo server (busybox nc) has a small listen backlog that a burst would overflow.
 */
async function holdCarried(port: number, count: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < count; i++) sockets.push(await carried(port, `held ${i}`));
  return sockets;
}

/** `count` connections at once; resolves with how many of them the host closed or reset before any data. */
function burst(port: number, count: number): { sockets: net.Socket[]; closed: () => number } {
  let closed = 0;
  const sockets = Array.from({ length: count }, () => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.once('close', () => closed++);
    return socket;
  });
  return { sockets, closed: () => closed };
}

/** A last line through a held connection and back, then the connection is closed. */
function lastEcho(socket: net.Socket, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (Buffer.concat(chunks).includes('\n')) socket.end();
    });
    socket.on('end', () => resolve(Buffer.concat(chunks).toString()));
    socket.on('error', reject);
    socket.write(`${line}\n`);
  });
}

async function execLatencies(n: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const result = await vm.exec({ argv: ['true'], timeoutMs: 30_000 });
    assert.equal(result.exitCode, 0);
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b);
}

const p50 = (sorted: number[]) => sorted[Math.floor(sorted.length / 2)];

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  for (const deadline = Date.now() + ms; !ok();) {
    assert.ok(Date.now() < deadline, what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Holds `count` connections; checks the cap, the refusals, that exec, a health check and the port list still answer; then lets them go. */
async function flood(count: number): Promise<void> {
  const refusedBefore = forwarder.refusedConnections;
  const idle = await execLatencies(10);
  const held = await holdCarried(forwarder.port, MAX_FORWARD_STREAMS);
  const started = performance.now();
  const refused = count - MAX_FORWARD_STREAMS;
  const extra = burst(forwarder.port, refused);
  // The ones past the cap wait FORWARD_QUEUE.waitMs for a carried one to end, then are reset.
  await until(
    `${refused} of ${count} connections are refused`,
    () => forwarder.refusedConnections - refusedBefore >= refused,
    FORWARD_QUEUE.waitMs + 20_000,
  );
  await until('the refused connections are closed on the host', () => extra.closed() >= refused);
  const refusedMs = performance.now() - started;
  assert.equal(
    forwarder.refusedConnections - refusedBefore,
    refused,
    'exactly the connections past the cap are refused',
  );

  const loaded = await execLatencies(10);
  // A call that misses its deadline starts a health check: its ping must get through the flood.
  await assert.rejects(
    vm.readFile('/tmp/big', { timeoutMs: 1 }),
    (err: MicrovmError) => err.code === 'E_AGENT_TIMEOUT',
  );
  await new Promise((r) => setTimeout(r, 4000));
  assert.ok((await vm.listeningPorts()).some((l) => l.port === GUEST_PORT));
  assert.deepEqual(exits, [], 'the VM is alive: no E_AGENT_UNRESPONSIVE');

  const answers = await Promise.all(held.map((socket, i) => lastEcho(socket, `still ${i}`)));
  assert.deepEqual(
    answers,
    held.map((_, i) => `still ${i}\n`),
    'every held connection is still carried',
  );
  console.log(
    `# ${count} held connections: ${MAX_FORWARD_STREAMS} carried, ${refused} refused after ${refusedMs.toFixed(0)} ms; ` +
      `exec true p50 ${p50(idle)!.toFixed(1)} ms idle, ${p50(loaded)!.toFixed(1)} ms under the flood (max ${loaded[loaded.length - 1]!.toFixed(1)} ms)`,
  );
}

test('70 held forwarded connections: 60 are carried, 10 refused after waiting; exec and the health check still answer', async () => {
  await flood(70);
});

test('200 held forwarded connections: the same; refusals make one notice, not one line each', async () => {
  await flood(200);
  await forwarder.stop();
  const refusedTotal = notices.reduce((sum, n) => sum + n.refused, 0);
  assert.equal(refusedTotal, forwarder.refusedConnections);
  assert.ok(notices.length <= 4, `${notices.length} notices for ${refusedTotal} refusals`);
  assert.match(notices[0]!.message, new RegExp(`carries ${MAX_FORWARD_STREAMS} forwarded connections`));
});

test('once the held connections close, new ones are carried again, up to the cap', async () => {
  const again = await vm.exposeTcp(0, GUEST_PORT);
  try {
    const held = await holdCarried(again.port, MAX_FORWARD_STREAMS);
    const answers = await Promise.all(held.map((socket, i) => lastEcho(socket, `again ${i}`)));
    assert.deepEqual(
      answers,
      held.map((_, i) => `again ${i}\n`),
    );
    assert.equal(again.refusedConnections, 0);
    assert.deepEqual(exits, []);
  } finally {
    await again.stop();
  }
});
