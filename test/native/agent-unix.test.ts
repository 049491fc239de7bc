import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import { AgentClient } from '../../engine/agent/client';
import { AgentConnection } from '../../engine/agent/connection';
import { encodeFrame } from '../../engine/agent/frame';
import { FrameType, MAX_PAYLOAD, Op, Status, Tag } from '../../engine/agent/protocol';
import { parseTlv, TlvWriter } from '../../engine/agent/tlv';
import { MicrovmError } from '../../engine/errors';
import { rawAgentSession } from '../helpers/raw-agent';

/**
 * The real agent binary, run on the host over a Unix socket (its test transport), driven
 * through the engine's own client and through hand-made hostile frames.
 */
const agentBinary = path.join(__dirname, '../../native/build/microvm-agent');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-agent-'));
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

async function openClient(): Promise<AgentClient> {
  const { connection, info } = await AgentConnection.open(socketPath, {
    timeoutMs: 5000,
    describeLoss: async () => new MicrovmError('E_AGENT_PROTOCOL', 'test connection lost'),
  });
  return new AgentClient(connection, info);
}

const rawSession = () => rawAgentSession(socketPath);

const exec = (argv: string[], extra: Partial<Parameters<AgentClient['exec']>[0]> = {}) =>
  ({ argv, env: ['PATH=/usr/bin:/bin'], timeoutMs: 10_000, stageFiles: [], chain: [], ...extra });

test('handshake reports version and features', async () => {
  const client = await openClient();
  assert.equal(client.info.protoVersion, 1);
  for (const feature of ['exec', 'spawn', 'tty', 'files', 'workload', 'chain']) assert.ok(client.info.features.includes(feature), feature);
  client.connection.close();
});

test('exec collects output and exit codes; a missing program exits 127 with a message', async () => {
  const client = await openClient();
  const result = await client.exec(exec(['sh', '-c', 'echo out; echo err >&2; exit 3']), 1 << 20);
  assert.equal(result.stdout.toString(), 'out\n');
  assert.equal(result.stderr.toString(), 'err\n');
  assert.equal(result.exitCode, 3);
  const missing = await client.exec(exec(['no-such-program-xyz']), 1 << 20);
  assert.equal(missing.exitCode, 127);
  assert.match(missing.stderr.toString(), /no-such-program-xyz/);
  client.connection.close();
});

test('malformed TLV, an unknown op, an unknown frame type and an oversized frame each get an error reply, and the agent keeps serving', async () => {
  const raw = await rawSession();
  const truncated = Buffer.from([1, 0, 4, 0, 0, 0, 1]);
  raw.send(encodeFrame(FrameType.REQUEST, 1, truncated));
  let reply = await raw.next();
  assert.equal(reply.type, FrameType.RESPONSE);
  assert.equal(parseTlv(reply.payload).u32(Tag.STATUS), Status.E_BAD_REQUEST);

  raw.send(encodeFrame(FrameType.REQUEST, 2, new TlvWriter().u32(Tag.OP, 99).toBuffer()));
  reply = await raw.next();
  assert.equal(parseTlv(reply.payload).u32(Tag.STATUS), Status.E_UNKNOWN_OP);

  raw.send(encodeFrame(77, 3));
  reply = await raw.next();
  assert.equal(reply.type, FrameType.ERROR);
  assert.equal(parseTlv(reply.payload).u32(Tag.STATUS), Status.E_BAD_FRAME);

  const header = encodeFrame(FrameType.REQUEST, 4).subarray(0, 12);
  header.writeUInt32LE(MAX_PAYLOAD + 1, 8);
  raw.send(Buffer.concat([header, Buffer.alloc(MAX_PAYLOAD + 1)]));
  reply = await raw.next();
  assert.equal(reply.type, FrameType.ERROR);
  assert.equal(reply.stream, 4);
  assert.equal(parseTlv(reply.payload).u32(Tag.STATUS), Status.E_TOO_LARGE);

  raw.send(encodeFrame(FrameType.REQUEST, 5, new TlvWriter().u32(Tag.OP, Op.PING).toBuffer()));
  reply = await raw.next();
  assert.equal(reply.stream, 5);
  assert.equal(parseTlv(reply.payload).u32(Tag.STATUS), Status.OK);
  raw.close();
});

test('a header with a bad magic is answered on stream 0 and later frames are served', async () => {
  const raw = await rawSession();
  raw.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
  const reply = await raw.next();
  assert.equal(reply.type, FrameType.ERROR);
  assert.equal(reply.stream, 0);
  await new Promise((r) => setTimeout(r, 50));
  raw.send(encodeFrame(FrameType.REQUEST, 9, new TlvWriter().u32(Tag.OP, Op.PING).toBuffer()));
  const pong = await raw.next();
  assert.equal(pong.stream, 9);
  raw.close();
});

