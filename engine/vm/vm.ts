import type { EgressAsk } from '../egress/ask';
import type { EgressEvent } from '../egress/proxy';
import { ExecChild } from '../agent/exec-child';
import { ProcessRequest, WaitResult } from '../agent/process';
import { SignalSpec } from '../agent/signals';
import { AgentInfo } from '../agent/connection';
import { AccelChoice } from '../accel/decide';
import { throwIfAborted } from '../abort';
import { MicrovmError } from '../errors';
import { execOptionsSchema, ExecOptions, parseOptions } from '../options';
import { ImageConfig } from '../image/types';
import { mergeEnv } from '../image/env';
import type { BackendVm, Capabilities, GuestPortWatch } from '../backend/types';
import { userInfo, UserInfo } from './user';
import * as nodePath from 'node:path';
import type * as net from 'node:net';
import { writeSnapshot } from '../snapshot/store';
import type { SnapshotImage } from '../snapshot/meta';
import { TcpForwarder } from '../forward/forwarder';
import type { GuestListener, PortsChange } from '../agent/port-watch';
import { CALL_DEADLINE_MS } from '../agent/client';
import type { ShareRefusal } from '../mount';
import type { FileEventStats } from '../watch/relay';

/** What `vm.exec()` resolves to: the same fields whether the process succeeded or failed; `stdout` and `stderr` as strings, or Buffers with `encoding: 'buffer'`. */
export interface ExecResult<T extends string | Buffer = string> extends WaitResult {
  stdout: T;
  stderr: T;
  durationMs: number;
}

/** `vm.spawn()`'s options: exec's, without the ones about collecting output (a spawned process streams it). */
export type SpawnOptions = Omit<ExecOptions, 'maxBuffer' | 'encoding'>;

/**
 * What vm.snapshot() needs from the pool a VM came from: the image as a snapshot records it,
 * and how a saved directory becomes an image again (Image.fromSnapshot, handed down by the
 * image's pool so that vm/ never imports image/).
 */
export interface SnapshotOrigin<I> {
  image: SnapshotImage;
  load(dir: string): Promise<I>;
}

/**
 * A VM lent by a pool. Every call after release() fails with E_VM_RELEASED; calls on a VM
 * that died fail with E_VM_EXITED.
 */
export class Vm<I = unknown> {
  private released = false;
  private readonly forwarders = new Set<TcpForwarder>();
  private portWatch: GuestPortWatch | undefined;

  constructor(
    private readonly machine: BackendVm,
    private readonly config: ImageConfig,
    private readonly onRelease: (machine: BackendVm) => Promise<void>,
    private readonly origin?: SnapshotOrigin<I>,
  ) {}

  /** The VM's id, unique on this host (its state directory's name). */
  get id(): string {
    return this.machine.id;
  }

  /** The accelerator the VM runs under, and whether it is hardware-isolated. */
  get accel(): AccelChoice {
    return this.machine.accel;
  }

  /** What the backend running this VM can do (snapshot, hot-plug, virtio-fs, vsock, accel). */
  get capabilities(): Capabilities {
    return this.machine.capabilities;
  }

  /**
   * The process that runs this VM (QEMU's pid) and the shared file holding its RAM (a fresh
   * boot's; undefined for a VM restored from a snapshot), for measuring what the VM costs.
   */
  get host(): { pid: number | undefined; memoryFile: string | undefined } {
    const machine = this.held();
    return { pid: machine.pid, memoryFile: machine.memoryFile };
  }

  /**
   * Resolves once the guest agent answered a PING within `timeoutMs` (default 3000): the
   * cheapest round trip to the guest, for liveness checks and latency measurements.
   */
  ping(options: { timeoutMs?: number } = {}): Promise<void> {
    return this.live().agent.ping(options.timeoutMs);
  }

  /** The guest agent's own description (version, kernel, features). */
  get agentInfo(): AgentInfo {
    return this.held().agent.info;
  }

