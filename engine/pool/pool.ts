import { throwIfAborted } from '../abort';
import { abortedError, MicrovmError } from '../errors';
import { acquireOptionsSchema, type AcquireOptions, parseOptions } from '../options';
import { ImageConfig } from '../image/types';
import type { BackendVm } from '../backend/types';
import { Vm, type SnapshotOrigin } from '../vm/vm';

/** A pool's counts at one moment, from `pool.stats()`. */
export interface PoolStats {
  /** VMs running: idle, lent, or being checked after a release. */
  alive: number;
  inUse: number;
  idle: number;
  /** Boots and restores under way. */
  booting: number;
  /** acquire() calls waiting for a VM. */
  waiting: number;
  min: number;
  max: number;
  /**
   * The host process ids of the idle VMs (QEMU's, for the QEMU backend), oldest idle first:
   * what their memory costs can be read from /proc. A VM whose process is gone is left out.
   */
  idlePids: number[];
}

/**
 * What went wrong in a pool that its callers would otherwise not see: a VM that ended on its
 * own (idle or lent; a refused RESTORED is E_RESTORE_FAILED), or a boot or restore that
 * failed. The pool boots a replacement when it needs one.
 */
export type PoolEvent =
  { type: 'vm-failed'; vmId: string; inUse: boolean; error: MicrovmError } | { type: 'boot-failed'; error: Error };

export interface PoolSettings {
  min: number;
  max: number;
  acquireTimeoutMs: number;
  idleTimeoutMs: number;
  restoreOnRelease: boolean;
}

interface Waiter {
  resolve(machine: BackendVm): void;
  reject(error: Error): void;
  timer?: NodeJS.Timeout;
}

interface IdleMachine {
  machine: BackendVm;
  since: number;
}

/**
 * Keeps `min` VMs ready, grows to `max`, and queues acquirers in FIFO order. A VM that dies
 * is dropped and replaced; with restoreOnRelease a released VM is discarded so that the
 * next acquirer gets a clean one.
 */
export class Pool<I = unknown> {
  private readonly idle: IdleMachine[] = [];
  private readonly inUse = new Set<BackendVm>();
  /** Released VMs whose health is being checked: they still count towards `max`. */
  private readonly checking = new Set<BackendVm>();
  private readonly waiters: Waiter[] = [];
  private booting = 0;
  private readonly stopping = new Set<Promise<void>>();
  private closed = false;
  private evictTimer: NodeJS.Timeout | undefined;
  private readonly eventListeners = new Set<(event: PoolEvent) => void>();

  constructor(
    private readonly boot: () => Promise<BackendVm>,
    private readonly config: ImageConfig,
    private readonly settings: PoolSettings,
    /** A VM that is already running (the bake's), handed to the first acquirer. */
    initial?: BackendVm,
    /** The image, as vm.snapshot() records it and loads it back. */
    private readonly origin?: SnapshotOrigin<I>,
  ) {
    if (initial) this.adopt(initial);
    this.fill();
  }

  /** The pool's counts now: VMs alive, lent, idle, callers waiting, and its bounds. */
  stats(): PoolStats {
    return {
      alive: this.idle.length + this.inUse.size + this.checking.size,
      inUse: this.inUse.size,
      idle: this.idle.length,
      booting: this.booting,
      waiting: this.waiters.length,
      min: this.settings.min,
      max: this.settings.max,
      idlePids: this.idle.flatMap((i) => (i.machine.pid === undefined ? [] : [i.machine.pid])),
    };
  }