test('10,000 random and mutated frames do not crash or hang the agent', async () => {
  const raw = await rawSession();
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const ping = encodeFrame(FrameType.REQUEST, 1, new TlvWriter().u32(Tag.OP, Op.INFO).toBuffer());
  for (let i = 0; i < 10_000; i++) {
    const frame = Buffer.from(ping);
    frame.writeUInt32LE(1000 + i, 4);
    for (let flips = 0; flips < 2; flips++) {
      const at = 12 + Math.floor(random() * (frame.length - 12));
      frame[at] = Math.floor(random() * 256);
    }
    raw.send(frame);
  }
  raw.close();
  const client = await openClient();
  const result = await client.exec(exec(['echo', 'still here']), 1 << 20);
  assert.equal(result.stdout.toString(), 'still here\n');
  assert.equal(agent.exitCode, null, 'the agent is still running');
  client.connection.close();
});

test('RESTORED needs a seed and a time; on the host it only checks them; a refusal ends the connection', async () => {
  const client = await openClient();
  const fatal = (refusal: MicrovmError) => new MicrovmError('E_RESTORE_FAILED', `refused: ${refusal.message}`);
  await client.restored(Buffer.alloc(32, 7), BigInt(Date.now()) * 1_000_000n, fatal);
  await assert.rejects(client.connection.request(new TlvWriter().u32(Tag.OP, Op.RESTORED).u64(Tag.TIME_NS, 1n)),
    (err: Error) => /RNG_SEED/.test(err.message));
  assert.equal(client.connection.closed, false, 'a refusal without fatalRefusal leaves the connection open');
  const refused = client.restored(Buffer.alloc(513), 1n, fatal);
  const later = client.connection.request(new TlvWriter().u32(Tag.OP, Op.PING));
  await assert.rejects(refused, (err: MicrovmError) => err.code === 'E_RESTORE_FAILED' && /RNG_SEED/.test(err.message));
  await assert.rejects(later, (err: MicrovmError) => err.code === 'E_RESTORE_FAILED', 'a call sent after the refused RESTORED fails with it');
  assert.equal(client.connection.closed, true);
});

