import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentConnection } from '../../engine/agent/connection';
import { encodeFrame, FrameDecoder } from '../../engine/agent/frame';
import {
  FrameType,
  MAX_EXEC_STREAMS,
  MAX_FORWARD_STREAMS,
  Op,
  PROTO_VERSION,
  Status,
  Tag,
} from '../../engine/agent/protocol';
import { FORWARD_QUEUE, MAX_STREAM_ID, StreamTable } from '../../engine/agent/stream-table';
import { parseTlv, TlvWriter } from '../../engine/agent/tlv';
import { MicrovmError } from '../../engine/errors';
import { RefusalNotices } from '../../engine/forward/refusals';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-streams-unit-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('numbering: a fresh agent (floor 0) gets ids from 1; a restored one gets ids above the floor it names', () => {
  const fresh = new StreamTable();
  fresh.startAbove(0);
  assert.deepEqual([fresh.open('exec'), fresh.open('control'), fresh.open('forward')], [1, 2, 3]);

  // The snapshot's host had streams 1..5 open (its workload among them): the restored agent says 5.
  const restored = new StreamTable();
  restored.startAbove(5);
  assert.equal(restored.open('control'), 6, 'RESTORED itself goes above every stream the agent still holds');
  assert.equal(restored.open('exec'), 7);
});

test('numbering wraps after MAX_STREAM_ID and skips ids still open', () => {
  const table = new StreamTable();
  table.startAbove(MAX_STREAM_ID - 1);
  assert.equal(table.open('exec'), MAX_STREAM_ID);
  assert.equal(table.open('exec'), 1);
  assert.equal(table.open('exec'), 2);
  const edge = new StreamTable();
  edge.startAbove(MAX_STREAM_ID);
  assert.equal(edge.open('watch'), 1);
});

test('a floor that is not a stream id is refused (it comes from the guest)', () => {
  for (const floor of [-1, 1.5, MAX_STREAM_ID + 1, 2 ** 32 - 1, Number.NaN]) {
    assert.throws(() => new StreamTable().startAbove(floor), RangeError, String(floor));
  }
});

test('each kind has its own share; control calls have no limit; a closed id frees its share', () => {
  const table = new StreamTable();
  const forwards = Array.from({ length: MAX_FORWARD_STREAMS }, () => table.open('forward'));
  assert.ok(forwards.every((id) => id !== undefined));
  assert.equal(table.open('forward'), undefined);
  assert.equal(table.hasRoom('exec'), true, 'forwards do not use the exec share');
  for (let i = 0; i < MAX_EXEC_STREAMS; i++) table.open('exec');
  assert.equal(table.open('exec'), undefined);
  for (let i = 0; i < 1000; i++) assert.notEqual(table.open('control'), undefined);
  assert.equal(table.close(forwards[0] as number), 'forward');
  assert.equal(table.close(forwards[0] as number), undefined, 'closing twice is a no-op');
  assert.notEqual(table.open('forward'), undefined);
});

interface FakeAgent {
  socketPath: string;
  /** Requests the fake agent received: stream id and OP. */
  requests: Array<{ stream: number; op: number | undefined }>;
  send(frame: Buffer): void;
  close(): void;
}

/**
 * An agent that was restored from a snapshot: its HELLO answer names `floor`, and right after
 * it, it still sends frames on the old host's streams (a RESPONSE on 1, output on 3), as a
 * real agent may before it reads RESTORED. PING is answered; other requests are held.
 * `inFlight` is sent as soon as the host connects: what the snapshot's virtqueue still held.
 */