  /** Runs a process to its end and collects its output, as Buffers (`encoding: 'buffer'`). */
  exec(options: ExecOptions & { encoding: 'buffer' }): Promise<ExecResult<Buffer>>;
  /** Runs a process to its end and collects its output as UTF-8 strings. A non-zero exit is a result, not an error; timeouts, aborts and a lost VM throw MicrovmError. */
  exec(options: ExecOptions): Promise<ExecResult<string>>;
  async exec(options: ExecOptions): Promise<ExecResult<string | Buffer>> {
    const parsed = parseOptions(execOptionsSchema, options, 'exec');
    throwIfAborted(parsed.signal, `exec of '${parsed.argv[0]}'`);
    const started = performance.now();
    const result = await this.live().agent.exec(this.processRequest(parsed), parsed.maxBuffer, parsed.signal);
    const decode = (data: Buffer) => (parsed.encoding === 'buffer' ? data : data.toString('utf8'));
    return {
      ...result,
      stdout: decode(result.stdout),
      stderr: decode(result.stderr),
      durationMs: performance.now() - started,
    };
  }

  /** Starts a process and returns at once; read its output, write its stdin and wait for it through the ExecChild. */
  spawn(options: SpawnOptions): ExecChild {
    const parsed = parseOptions(execOptionsSchema, options, 'spawn');
    throwIfAborted(parsed.signal, `spawn of '${parsed.argv[0]}'`);
    return this.live().agent.spawn(this.processRequest(parsed), parsed.signal);
  }

  /** `timeoutMs` (default 30000) bounds the call: past it, E_AGENT_TIMEOUT, and the VM's health is checked. */
  async writeFile(
    path: string,
    data: string | Uint8Array,
    options: { mode?: number; timeoutMs?: number } = {},
  ): Promise<void> {
    const buffer = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    await this.live().agent.writeFile(
      checkGuestPath(path),
      buffer,
      options.mode ?? 0o644,
      checkTimeout(options.timeoutMs),
    );
  }

  /** Reads a file of the guest, whole, as bytes. */
  readFile(path: string, options: { timeoutMs?: number } = {}): Promise<Buffer> {
    return this.live().agent.readFile(checkGuestPath(path), checkTimeout(options.timeoutMs));
  }

  /** Sends a signal to the image's workload process (its cmd), started at boot. */
  workloadSignal(signal: SignalSpec): Promise<void> {
    return this.live().agent.signalWorkload(signal);
  }

  /**
   * Forwards 127.0.0.1:hostPort on the host (0 picks a free port) to guestPort on the guest's
   * loopback, over the agent channel (works with network 'none'). Released with the VM.
   */
  async exposeTcp(hostPort: number, guestPort: number): Promise<TcpForwarder> {
    checkPort(hostPort, 'hostPort', 0);
    checkPort(guestPort, 'guestPort', 1);
    const agent = this.live().agent;
    const forwarder = await TcpForwarder.listen(hostPort, guestPort, (socket) => agent.connectTcp(socket, guestPort));
    if (this.released) {
      await forwarder.destroy();
      throw new MicrovmError('E_VM_RELEASED', `VM ${this.machine.id} was released while forwarding port ${guestPort}`);
    }
    this.forwarders.add(forwarder);
    // A forward stopped while the VM runs (its guest listener went away) is forgotten once idle.
    forwarder.onClosed(() => this.forwarders.delete(forwarder));
    return forwarder;
  }

  /**
   * Carries one connection the caller accepted (a TCP or unix socket) to guestPort on the
   * guest's loopback, as a forward's connections are carried, but without a host listener:
   * a compose workspace's service relays use it. Resolves when the connection has ended;
   * rejects with E_FORWARD_LIMIT (the socket left to the caller) when the VM already carries
   * all the forwarded connections it takes, and with E_VM_RELEASED once the VM is released.
   */
  async connectTcp(socket: net.Socket, guestPort: number): Promise<void> {
    checkPort(guestPort, 'guestPort', 1);
    return this.live().agent.connectTcp(socket, guestPort);
  }

  /** A guest user (`name`, `uid`, `name:group`, `uid:gid`; '' = root): ids, home and shell from the guest's own passwd. */
  userInfo(spec: string): Promise<UserInfo> {
    return userInfo(spec, async (file) => (await this.readFile(file)).toString('utf8'));
  }