test('without cgroups (--unix) a timeout still kills the process group; PIDS_MAX is checked, then unused', async () => {
  const client = await openClient();
  assert.ok(!client.info.features.includes('cgroup'), 'no cgroup feature on the host');
  const marker = `${process.pid}.${Date.now() % 100000}`;
  const started = Date.now();
  const result = await client.exec(exec(['sh', '-c', `sleep 3${marker} & sleep 3${marker} & wait`], { timeoutMs: 300, pidsMax: 16 }), 1 << 20);
  assert.equal(result.timedOut, true);
  assert.equal(result.signal, 'SIGKILL');
  assert.ok(Date.now() - started < 3000);
  const left = () => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker); } catch { return false; }
  });
  for (const deadline = Date.now() + 2000; left().length > 0;) {
    assert.ok(Date.now() < deadline, `the group's sleeps are gone: ${left().join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await assert.rejects(client.exec(exec(['true'], { pidsMax: 4194305 }), 1 << 20), /PIDS_MAX/);
  client.connection.close();
});

test('FILE_EVENTS refuses paths that leave the mount, bad kinds and too many events; valid ones (also from an older host, with the retired SIZE and MTIME_NS) are checked, then refused off PID 1', async () => {
  const tooMany = new TlvWriter().u32(Tag.OP, Op.FILE_EVENTS).str(Tag.PATH, '/workspace');
  for (let i = 0; i <= 1024; i++) tooMany.nested(Tag.FILE_EVENT, new TlvWriter().u32(Tag.EVENT_KIND, 1).str(Tag.EVENT_PATH, `f${i}`));
  const raw = await rawSession();
  raw.send(encodeFrame(FrameType.REQUEST, 1, tooMany.toBuffer()));
  assert.equal(parseTlv((await raw.nextOn(1, FrameType.RESPONSE)).payload).u32(Tag.STATUS), Status.E_TOO_LARGE);
  raw.send(encodeFrame(FrameType.REQUEST, 2, new TlvWriter().u32(Tag.OP, Op.FILE_EVENTS).str(Tag.PATH, '/workspace')
    .nested(Tag.FILE_EVENT, new TlvWriter().u32(Tag.EVENT_KIND, 9).str(Tag.EVENT_PATH, 'f')).toBuffer()));
  assert.equal(parseTlv((await raw.nextOn(2, FrameType.RESPONSE)).payload).u32(Tag.STATUS), Status.E_BAD_REQUEST);
  // An older host's MODIFY also carried SIZE (57) and MTIME_NS (58), now retired: ignored, the request is valid.
  raw.send(encodeFrame(FrameType.REQUEST, 3, new TlvWriter().u32(Tag.OP, Op.FILE_EVENTS).str(Tag.PATH, '/workspace')
    .nested(Tag.FILE_EVENT, new TlvWriter().u32(Tag.EVENT_KIND, 1).str(Tag.EVENT_PATH, 'src/a.ts').u64(57, 3n).u64(58, 1n)).toBuffer()));
  const retired = parseTlv((await raw.nextOn(3, FrameType.RESPONSE)).payload);
  assert.equal(retired.u32(Tag.STATUS), Status.E_IO);
  assert.match(retired.str(Tag.ERROR) ?? '', /PID 1/);
  raw.close();

  const client = await openClient();
  const refusal = async (events: Parameters<AgentClient['fileEvents']>[1]) => {
    const err = await client.fileEvents('/workspace', events).then(() => undefined, (e: unknown) => e as MicrovmError<'E_AGENT_REFUSED'>);
    assert.ok(err, `refused: ${events.map((e) => `${e.kind} ${e.path}`).join(", ")}`);
    return err;
  };
  for (const bad of ['../etc/passwd', '/etc/passwd', 'a/../../b', 'a//b', './a', 'a/.', 'a/', '']) {
    const err = await refusal([{ kind: 'MODIFY', path: bad }]);
    assert.equal(err.details?.agentStatus, Status.E_BAD_REQUEST, bad);
    assert.match(err.message, /EVENT_PATH/, bad);
  }
  // The mount itself only as a directory change; everything valid, but the agent is not PID 1 here.
  const offPid1 = await refusal([{ kind: 'DIR_CHANGED', path: '' }, { kind: 'MODIFY', path: 'src/a.ts' }, { kind: 'DELETE', path: '.hidden/x' }]);
  assert.equal(offPid1.details?.agentStatus, Status.E_IO);
  assert.match(offPid1.message, /PID 1/);
  assert.equal((await refusal([])).details?.agentStatus, Status.E_IO, 'an empty request is valid (it arms the module)');
  assert.ok(!client.info.features.includes('file-events'), 'no file-events feature without the guest device');
  client.connection.close();
});

test('spawn: reads give the output, then a zero-length Buffer at the end, and again on every later read', async () => {
  const client = await openClient();
  const child = client.spawn(exec(['sh', '-c', 'printf out; printf err >&2']));
  assert.equal((await child.readStdout()).toString(), 'out');
  assert.equal((await child.readStderr()).toString(), 'err');
  for (const read of [() => child.readStdout(), () => child.readStderr(), () => child.readStdout()]) {
    const end = await read();
    assert.ok(Buffer.isBuffer(end));
    assert.equal(end.length, 0);
  }
  assert.equal((await child.wait()).exitCode, 0);
  client.connection.close();
});

test('abort: exec and spawn kill their process and fail with E_ABORTED; an abort after the end changes nothing', async () => {
  const client = await openClient();
  const alive = (pidFile: string) => {
    try {
      process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 0);
      return true;
    } catch {
      return false;
    }
  };
  const started = (pidFile: string) => async () => { while (!fs.existsSync(pidFile) || fs.readFileSync(pidFile, 'utf8') === '') await new Promise((r) => setTimeout(r, 10)); };
  const aborted = (err: unknown) => err instanceof MicrovmError && err.code === 'E_ABORTED' && err.name === 'AbortError';

  const execPid = path.join(dir, 'exec.pid');
  const controller = new AbortController();
  const running = client.exec(exec(['sh', '-c', `echo $$ > ${execPid}; exec sleep 100`], { timeoutMs: 0 }), 1 << 20, controller.signal);
  await started(execPid)();
  controller.abort();
  await assert.rejects(running, aborted);
  assert.equal(alive(execPid), false, 'the exec process is gone when the call rejects');

  const spawnPid = path.join(dir, 'spawn.pid');
  const spawnAbort = new AbortController();
  const child = client.spawn(exec(['sh', '-c', `echo $$ > ${spawnPid}; exec sleep 100`], { timeoutMs: 0 }), spawnAbort.signal);
  await started(spawnPid)();
  spawnAbort.abort();
  await assert.rejects(child.wait(), aborted);
  assert.equal((await child.readStdout()).length, 0, 'the reads end');
  assert.equal(alive(spawnPid), false, 'the spawned process is gone');

  const late = new AbortController();
  const done = await client.exec(exec(['echo', 'ok']), 1 << 20, late.signal);
  late.abort();
  assert.equal(done.stdout.toString(), 'ok\n');
  client.connection.close();
});