async function restoredAgent(name: string, floor: number, inFlight?: Buffer): Promise<FakeAgent> {
  const socketPath = path.join(dir, `${name}.sock`);
  const requests: FakeAgent['requests'] = [];
  let client: net.Socket | undefined;
  const ok = new TlvWriter().u32(Tag.STATUS, Status.OK).toBuffer();
  const server = net.createServer((socket) => {
    client = socket;
    if (inFlight) socket.write(inFlight);
    const decoder = new FrameDecoder();
    socket.on('data', (data) => {
      for (const frame of decoder.push(data)) {
        if (frame.type === FrameType.HELLO) {
          const nonce = parseTlv(frame.payload).u64(Tag.NONCE) ?? 0n;
          socket.write(
            encodeFrame(
              FrameType.HELLO,
              0,
              new TlvWriter()
                .u64(Tag.NONCE, nonce)
                .u32(Tag.PROTO_VERSION, PROTO_VERSION)
                .u32(Tag.STREAM_FLOOR, floor)
                .toBuffer(),
            ),
          );
          socket.write(encodeFrame(FrameType.RESPONSE, 1, ok));
          socket.write(encodeFrame(FrameType.STDOUT, 3, Buffer.from('old output')));
        } else if (frame.type === FrameType.REQUEST) {
          const op = parseTlv(frame.payload).u32(Tag.OP);
          requests.push({ stream: frame.stream, op });
          if (op === Op.PING) socket.write(encodeFrame(FrameType.RESPONSE, frame.stream, ok));
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    requests,
    send: (frame) => client?.write(frame),
    close: () => {
      client?.destroy();
      server.close();
    },
  };
}

async function connect(agent: FakeAgent): Promise<AgentConnection> {
  const { connection } = await AgentConnection.open(agent.socketPath, {
    timeoutMs: 5000,
    describeLoss: async () => new MicrovmError('E_AGENT_PROTOCOL', 'fake agent gone'),
  });
  return connection;
}

const request = (op: number) => new TlvWriter().u32(Tag.OP, op);

test("simulated restore: the host numbers above the floor, and the old host's late frames are not taken for its calls", async () => {
  const agent = await restoredAgent('restore', 5);
  const connection = await connect(agent);
  try {
    const output: Buffer[] = [];
    const held = connection.request(request(Op.RESTORED), { onStdout: (d) => output.push(d) });
    await connection.request(request(Op.PING));
    assert.deepEqual(
      agent.requests.map((r) => r.stream),
      [6, 7],
    );
    assert.equal(connection.isOpen(6), true, 'the stale RESPONSE on stream 1 did not end our first call');
    assert.deepEqual(output, [], 'the stale output on stream 3 reached nobody');
    agent.send(encodeFrame(FrameType.RESPONSE, 6, new TlvWriter().u32(Tag.STATUS, Status.OK).toBuffer()));
    await held;
  } finally {
    connection.close();
    agent.close();
  }
});

test('simulated restore: the tail of a frame in flight at the snapshot, even one that looks like a header, does not break the handshake', async () => {
  const tail = encodeFrame(FrameType.STDOUT, 1, Buffer.alloc(5000)).subarray(3000);
  // A false header in the stale output: it swallows the first HELLO answer; a retried HELLO gets through.
  const falseHeader = encodeFrame(FrameType.STDOUT, 1, Buffer.alloc(200)).subarray(0, 12);
  const agent = await restoredAgent('in-flight', 2, Buffer.concat([tail, Buffer.from('log: '), falseHeader]));
  const connection = await connect(agent);
  try {
    await connection.request(request(Op.PING));
    assert.deepEqual(
      agent.requests.map((r) => r.stream),
      [3],
    );
  } finally {
    connection.close();
    agent.close();
  }
});

test('forwards past MAX_FORWARD_STREAMS wait for one to end, at most FORWARD_QUEUE.waitMs and FORWARD_QUEUE.max of them; control calls never wait', async (t) => {
  const agent = await restoredAgent('budget', 0);
  const connection = await connect(agent);
  t.mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const tcp = () => connection.request(request(Op.TCP_CONNECT), {}, undefined, 'forward');
    const carried = Array.from({ length: MAX_FORWARD_STREAMS }, () => tcp().catch(() => undefined));
    const waiting = Array.from({ length: FORWARD_QUEUE.max }, () => tcp());
    await assert.rejects(
      tcp(),
      (err: MicrovmError) => err.code === 'E_FORWARD_LIMIT' && /waiting already/.test(err.message),
    );
    await connection.request(request(Op.PING));
    assert.equal(agent.requests.filter((r) => r.op === Op.TCP_CONNECT).length, MAX_FORWARD_STREAMS);

    // One carried connection ends: the oldest waiting one takes its place.
    const ok = new TlvWriter().u32(Tag.STATUS, Status.OK).toBuffer();
    agent.send(encodeFrame(FrameType.RESPONSE, agent.requests[0]!.stream, ok));
    await carried[0];
    await connection.request(request(Op.PING));
    assert.equal(agent.requests.filter((r) => r.op === Op.TCP_CONNECT).length, MAX_FORWARD_STREAMS + 1);

    t.mock.timers.tick(FORWARD_QUEUE.waitMs);
    const outcomes = await Promise.allSettled(waiting.slice(1));
    assert.ok(
      outcomes.every((o) => o.status === 'rejected' && (o.reason as MicrovmError).code === 'E_FORWARD_LIMIT'),
      'the rest are refused once they waited FORWARD_QUEUE.waitMs',
    );
    assert.match(
      ((outcomes[0] as PromiseRejectedResult).reason as Error).message,
      new RegExp(`carries ${MAX_FORWARD_STREAMS} forwarded connections`),
    );
    connection.close();
    await Promise.allSettled([...carried, waiting[0]]);
  } finally {
    connection.close();
    agent.close();
  }
});

test('exec streams past their share wait in order and start as streams end', async () => {
  const agent = await restoredAgent('queue', 0);
  const connection = await connect(agent);
  try {
    const running = Array.from({ length: MAX_EXEC_STREAMS }, () =>
      connection.request(request(Op.EXEC), {}, undefined, 'exec'),
    );
    const order: number[] = [];
    const waiting = [1, 2].map((n) =>
      connection.request(request(Op.EXEC), {}, (id) => order.push(n * 1000 + id), 'exec'),
    );
    await connection.request(request(Op.PING));
    assert.equal(
      agent.requests.filter((r) => r.op === Op.EXEC).length,
      MAX_EXEC_STREAMS,
      'the two extra execs wait on the host',
    );
    const done = new TlvWriter().u32(Tag.STATUS, Status.OK).toBuffer();
    agent.send(encodeFrame(FrameType.RESPONSE, agent.requests[0]!.stream, done));
    await running[0];
    agent.send(encodeFrame(FrameType.RESPONSE, agent.requests[1]!.stream, done));
    await running[1];
    assert.deepEqual(
      order.map((o) => Math.floor(o / 1000)),
      [1, 2],
      'first come, first served',
    );
    connection.close();
    await Promise.allSettled([...running, ...waiting]);
  } finally {
    agent.close();
  }
});

test('refusal notices: the first at once, a burst after it as one notice per interval', async () => {
  const notices: number[] = [];
  const log = new RefusalNotices((n) => `refused ${n}`, 200);
  log.on((notice) => notices.push(notice.refused));
  log.record();
  for (let i = 0; i < 99; i++) log.record();
  assert.deepEqual(notices, [1]);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(notices, [1, 99]);
  log.record();
  log.close();
  assert.deepEqual(notices, [1, 99, 1]);
});
