import { ExecChild } from '../agent/exec-child';
import { ProcessRequest, WaitResult } from '../agent/process';
import { SignalSpec } from '../agent/signals';
import { AgentInfo } from '../agent/connection';
import { AccelChoice } from '../accel/decide';
import { MicrovmError } from '../errors';
import { execOptionsSchema, ExecOptions, parseOptions } from '../options';
import { ImageConfig } from '../image/types';
import { mergeEnv } from '../image/env';
import { Machine } from './machine';

export interface ExecResult<T extends string | Buffer = string> extends WaitResult {
  stdout: T;
  stderr: T;
  durationMs: number;
}

export type SpawnOptions = Omit<ExecOptions, 'maxBuffer' | 'encoding'>;

/**
 * A VM lent by a pool. Every call after release() fails with E_VM_RELEASED; calls on a VM
 * that died fail with E_VM_EXITED.
 */
export class Vm {
  private released = false;

  constructor(
    private readonly machine: Machine,
    private readonly config: ImageConfig,
    private readonly onRelease: (machine: Machine) => Promise<void>,
  ) {}

  get id(): string {
    return this.machine.state.id;
  }

  get accel(): AccelChoice {
    return this.machine.accel;
  }

  /** The guest agent's own description (version, kernel, features). */
  get agentInfo(): AgentInfo {
    return this.live().agent.info;
  }

  exec(options: ExecOptions & { encoding: 'buffer' }): Promise<ExecResult<Buffer>>;
  exec(options: ExecOptions): Promise<ExecResult<string>>;
  async exec(options: ExecOptions): Promise<ExecResult<string | Buffer>> {
    const parsed = parseOptions(execOptionsSchema, options, 'exec');
    const started = performance.now();
    const result = await this.live().agent.exec(this.processRequest(parsed), parsed.maxBuffer);
    const decode = (data: Buffer) => (parsed.encoding === 'buffer' ? data : data.toString('utf8'));
    return { ...result, stdout: decode(result.stdout), stderr: decode(result.stderr), durationMs: performance.now() - started };
  }

  spawn(options: SpawnOptions): ExecChild {
    const parsed = parseOptions(execOptionsSchema, options, 'spawn');
    return this.live().agent.spawn(this.processRequest(parsed));
  }

  async writeFile(path: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
    const buffer = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    await this.live().agent.writeFile(checkGuestPath(path), buffer, options.mode ?? 0o644);
  }

  readFile(path: string): Promise<Buffer> {
    return this.live().agent.readFile(checkGuestPath(path));
  }

  /** Sends a signal to the image's workload process (its cmd), started at boot. */
  workloadSignal(signal: SignalSpec): Promise<void> {
    return this.live().agent.signalWorkload(signal);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.onRelease(this.machine);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  private live(): Machine {
    if (this.released) throw new MicrovmError('E_VM_RELEASED', `VM ${this.machine.state.id} was released; acquire another from the pool`);
    return this.machine;
  }

  private processRequest(parsed: ReturnType<typeof execOptionsSchema.parse>): ProcessRequest {
    return {
      argv: parsed.argv,
      env: mergeEnv(this.config.env, parsed.env),
      cwd: parsed.cwd ?? (this.config.workingDir || '/'),
      timeoutMs: parsed.timeoutMs,
      tty: parsed.tty ? parsed.winsize ?? { rows: 24, cols: 80 } : undefined,
      stageFiles: parsed.stageFiles.map((file) => ({
        path: file.path,
        mode: file.mode ?? parsed.stageFilesMode,
        data: typeof file.data === 'string' ? Buffer.from(file.data, 'utf8') : Buffer.from(file.data),
      })),
      chain: parsed.chain,
    };
  }
}

function checkGuestPath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0')) {
    throw new MicrovmError('E_BAD_OPTION', `guest path ${JSON.stringify(path)} must be an absolute path without NUL bytes`);
  }
  return path;
}