  /** The TCP listeners in the guest now (pid and process name included). */
  async listeningPorts(): Promise<GuestListener[]> {
    const watch = this.watch();
    await this.live().agent.deadline(
      watch.ready,
      CALL_DEADLINE_MS.control,
      () =>
        new MicrovmError(
          'E_AGENT_TIMEOUT',
          `the guest agent did not list its TCP listeners within ${CALL_DEADLINE_MS.control} ms`,
        ),
    );
    return watch.current;
  }

  /** Calls `listener` whenever a guest TCP listener appears or goes away; returns a disposer. */
  onPortsChanged(listener: (change: PortsChange) => void): () => void {
    return this.watch().onChange(listener);
  }

  /**
   * Saves this VM as it is now (files, processes, memory) to `dir` and returns an Image whose
   * pools restore from it (Image.fromSnapshot(dir) loads it again later). The VM pauses while
   * its state is written, then goes on. Processes this VM's exec/spawn calls still run are
   * ended in each clone (they belong to handles a clone does not have); the image's `cmd` and
   * processes started detached (`setsid ... &`) keep running there.
   */
  async snapshot(dir: string): Promise<I> {
    const machine = this.live();
    if (!this.origin)
      throw new MicrovmError('E_SNAPSHOT', 'this VM does not come from an image pool and cannot be snapshotted');
    if (!machine.capabilities.snapshot) {
      throw new MicrovmError(
        'E_SNAPSHOT',
        `the ${machine.capabilities.backend} backend cannot snapshot a running VM; boot VMs fresh instead`,
      );
    }
    const target = nodePath.resolve(dir);
    try {
      await writeSnapshot(machine, target, { source: 'vm.snapshot', vm: machine.id }, this.origin.image);
    } finally {
      if (machine.alive) await machine.resume();
    }
    return this.origin.load(target);
  }

  /**
   * Calls `listener` once if the VM ends on its own (QEMU killed, guest panic, power-off),
   * with the error its pending calls got; not after release(). Returns a disposer.
   */
  onExit(listener: (error: MicrovmError) => void): () => void {
    return this.held().onExit((error) => {
      if (!this.released) listener(error);
    });
  }

  /**
   * Calls `listener` when QEMU pauses the VM because the host disk holding one of its volumes
   * is full (E_HOST_DISK_FULL, with `file` and `directory`). Calls fail with that error until
   * resume(). Returns a disposer.
   */
  onHostDiskFull(listener: (error: MicrovmError) => void): () => void {
    return this.held().onDiskFull(listener);
  }

  /**
   * Calls `listener` for each change the filter view of a share refused the guest (a
   * protected name, a covered path, ...): what it tried, the path relative to the share and
   * why. The path is guest-chosen text. Returns a disposer.
   */
  /**
   * Hears each connection the guest asked the egress proxy for (network 'allowlist' or
   * 'learn'): time, name, port, allowed or why not, bytes. Returns a disposer.
   */
  onEgress(listener: (event: EgressEvent) => void): () => void {
    return this.held().onEgress(listener);
  }

  /**
   * network 'allowlist': a name outside the list is put to `ask` (Allow once, Always, Deny)
   * instead of being refused outright; one question per name, at most a few per minute.
   */
  askForEgress(ask: EgressAsk | undefined): void {
    this.held().askForEgress(ask);
  }

  /** Calls `listener` for each access a share's filter refused the guest; returns the function that stops it. */
  onShareRefusal(listener: (refusal: ShareRefusal) => void): () => void {
    return this.held().onShareRefusal(listener);
  }

  /**
   * Calls `listener` when host edits of a share with `fileEvents` could not be raised as
   * file events in the guest (no guest support, a host watcher limit, a refused batch); the
   * share itself keeps working. Earlier problems are replayed. Returns a disposer.
   */
  onFileEventProblem(listener: (problem: MicrovmError) => void): () => void {
    return this.held().onFileEventProblem(listener);
  }

  /** Counts of the host-edit relays (batches, events, collapsed mass changes, failures), per share with `fileEvents`. */
  get fileEventStats(): Array<{ guestPath: string } & FileEventStats> {
    return this.held().fileEventStats;
  }

