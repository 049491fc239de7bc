import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { ExecChild, Image, MicrovmError, Pool, TcpForwarder, Vm } from '../../engine';
import { MAX_FORWARD_STREAMS } from '../../engine/agent/protocol';
import { FORWARD_QUEUE } from '../../engine/agent/stream-table';
import type { ForwardRefusal } from '../../engine';

/**
 * Issue 14, item 10: a flood of held forwarded connections must never take the VM down.
 * Busybox httpd in the guest holds each connection (a child per connection waits up to 60 s
 * for its request), as a browser's keep-alive pool or a websocket would.
 */
let pool: Pool;
let vm: Vm;
let httpd: ExecChild;
let forwarder: TcpForwarder;
const exits: MicrovmError[] = [];
const notices: ForwardRefusal[] = [];
const GUEST_PORT = 8080;

before(async () => {
  const image = await Image.build({});
  pool = image.pool({ min: 1, max: 1 });
  vm = await pool.acquire();
  vm.onExit((error) => exits.push(error));
  await vm.writeFile('/srv/index.html', 'held\n');
  await vm.exec({ argv: ['sh', '-c', 'head -c 4000000 /dev/zero > /tmp/big'] });
  httpd = vm.spawn({ argv: ['httpd', '-f', '-p', String(GUEST_PORT), '-h', '/srv'], timeoutMs: 0 });
  while (!(await vm.listeningPorts()).some((l) => l.port === GUEST_PORT)) await new Promise((r) => setTimeout(r, 100));
  forwarder = await vm.exposeTcp(0, GUEST_PORT);
  forwarder.onRefused((notice) => notices.push(notice));
});

after(async () => {
  httpd?.signal('SIGKILL');
  await vm?.release();
  await pool?.shutdown();
});

interface Held {
  socket: net.Socket;
  /** Set when the connection was closed or reset before we sent anything. */
  closed: boolean;
}

async function hold(port: number, count: number): Promise<Held[]> {
  return Promise.all(Array.from({ length: count }, () => new Promise<Held>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const held: Held = { socket, closed: false };
    socket.on('error', () => { held.closed = true; });
    socket.on('close', () => { held.closed = true; });
    socket.once('connect', () => resolve(held));
    socket.once('error', (err) => (held.closed ? resolve(held) : reject(err)));
  })));
}

/** An HTTP request on a held connection; resolves with the response text. */
function ask(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString()));
    socket.on('error', reject);
    socket.write('GET /index.html HTTP/1.0\r\n\r\n');
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
  const started = performance.now();
  const held = await hold(forwarder.localAddr.port, count);
  const refused = count - MAX_FORWARD_STREAMS;
  // The ones past the cap wait FORWARD_QUEUE.waitMs for a carried one to end, then are reset.
  await until(`${refused} of ${count} connections are refused`, () => forwarder.refusedConnections - refusedBefore >= refused,
    FORWARD_QUEUE.waitMs + 20_000);
  await until('the refused connections are closed on the host', () => held.filter((h) => h.closed).length >= refused);
  const refusedMs = performance.now() - started;
  assert.equal(forwarder.refusedConnections - refusedBefore, refused, 'exactly the connections past the cap are refused');

  const loaded = await execLatencies(10);
  // A call that misses its deadline starts a health check: its ping must get through the flood.
  await assert.rejects(vm.readFile('/tmp/big', { timeoutMs: 1 }), (err: MicrovmError) => err.code === 'E_AGENT_TIMEOUT');
  await new Promise((r) => setTimeout(r, 4000));
  assert.ok((await vm.listeningPorts()).some((l) => l.port === GUEST_PORT));
  assert.deepEqual(exits, [], 'the VM is alive: no E_AGENT_UNRESPONSIVE');

  const open = held.filter((h) => !h.closed);
  assert.equal(open.length, MAX_FORWARD_STREAMS);
  const answers = await Promise.all(open.map((h) => ask(h.socket)));
  assert.ok(answers.every((a) => a.startsWith('HTTP/1.') && a.endsWith('held\n')), 'every held connection was carried to the guest');
  console.log(`# ${count} held connections: ${MAX_FORWARD_STREAMS} carried, ${refused} refused after ${refusedMs.toFixed(0)} ms; ` +
    `exec true p50 ${p50(idle).toFixed(1)} ms idle, ${p50(loaded).toFixed(1)} ms under the flood (max ${loaded[loaded.length - 1].toFixed(1)} ms)`);
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
  assert.match(notices[0].message, new RegExp(`carries ${MAX_FORWARD_STREAMS} forwarded connections`));
});

test('once the held connections close, new ones are carried again, up to the cap', async () => {
  const again = await vm.exposeTcp(0, GUEST_PORT);
  try {
    const held = await hold(again.localAddr.port, MAX_FORWARD_STREAMS);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(held.filter((h) => h.closed).length, 0, 'nothing is refused after the flood went away');
    const answers = await Promise.all(held.map((h) => ask(h.socket)));
    assert.ok(answers.every((a) => a.endsWith('held\n')));
    assert.equal(again.refusedConnections, 0);
    assert.deepEqual(exits, []);
  } finally {
    await again.stop();
  }
});
