import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { encodeFrame } from '../../engine/agent/frame';
import { encodeProcessRequest, ProcessRequest } from '../../engine/agent/process';
import { FrameType, MAX_EXEC_STREAMS, MAX_FORWARD_STREAMS, Op, PROTO_VERSION, Status, Tag } from '../../engine/agent/protocol';
import { parseTlv, TlvWriter } from '../../engine/agent/tlv';
import { rawAgentSession, RawAgentSession } from '../helpers/raw-agent';

/**
 * The agent's stream table (native/agent/streams.c) on the real binary over --unix: the
 * budget of each kind, and RESTORED ending the streams of the host that saved a snapshot.
 */
const agentBinary = path.join(__dirname, '../../native/build/microvm-agent');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-agent-streams-'));
const socketPath = path.join(dir, 'agent.sock');
let agent: ChildProcess;

before(async () => {
  agent = spawn(agentBinary, ['--unix', socketPath], { stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; i < 200 && !fs.existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 10));
});

after(() => {
  agent.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

const processBody = (argv: string[], extra: Partial<ProcessRequest> = {}): Buffer =>
  encodeProcessRequest({ argv, env: ['PATH=/usr/bin:/bin'], timeoutMs: 0, stageFiles: [], chain: [], ...extra }).toBuffer();

const request = (stream: number, body: Buffer) => encodeFrame(FrameType.REQUEST, stream, body);
const op = (code: number) => new TlvWriter().u32(Tag.OP, code).toBuffer();

async function statusOf(raw: RawAgentSession, stream: number): Promise<{ status: number | undefined; error: string | undefined }> {
  const fields = parseTlv((await raw.nextOn(stream, FrameType.RESPONSE)).payload);
  return { status: fields.u32(Tag.STATUS), error: fields.str(Tag.ERROR) };
}

async function streamFloor(raw: RawAgentSession): Promise<number | undefined> {
  raw.send(encodeFrame(FrameType.HELLO, 0, new TlvWriter().u64(Tag.NONCE, 1n).u32(Tag.PROTO_VERSION, PROTO_VERSION).toBuffer()));
  return parseTlv((await raw.nextOn(0, FrameType.HELLO)).payload).u32(Tag.STREAM_FLOOR);
}

function processesWith(marker: string): string[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker); } catch { return false; }
  });
}

test('each kind has its own budget: past MAX_FORWARD_STREAMS and MAX_EXEC_STREAMS the agent answers E_BUSY, and control calls still answer', async () => {
  const held: net.Socket[] = [];
  const server = net.createServer((s) => {
    s.on('error', () => undefined); // the agent resets them when the session ends
    held.push(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const raw = await rawAgentSession(socketPath);
  const marker = `1000.${process.pid}${Date.now() % 100000}`;
  try {
    for (let i = 0; i < MAX_FORWARD_STREAMS; i++) {
      raw.send(request(1000 + i, new TlvWriter().u32(Tag.OP, Op.TCP_CONNECT).u32(Tag.PORT, port).toBuffer()));
    }
    raw.send(request(2000, new TlvWriter().u32(Tag.OP, Op.TCP_CONNECT).u32(Tag.PORT, port).toBuffer()));
    const refused = await statusOf(raw, 2000);
    assert.equal(refused.status, Status.E_BUSY);
    assert.match(refused.error ?? '', new RegExp(`${MAX_FORWARD_STREAMS} TCP_CONNECT streams are open`));
    while (held.length < MAX_FORWARD_STREAMS) await new Promise((r) => setTimeout(r, 10));

    raw.send(request(2001, op(Op.PING)));
    assert.equal((await statusOf(raw, 2001)).status, Status.OK);
    for (let i = 0; i < MAX_EXEC_STREAMS; i++) raw.send(request(3000 + i, processBody(['sleep', marker])));
    raw.send(request(4000, processBody(['true'])));
    assert.equal((await statusOf(raw, 4000)).status, Status.E_BUSY, 'the exec share is full, whatever the forwards hold');
    raw.send(request(4001, op(Op.PING)));
    raw.send(request(4002, op(Op.INFO)));
    assert.equal((await statusOf(raw, 4001)).status, Status.OK);
    assert.equal((await statusOf(raw, 4002)).status, Status.OK);
    assert.equal(await streamFloor(raw), 3000 + MAX_EXEC_STREAMS - 1, 'the floor is the highest id in use');
  } finally {
    raw.close();
    server.close();
  }
  for (const deadline = Date.now() + 3000; processesWith(marker).length > 0;) {
    assert.ok(Date.now() < deadline, 'a disconnect kills the held processes');
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const s of held) s.destroy();
});

test('RESTORED ends the old host\'s streams: the workload is detached and drained, the rest killed, their ids free again', async () => {
  const counter = path.join(dir, 'ticks');
  const marker = `1000.${process.pid}${Date.now() % 100000}`;
  const raw = await rawAgentSession(socketPath);
  try {
    // A chatty workload that nobody grants credit: it blocks once OUTPUT_WINDOW and the pipe are full.
    const chatty = `i=0; while :; do i=$((i+1)); echo $i > ${counter}; head -c 65536 /dev/zero; done`;
    raw.send(request(7, processBody(['sh', '-c', chatty], { workload: true })));
    raw.send(request(9, processBody(['sleep', marker])));
    const ticks = () => Number(fs.readFileSync(counter, 'utf8').trim() || 0);
    await new Promise((r) => setTimeout(r, 500));
    const blocked = ticks();
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(ticks() <= blocked + 1, `without credit the workload blocks (${blocked} -> ${ticks()})`);
    assert.equal(await streamFloor(raw), 9);

    raw.send(request(10, new TlvWriter().u32(Tag.OP, Op.RESTORED).raw(Tag.RNG_SEED, Buffer.alloc(16, 1)).u64(Tag.TIME_NS, 1n).toBuffer()));
    assert.equal((await statusOf(raw, 10)).status, Status.OK);
    assert.equal(await streamFloor(raw), 0, 'no stream of the old host is left');
    for (const deadline = Date.now() + 3000; ticks() < blocked + 20;) {
      assert.ok(Date.now() < deadline, `the detached workload's output is drained (${ticks()} ticks)`);
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const deadline = Date.now() + 3000; processesWith(marker).length > 0;) {
      assert.ok(Date.now() < deadline, 'the old host\'s other processes are killed');
      await new Promise((r) => setTimeout(r, 50));
    }
    raw.send(request(7, processBody(['echo', 'reused'])));
    const out = await raw.nextOn(7, FrameType.STDOUT);
    assert.equal(out.payload.toString(), 'reused\n');
    assert.equal((await statusOf(raw, 7)).status, Status.OK, 'the old id is free for the new host');
    raw.send(request(11, new TlvWriter().u32(Tag.OP, Op.SIGNAL_WORKLOAD).u32(Tag.SIGNO, 9).toBuffer()));
    assert.equal((await statusOf(raw, 11)).status, Status.OK, 'the detached workload is still the workload');
  } finally {
    raw.close();
  }
});
