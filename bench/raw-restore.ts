import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { encodeFrame } from '../engine/agent/frame';
import { FrameType, PROTO_VERSION, Tag } from '../engine/agent/protocol';
import { TlvWriter } from '../engine/agent/tlv';
import { buildQemuArgv } from '../engine/qemu/argv';
import { hostTscKhz } from '../engine/qemu/host-tsc';
import { guestNetworkEnv, NetworkMode } from '../engine/qemu/network';
import { connectOnce, RawContext, RawQemu } from './raw-qemu';

/** What a raw restore needs from a template snapshot and its image. */
export interface RawRestoreTarget {
  memFile: string;
  stateFile: string;
  rootDisk: string;
  memoryMib: number;
  vcpus: number;
  network: NetworkMode;
}

export interface RawRestoreTiming {
  /** QEMU spawn to QMP's RESUME event (the guest runs again). */
  runningMs: number;
  /** QEMU spawn to the first byte of the agent's reply to a raw HELLO frame. */
  agentMs: number;
}

const TIMEOUT_MS = 30_000;
/** A HELLO sent while the guest agent reopens its port can be lost: resend this often. */
const HELLO_RESEND_MS = 5;

/**
 * A snapshot restore by hand: the argv Machine.boot would use (the template's RAM file
 * mapped private, `-incoming unix:`), QMP commands written in one go (capabilities,
 * x-ignore-shared), the state file streamed into the migration socket, and a
 * HELLO frame written to the agent socket the moment QMP reports RESUME. No pool, no
 * agent client, no polling of query-migrate.
 */
export async function rawRestore(ctx: RawContext, target: RawRestoreTarget): Promise<RawRestoreTiming> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-restore-'));
  const file = (name: string) => path.join(dir, name);
  const argv = buildQemuArgv({
    arch: ctx.assets.arch,
    accel: ctx.accel,
    memoryMib: target.memoryMib,
    vcpus: target.vcpus,
    kernel: ctx.assets.kernel,
    initrd: ctx.assets.initrd,
    cmdline: [],
    rootDisk: target.rootDisk,
    agentSocket: file('agent.sock'),
    qmpSocket: file('qmp.sock'),
    seccomp: ctx.qemu.seccomp,
    network: target.network,
    tscKhz: hostTscKhz(),
    memory: { kind: 'file', path: target.memFile, shared: false },
    incoming: file('migrate.sock'),
  });
  const deadline = Date.now() + TIMEOUT_MS;
  const started = performance.now();
  const qemu = new RawQemu(ctx, argv, file('agent.sock'), guestNetworkEnv(target.network));
  const sockets: net.Socket[] = [];
  try {
    const qmp = await connectRetry(file('qmp.sock'), deadline, qemu);
    sockets.push(qmp);
    const lines = new QmpLines(qmp);
    await lines.next((m) => 'QMP' in m, deadline);
    qmp.write(
      [
        { execute: 'qmp_capabilities', id: 1 },
        {
          execute: 'migrate-set-capabilities',
          arguments: { capabilities: [{ capability: 'x-ignore-shared', state: true }] },
          id: 2,
        },
      ]
        .map((c) => JSON.stringify(c))
        .join('\n') + '\n',
    );
    const resumed = lines.next((m) => m.event === 'RESUME', deadline);
    resumed.catch(() => undefined);
    await lines.next((m) => m.id === 2, deadline);
    const migration = await connectRetry(file('migrate.sock'), deadline, qemu);
    sockets.push(migration);
    fs.createReadStream(target.stateFile)
      .pipe(migration)
      .on('error', () => undefined);
    const agent = await connectRetry(file('agent.sock'), deadline, qemu);
    sockets.push(agent);
    const firstByte = new Promise<number>((resolve) => agent.once('data', () => resolve(performance.now() - started)));
    await resumed;
    const runningMs = performance.now() - started;
    let agentMs: number | undefined;
    void firstByte.then((ms) => {
      agentMs = ms;
    });
    while (agentMs === undefined) {
      if (Date.now() > deadline || qemu.exited)
        throw new Error(`raw restore: no agent reply${qemu.stderrTail ? `; QEMU said: ${qemu.stderrTail}` : ''}`);
      const hello = new TlvWriter()
        .u64(Tag.NONCE, randomBytes(8).readBigUInt64LE())
        .u32(Tag.PROTO_VERSION, PROTO_VERSION)
        .toBuffer();
      agent.write(encodeFrame(FrameType.HELLO, 0, hello));
      await Promise.race([firstByte, delay(HELLO_RESEND_MS)]);
    }
    return { runningMs, agentMs };
  } finally {
    for (const socket of sockets) socket.destroy();
    await qemu.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function connectRetry(socketPath: string, deadline: number, qemu: RawQemu): Promise<net.Socket> {
  for (;;) {
    try {
      return await connectOnce(socketPath);
    } catch (err) {
      if (Date.now() > deadline || qemu.exited) {
        throw new Error(
          `raw restore: cannot connect to ${socketPath}: ${(err as Error).message}${qemu.stderrTail ? `; QEMU said: ${qemu.stderrTail}` : ''}`,
        );
      }
      await delay(1);
    }
  }
}

type QmpMessage = Record<string, unknown>;

/** Newline-delimited QMP messages; `next` waits for the first one (seen or to come) that matches. */
class QmpLines {
  private buffer = '';
  private readonly seen: QmpMessage[] = [];
  private readonly waiters = new Set<{
    match(m: QmpMessage): boolean;
    resolve(m: QmpMessage): void;
    reject(e: Error): void;
  }>();
  private failure: Error | undefined;

  constructor(socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (line) this.deliver(JSON.parse(line) as QmpMessage);
      }
    });
  }

  next(match: (m: QmpMessage) => boolean, deadline: number): Promise<QmpMessage> {
    if (this.failure) return Promise.reject(this.failure);
    const found = this.seen.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.waiters.delete(waiter);
          reject(new Error('raw restore: QMP did not answer in time'));
        },
        Math.max(0, deadline - Date.now()),
      );
      const waiter = {
        match,
        resolve: (m: QmpMessage) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.add(waiter);
    });
  }

  private deliver(message: QmpMessage): void {
    if ('error' in message) {
      this.failure ??= new Error(`raw restore: QMP error ${JSON.stringify(message.error)}`);
      for (const waiter of this.waiters) waiter.reject(this.failure);
      this.waiters.clear();
      return;
    }
    this.seen.push(message);
    for (const waiter of [...this.waiters]) {
      if (waiter.match(message)) {
        this.waiters.delete(waiter);
        waiter.resolve(message);
      }
    }
  }
}
