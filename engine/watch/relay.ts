import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as watcher from '@parcel/watcher';
import type { AgentClient, GuestFileEvent } from '../agent/client';
import { MicrovmError } from '../errors';
import { collapse, MAX_PENDING, mergeChange, PendingKind, relativeToShare } from './coalesce';

/** Extra wait after the watcher's own debounce (~50 ms in @parcel/watcher) so a burst travels as one batch. */
export const COALESCE_MS = 15;
/**
 * Most events in one batch; a larger burst collapses to per-directory events. A watcher that
 * watches files (chokidar, webpack's watchpack, vite) hears of a collapsed file only through
 * its directory, so the limit is set for a branch switch or a code generator's output
 * (hundreds to a few thousand files) to arrive file by file: ~2 ms an event in the guest under
 * TCG, a tenth of it under KVM, in parts that keep the agent responsive.
 */
export const MAX_BATCH_EVENTS = 2048;
/**
 * Events per FILE_EVENTS request: the agent serves nothing else while the guest module looks
 * them up (~2 ms an event under TCG here), so a batch goes in parts that keep it responsive.
 */
export const EVENTS_PER_REQUEST = 128;
/** Requests in a row the guest did not take before the relay gives up (a gone agent, a missing module). */
export const MAX_FAILURES_IN_A_ROW = 3;

/** Counts of the host changes relayed into a VM (shares with `fileEvents`). */
export interface FileEventStats {
  /** FILE_EVENTS requests sent (a batch goes in parts of EVENTS_PER_REQUEST). */
  batches: number;
  /** Events in them. */
  events: number;
  /** Batches that were collapsed to directories (mass changes). */
  collapsed: number;
  /** Requests the guest refused or did not answer. */
  failures: number;
  /** The longest FILE_EVENTS round trip, ms (the agent serves nothing else meanwhile). */
  slowestMs: number;
}

export interface RelayTarget {
  hostPath: string;
  guestPath: string;
  /** Share-relative paths that volumes cover. */
  covers: readonly string[];
}

/**
 * Watches a shared folder on the host (@parcel/watcher: inotify here, FSEvents/ReadDirectoryChangesW
 * elsewhere, the watcher VS Code uses) and relays its changes to the guest agent as FILE_EVENTS,
 * which the guest module raises as inotify events. One request at a time: changes that arrive
 * while one is in flight merge into the next, so a slow guest sees fewer, larger batches, never
 * a queue. Nothing is ever written to the folder.
 */
export class FileEventRelay {
  readonly stats: FileEventStats = { batches: 0, events: 0, collapsed: 0, failures: 0, slowestMs: 0 };
  private pending = new Map<string, PendingKind>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;
  private failuresInARow = 0;
  private subscription: watcher.AsyncSubscription | undefined;

  get guestPath(): string {
    return this.target.guestPath;
  }

  private constructor(
    private readonly target: RelayTarget,
    private readonly agent: AgentClient,
    private readonly onProblem: (problem: MicrovmError) => void,
  ) {}

  static async start(
    target: RelayTarget,
    agent: AgentClient,
    onProblem: (problem: MicrovmError) => void,
  ): Promise<FileEventRelay> {
    const relay = new FileEventRelay(target, agent, onProblem);
    try {
      // Loaded on first use: its native binary is a package per platform (esbuild.mjs copies it into dist/).
      const parcel: typeof watcher = await import('@parcel/watcher');
      relay.subscription = await parcel.subscribe(target.hostPath, (err, events) => relay.onWatcher(err, events), {
        backend: process.platform === 'linux' ? 'inotify' : undefined,
        ignore: ['.git', '**/.git', ...target.covers],
      });
      // An empty batch first: the guest module starts recording guest writes on this mount, so
      // their echoes from the host are not raised twice.
      await agent.fileEvents(target.guestPath, []);
    } catch (err) {
      await relay.subscription?.unsubscribe().catch(() => undefined);
      throw new MicrovmError(
        'E_FILE_EVENTS',
        `cannot relay changes of ${target.hostPath} into the guest at ${target.guestPath}: ${(err as Error).message}; ` +
          'the guest still sees the files, but its watchers get no events for host edits (a host watch limit: raise fs.inotify.max_user_watches for large trees)',
        { cause: err },
      );
    }
    return relay;
  }

  /** Stops watching; a batch in flight is awaited. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.pending.clear();
    await this.subscription?.unsubscribe().catch(() => undefined);
    await this.inFlight;
  }

  private onWatcher(err: Error | null, events: watcher.Event[]): void {
    if (this.stopped) return;
    if (err) {
      this.onProblem(
        new MicrovmError(
          'E_FILE_EVENTS',
          `the host watcher of ${this.target.hostPath} failed: ${err.message}; some host edits may not raise events in the guest`,
        ),
      );
      return;
    }
    for (const event of events) {
      const rel = relativeToShare(this.target.hostPath, event.path, this.target.covers);
      if (rel !== undefined) mergeChange(this.pending, rel, event.type);
    }
    if (this.pending.size > MAX_PENDING)
      this.pending = collapse(this.pending, MAX_BATCH_EVENTS, (rel) => this.isDirectory(rel));
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.inFlight || this.timer || this.pending.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.inFlight = this.flush().finally(() => {
        this.inFlight = undefined;
        this.schedule();
      });
    }, COALESCE_MS);
  }

  private async flush(): Promise<void> {
    const taken = this.pending;
    this.pending = new Map();
    const batch = collapse(taken, MAX_BATCH_EVENTS, (rel) => this.isDirectory(rel));
    if (batch !== taken) this.stats.collapsed++;
    const events = [...batch].map(([rel, kind]): GuestFileEvent => ({ kind, path: rel }));
    for (let at = 0; at < events.length && !this.stopped; at += EVENTS_PER_REQUEST) {
      const part = events.slice(at, at + EVENTS_PER_REQUEST);
      const started = performance.now();
      try {
        await this.agent.fileEvents(this.target.guestPath, part);
        this.stats.slowestMs = Math.max(this.stats.slowestMs, Math.round(performance.now() - started));
        this.stats.batches++;
        this.stats.events += part.length;
        this.failuresInARow = 0;
      } catch (err) {
        this.stats.failures++;
        const givingUp = ++this.failuresInARow >= MAX_FAILURES_IN_A_ROW;
        this.onProblem(
          new MicrovmError(
            'E_FILE_EVENTS',
            `the guest did not take ${part.length} file events for ${this.target.guestPath}: ${(err as Error).message}; ` +
              (givingUp
                ? `after ${MAX_FAILURES_IN_A_ROW} failures in a row host edits are no longer relayed to this VM (reopen it to start again)`
                : 'its watchers may have missed host edits'),
            { cause: err },
          ),
        );
        if (givingUp) {
          void this.stop();
          return;
        }
      }
    }
  }

  private isDirectory(rel: string): boolean {
    try {
      return fs.lstatSync(path.join(this.target.hostPath, rel)).isDirectory();
    } catch {
      return false;
    }
  }
}
