import { ChildProcess, spawn } from 'node:child_process';
import { TailBuffer } from './tail-buffer';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<ChildProcess>();
const MAX_LINE = 8192;
let exitHookInstalled = false;

/** Last resort on a normal Node exit; on SIGKILL of Node the launcher's PDEATHSIG does this. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) killGroup(child);
  });
}

/**
 * SIGKILL for the child's whole process group (it leads one: `detached`). Helpers it started
 * go too: the launcher's watchdog, virtiofsd's sandbox child, a FUSE daemon. A helper that is
 * stopped or wedged would otherwise keep the group's pipes open and never be reaped.
 */
function killGroup(child: ChildProcess): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

/**
 * A supervised helper process (QEMU, later virtiofsd): started through microvm-launch so
 * the kernel kills it when this Node process dies, in its own session so a terminal's
 * Ctrl-C reaches the guest rather than QEMU.
 */
export class SupervisedProcess {
  readonly console = new TailBuffer(64 * 1024);
  readonly stderr = new TailBuffer(16 * 1024);
  readonly exited: Promise<ExitStatus>;
  exitStatus: ExitStatus | undefined;
  private readonly child: ChildProcess;
  private readonly lineListeners: Array<(line: string) => void> = [];
  private partialLine = '';

  /** `inheritFds`: open files the program gets as fd 3, 4, ... (the launcher passes them on). */
  constructor(
    launcher: string,
    program: string,
    args: string[],
    env: Record<string, string> = {},
    inheritFds: number[] = [],
  ) {
    installExitHook();
    this.child = spawn(launcher, ['--parent', String(process.pid), '--', program, ...args], {
      detached: true,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe', ...inheritFds],
    });
    live.add(this.child);
    this.child.stdout?.on('data', (data: Buffer) => this.console.write(data));
    this.child.stderr?.on('data', (data: Buffer) => {
      this.stderr.write(data);
      if (this.lineListeners.length > 0) this.splitLines(data);
    });
    this.exited = new Promise<ExitStatus>((resolve) => {
      const done = (status: ExitStatus) => {
        live.delete(this.child);
        this.exitStatus ??= status;
        resolve(this.exitStatus);
      };
      // 'close', not 'exit': the console pipe is drained by then, so a panic message is not lost.
      this.child.once('close', (code, signal) => done({ code, signal }));
      this.child.once('error', () => done({ code: 127, signal: null }));
    });
  }

  /** Hears each complete stderr line (a line longer than MAX_LINE is cut there). */
  onStderrLine(listener: (line: string) => void): void {
    this.lineListeners.push(listener);
  }

  private splitLines(data: Buffer): void {
    const lines = (this.partialLine + data.toString('utf8')).split('\n');
    this.partialLine = (lines.pop() ?? '').slice(0, MAX_LINE);
    for (const line of lines) for (const listener of this.lineListeners) listener(line.slice(0, MAX_LINE));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitStatus === undefined;
  }

  /** SIGKILL for the process and everything it started. */
  kill(): void {
    if (this.running) killGroup(this.child);
  }

  /** Waits up to `ms` for the process to exit, then kills it. */
  async stop(ms: number): Promise<ExitStatus> {
    const timer = setTimeout(() => this.kill(), ms);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }
}
