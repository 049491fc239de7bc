import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { chooseAccel } from '../engine/accel/detect';
import { guestAssets, GuestAssets } from '../engine/kernel/assets';
import { buildQemuArgv } from '../engine/qemu/argv';
import { hostTscKhz } from '../engine/qemu/host-tsc';
import { findQemu, QemuBinary } from '../engine/qemu/binary';
import { Accel, GuestArch } from '../engine/qemu/types';

/**
 * Baselines without the engine: the same kernel, initramfs, QEMU binary, accelerator and
 * argv builder as Machine.boot, but no root disk, no protocol and no pool.
 */
export interface RawContext {
  assets: GuestAssets;
  qemu: QemuBinary;
  accel: Accel;
}

/** The guest memory and vCPUs the engine's default image boots with. */
export const GUEST = { memoryMib: 256, vcpus: 1 } as const;
const PROBE_MARKER = 'MICROVM_PROBE_OK';
const BOOT_TIMEOUT_MS = 60_000;
const EXIT_GRACE_MS = 5000;

/** The baselines of one guest architecture: its kernel, initramfs, QEMU and accelerator. */
export async function rawContext(arch: GuestArch = 'x86_64'): Promise<RawContext> {
  const [assets, qemu] = await Promise.all([guestAssets(arch), findQemu(arch)]);
  return { assets, qemu, accel: (await chooseAccel(assets, qemu)).accel };
}

/** Spawn of QEMU (through the engine's launcher) to the probe marker on its serial console. */
export async function rawBootMs(ctx: RawContext): Promise<number> {
  return withRawQemu(ctx, ['microvm.mode=probe'], async (qemu, started) => {
    await qemu.waitForConsole(PROBE_MARKER, BOOT_TIMEOUT_MS);
    return performance.now() - started;
  });
}

/**
 * Boots the agent in echo mode and times `count` round trips of `frameBytes` bytes over the
 * agent's virtio-serial port, after `warmup` untimed ones.
 */
export async function rawEchoRoundTrips(
  ctx: RawContext,
  count: number,
  warmup: number,
  frameBytes = 32,
): Promise<number[]> {
  return withRawQemu(ctx, ['microvm.mode=echo'], async (qemu) => {
    const echo = await EchoSocket.connect(qemu.agentSocket, BOOT_TIMEOUT_MS);
    try {
      const frame = Buffer.alloc(frameBytes, 0x5a);
      await echo.roundTrip(Buffer.from([1]), BOOT_TIMEOUT_MS);
      for (let i = 0; i < warmup; i++) await echo.roundTrip(frame, EXIT_GRACE_MS);
      const samples: number[] = [];
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        await echo.roundTrip(frame, EXIT_GRACE_MS);
        samples.push(performance.now() - started);
      }
      return samples;
    } finally {
      echo.close();
    }
  });
}

async function withRawQemu<T>(
  ctx: RawContext,
  cmdline: string[],
  body: (qemu: RawQemu, started: number) => Promise<T>,
): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-'));
  const agentSocket = path.join(dir, 'agent.sock');
  const argv = buildQemuArgv({
    arch: ctx.assets.arch,
    accel: ctx.accel,
    ...GUEST,
    kernel: ctx.assets.kernel,
    initrd: ctx.assets.initrd,
    cmdline,
    agentSocket,
    qmpSocket: path.join(dir, 'qmp.sock'),
    seccomp: ctx.qemu.seccomp,
    tscKhz: hostTscKhz(),
    memory: { kind: 'anonymous' },
  });
  const started = performance.now();
  const qemu = new RawQemu(ctx, argv, agentSocket);
  try {
    return await body(qemu, started);
  } finally {
    await qemu.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const liveRaw = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveRaw) child.kill('SIGKILL');
});

/** A bare QEMU process whose serial console (stdout) is watched for a marker. */
export class RawQemu {
  private console = '';
  private readonly child: ChildProcess;
  private readonly exitedPromise: Promise<void>;
  private stderr = '';

  constructor(
    ctx: RawContext,
    argv: string[],
    readonly agentSocket: string,
    env: Record<string, string> = {},
  ) {
    this.child = spawn(ctx.assets.launcher, ['--parent', String(process.pid), '--', ctx.qemu.path, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    liveRaw.add(this.child);
    this.child.stdout?.on('data', (data: Buffer) => {
      this.console = (this.console + data.toString('latin1')).slice(-4096);
    });
    this.child.stderr?.on('data', (data: Buffer) => {
      this.stderr = (this.stderr + data.toString()).slice(-2048);
    });
    this.exitedPromise = new Promise((resolve) => {
      this.child.once('exit', () => {
        liveRaw.delete(this.child);
        resolve();
      });
      this.child.once('error', () => {
        liveRaw.delete(this.child);
        resolve();
      });
    });
  }

  async waitForConsole(marker: string, timeoutMs: number): Promise<void> {
    const stdout = this.child.stdout;
    if (!stdout) throw new Error('QEMU has no stdout pipe');
    if (this.console.includes(marker)) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          finish(
            new Error(
              `no ${marker} on the console within ${timeoutMs} ms; console tail:\n${this.console.slice(-1500)}\nstderr: ${this.stderr.trim()}`,
            ),
          ),
        timeoutMs,
      );
      const onData = () => {
        if (this.console.includes(marker)) finish();
      };
      const onExit = () => finish(new Error(`QEMU exited before ${marker}: ${this.stderr.trim()}`));
      const finish = (error?: Error) => {
        clearTimeout(timer);
        stdout.off('data', onData);
        this.child.off('exit', onExit);
        if (error) reject(error);
        else resolve();
      };
      // Registered after the constructor's listener, so this.console already holds the chunk.
      stdout.on('data', onData);
      this.child.once('exit', onExit);
    });
  }

  /** QEMU's last stderr lines, for error messages. */
  get stderrTail(): string {
    return this.stderr.trim();
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Waits a moment for a guest that powers itself off, then kills QEMU. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const timer = setTimeout(
        () => this.child.kill('SIGKILL'),
        this.console.includes(PROBE_MARKER) ? EXIT_GRACE_MS : 0,
      );
      await this.exitedPromise;
      clearTimeout(timer);
    }
  }
}

/** The host end of the echo guest's port: write bytes, wait until as many came back. */
class EchoSocket {
  private outstanding = 0;
  private waiter: { resolve(): void; reject(err: Error): void } | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (data: Buffer) => {
      this.outstanding -= data.length;
      if (this.outstanding <= 0) this.settle();
    });
    socket.on('error', (err) => this.settle(err));
    socket.on('close', () => this.settle(new Error('the echo guest closed the socket')));
  }

  static async connect(socketPath: string, timeoutMs: number): Promise<EchoSocket> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return new EchoSocket(await connectOnce(socketPath));
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`cannot connect to ${socketPath}: ${(err as Error).message}`);
        await delay(10);
      }
    }
  }

  roundTrip(data: Buffer, timeoutMs: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    this.outstanding += data.length;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.settle(new Error(`no echo within ${timeoutMs} ms`)), timeoutMs);
      this.waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.socket.write(data);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private settle(error?: Error): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (error) this.failure ??= error;
    if (!waiter) return;
    if (error) waiter.reject(error);
    else waiter.resolve();
  }
}

export function connectOnce(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