  /**
   * Resumes a VM that QEMU paused on a full host disk, once space is freed there: the failed
   * writes are retried, nothing is lost. If the disk is still full, the VM pauses again and
   * onHostDiskFull listeners hear it again.
   */
  async resume(): Promise<void> {
    if (this.held().diskFull) await this.machine.resume();
  }

  /** Gives the VM back to its pool (restored from the snapshot, or stopped); its forwards close. Calling it again does nothing. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.portWatch?.stop();
    await Promise.all([...this.forwarders].map((f) => f.destroy()));
    await this.onRelease(this.machine);
  }

  /**
   * Saves a q35 workspace VM for a later resume (Machine.suspend) and ends it; the VM counts as
   * released. When the save fails, the VM is stopped and the error thrown.
   */
  async suspend(stateFile: string, memFile: string): Promise<string[]> {
    const machine = this.live();
    this.released = true;
    this.portWatch?.stop();
    await Promise.all([...this.forwarders].map((f) => f.destroy()));
    try {
      return await machine.suspend(stateFile, memFile);
    } catch (err) {
      await this.onRelease(machine);
      throw err;
    }
  }

  /** Milliseconds from Machine.boot's start until the agent answered (`agent`) and until the mounts were made (`ready`). */
  get startTimings(): { agent: number; ready: number } {
    return { agent: this.machine.agentMs, ready: this.machine.bootMs };
  }

  /** `await using vm = await pool.acquire()` releases the VM at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  private watch(): GuestPortWatch {
    this.portWatch ??= this.live().agent.watchPorts();
    return this.portWatch;
  }

  /** The machine, for a call that needs a running guest: not after release, not while paused on a full disk. */
  private live(): BackendVm {
    const paused = this.held().diskFull;
    if (paused) throw paused;
    return this.machine;
  }

  private held(): BackendVm {
    if (this.released)
      throw new MicrovmError('E_VM_RELEASED', `VM ${this.machine.id} was released; acquire another from the pool`);
    return this.machine;
  }

  private processRequest(parsed: ReturnType<typeof execOptionsSchema.parse>): ProcessRequest {
    return {
      argv: parsed.argv,
      env: mergeEnv(withoutNames(this.config.env, parsed.unsetEnv), parsed.env),
      cwd: parsed.cwd ?? (this.config.workingDir || '/'),
      timeoutMs: parsed.timeoutMs,
      tty: parsed.tty ? (parsed.winsize ?? { rows: 24, cols: 80 }) : undefined,
      stageFiles: parsed.stageFiles.map((file) => ({
        path: file.path,
        mode: file.mode ?? parsed.stageFilesMode,
        data: typeof file.data === 'string' ? Buffer.from(file.data, 'utf8') : Buffer.from(file.data),
      })),
      chain: parsed.chain,
      user: parsed.user ?? this.machine.user,
      pidsMax: parsed.pidsMax,
    };
  }
}

function checkPort(port: number, name: string, min: number): void {
  if (!Number.isInteger(port) || port < min || port > 65535) {
    throw new MicrovmError(
      'E_BAD_OPTION',
      `${name} ${JSON.stringify(port)} must be a whole number from ${min} to 65535`,
    );
  }
}

function checkTimeout(timeoutMs: number | undefined): number {
  if (timeoutMs === undefined) return CALL_DEADLINE_MS.file;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1) {
    throw new MicrovmError(
      'E_BAD_OPTION',
      `timeoutMs ${JSON.stringify(timeoutMs)} must be a whole number of milliseconds from 1 to ${2 ** 31 - 1}`,
    );
  }
  return timeoutMs;
}

function checkGuestPath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0')) {
    throw new MicrovmError(
      'E_BAD_OPTION',
      `guest path ${JSON.stringify(path)} must be an absolute path without NUL bytes`,
    );
  }
  return path;
}

/** A KEY=VALUE list without the entries of `names`. */
function withoutNames(env: string[], names: string[]): string[] {
  if (names.length === 0) return env;
  const unset = new Set(names);
  return env.filter((entry) => !unset.has(entry.slice(0, Math.max(0, entry.indexOf('=')))));
}