  /** Calls `listener` for each VM that failed and each boot that failed; returns a disposer. */
  onEvent(listener: (event: PoolEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /**
   * A VM, at once if one is idle, else the first to become ready (FIFO). Aborting `signal`
   * stops the wait with E_ABORTED; a VM booted or restored meanwhile stays in the pool.
   */
  async acquire(options: AcquireOptions = {}): Promise<Vm<I>> {
    const { signal } = parseOptions(acquireOptionsSchema, options, 'pool.acquire');
    if (this.closed) throw shutdownError();
    throwIfAborted(signal, 'pool.acquire');
    const idle = this.takeIdle();
    if (idle) this.inUse.add(idle);
    // A machine handed over counts as in use from that moment (offer), so that no fill boots past max meanwhile.
    const machine = idle ?? (await this.waitForMachine(signal));
    // The pool closed, or the signal fired, after the machine was handed over: it is not lent.
    if (this.closed) {
      this.inUse.delete(machine);
      void this.stopMachine(machine);
      throw shutdownError();
    }
    if (signal?.aborted) {
      this.inUse.delete(machine);
      this.offer(machine);
      throw abortedError('pool.acquire', signal);
    }
    this.fill();
    return new Vm(machine, this.config, (m) => this.release(m), this.origin);
  }

  /** Stops every VM; waiting acquirers are rejected with E_POOL_SHUTDOWN. */
  async shutdown(): Promise<void> {
    this.closed = true;
    clearInterval(this.evictTimer);
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(shutdownError());
    }
    const machines = [...this.idle.splice(0).map((i) => i.machine), ...this.inUse];
    this.inUse.clear();
    await Promise.all(machines.map((m) => this.stopMachine(m)));
    // A boot under way, or a released VM being checked, ends in a stop once it sees the close.
    while (this.booting > 0 || this.checking.size > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    // A boot that finished after the close, or an eviction, may still be stopping its VM.
    await Promise.all(this.stopping);
  }

  /** Stops a machine; shutdown() waits for every stop begun here, so no QEMU outlives it. */
  private stopMachine(machine: BackendVm): Promise<void> {
    const stopped = machine.stop().finally(() => this.stopping.delete(stopped));
    this.stopping.add(stopped);
    return stopped;
  }

  private takeIdle(): BackendVm | undefined {
    while (this.idle.length > 0) {
      const { machine } = this.idle.shift() as IdleMachine;
      if (machine.alive) return machine;
    }
    return undefined;
  }

  private waitForMachine(signal: AbortSignal | undefined): Promise<BackendVm> {
    return new Promise<BackendVm>((resolve, reject) => {
      const onAbort = () => {
        const index = this.waiters.indexOf(waiter);
        if (index < 0) return;
        this.waiters.splice(index, 1);
        clearTimeout(waiter.timer);
        reject(abortedError('pool.acquire', signal as AbortSignal));
      };
      const settled = () => signal?.removeEventListener('abort', onAbort);
      const waiter: Waiter = {
        resolve: (machine) => {
          settled();
          resolve(machine);
        },
        reject: (error) => {
          settled();
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.settings.acquireTimeoutMs > 0) {
        waiter.timer = setTimeout(() => {
          settled();
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(
            new MicrovmError(
              'E_ACQUIRE_TIMEOUT',
              this.booting > 0 && this.inUse.size < this.settings.max
                ? `no VM finished booting within acquireTimeoutMs (${this.settings.acquireTimeoutMs} ms); raise acquireTimeoutMs (emulated boots are slow on a loaded host)`
                : `no VM became free within acquireTimeoutMs (${this.settings.acquireTimeoutMs} ms); all ${this.settings.max} are in use; release VMs sooner or raise max`,
            ),
          );
        }, this.settings.acquireTimeoutMs);
      }
      this.waiters.push(waiter);
      this.fill();
    });
  }

  /** A VM handed back is reused only if it still answers (a health check); else it is stopped and replaced. */
  private async release(machine: BackendVm): Promise<void> {
    this.inUse.delete(machine);
    this.checking.add(machine);
    const reusable =
      !this.closed && !this.settings.restoreOnRelease && machine.alive && (await machine.checkHealth()) === 'healthy';
    this.checking.delete(machine);
    if (reusable && !this.closed && machine.alive) {
      this.offer(machine);
    } else {
      await this.stopMachine(machine);
    }
    this.fill();
  }

  /** Hands a ready machine to the oldest waiter (it is in use from now on), or parks it idle. */
  private offer(machine: BackendVm): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      this.inUse.add(machine);
      waiter.resolve(machine);
    } else {
      this.idle.push({ machine, since: Date.now() });
      this.scheduleEviction();
    }
  }

  /** Boots machines until `min` are ready beyond the waiters, never past `max` in all. */
  private fill(): void {
    if (this.closed) return;
    for (;;) {
      const total = this.idle.length + this.inUse.size + this.checking.size + this.booting;
      const ready = this.idle.length + this.booting;
      if (total >= this.settings.max || ready >= this.settings.min + this.waiters.length) return;
      this.startBoot();
    }
  }

  private startBoot(): void {
    this.booting++;
    this.boot().then(
      (machine) => {
        this.booting--;
        if (this.closed) return void this.stopMachine(machine);
        this.adopt(machine);
      },
      (error: Error) => {
        this.booting--;
        this.emit({ type: 'boot-failed', error });
        const waiter = this.waiters.shift();
        if (waiter) {
          clearTimeout(waiter.timer);
          waiter.reject(error);
        }
      },
    );
  }

  private adopt(machine: BackendVm): void {
    machine.onExit((error) => this.forget(machine, error));
    this.offer(machine);
  }

  /** A machine ended: drop it and boot a replacement if needed; one that failed is reported. */
  private forget(machine: BackendVm, error: MicrovmError): void {
    const inUse = this.inUse.delete(machine);
    const index = this.idle.findIndex((i) => i.machine === machine);
    if (index >= 0) this.idle.splice(index, 1);
    if ((inUse || index >= 0) && !this.closed && error.code !== 'E_VM_RELEASED') {
      this.emit({ type: 'vm-failed', vmId: machine.id, inUse, error });
    }
    this.fill();
  }

  private emit(event: PoolEvent): void {
    for (const listener of this.eventListeners) listener(event);
  }

  private scheduleEviction(): void {
    if (this.settings.idleTimeoutMs === 0 || this.evictTimer) return;
    this.evictTimer = setInterval(() => this.evictIdle(), Math.max(50, this.settings.idleTimeoutMs / 4));
    this.evictTimer.unref();
  }

  private evictIdle(): void {
    const now = Date.now();
    for (
      let oldest = this.idle[0];
      oldest && this.idle.length > this.settings.min && now - oldest.since >= this.settings.idleTimeoutMs;
      oldest = this.idle[0]
    ) {
      this.idle.shift();
      void this.stopMachine(oldest.machine);
    }
    if (this.idle.length <= this.settings.min) {
      clearInterval(this.evictTimer);
      this.evictTimer = undefined;
    }
  }
}

function shutdownError(): MicrovmError {
  return new MicrovmError('E_POOL_SHUTDOWN', 'the pool was shut down; build a new pool to acquire VMs');
}
