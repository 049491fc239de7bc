import { NODE_LOCKFILES } from './lockfiles';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { WorkspacePlan } from '../devcontainer/plan';
import type { Vm } from '../vm/vm';
import { coalesced, SerialQueue } from './serial-queue';
import { ProjectionResult, projectionTargets, ProjectionTarget, projectTypes } from './type-projection';

/** Lockfiles whose change on the host means an install ran in the VM (they live in the share). */
const LOCKFILE_NAMES = new Set(NODE_LOCKFILES);

/** One run over every target: what was projected, and what failed (each also a log line). */
export interface ProjectionRun {
  reason: string;
  results: ProjectionResult[];
  failures: Array<{ guestDir: string; error: Error }>;
}

/** A burst of lockfile writes (an install rewrites it more than once) is one refresh, this long after the last. */
const LOCKFILE_QUIET_MS = 2000;

/**
 * When a workspace's type projections run: once the hooks have settled (a postCreateCommand
 * `npm install` is done), when asked (the Refresh Type Definitions command), and after a
 * lockfile next to a projected node_modules changed (an install in a terminal rewrites it,
 * and the host sees that through the share). One projection at a time; triggers that arrive
 * while one waits are folded into it.
 */
export class TypeProjector {
  private readonly queue = new SerialQueue();
  private readonly watchers: fs.FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private last: ProjectionRun | undefined;
  private readonly onLockfile = coalesced(
    this.queue,
    async () => {
      await this.projectAll('a lockfile changed');
    },
    () => undefined,
  );

  private constructor(
    private readonly vm: Vm,
    readonly targets: ProjectionTarget[],
    private readonly protect: readonly string[],
    private readonly log: (line: string) => void,
  ) {}

  /**
   * The projector of a workspace VM, or undefined when no volume covers a node_modules in a
   * filtered share. It projects after `settled` and then follows the lockfiles.
   */
  static start(
    vm: Vm,
    plan: Pick<WorkspacePlan, 'mounts' | 'volumes'>,
    settled: Promise<unknown>,
    log: (line: string) => void,
  ): TypeProjector | undefined {
    const targets = projectionTargets(plan.mounts, plan.volumes);
    if (targets.length === 0) return undefined;
    const protect = [...new Set(plan.mounts.flatMap((m) => m.protect))];
    const projector = new TypeProjector(vm, targets, protect, log);
    void projector.queue
      .run(async () => {
        await settled.catch(() => undefined);
        if (projector.stopped) return;
        await projector.projectAll('the hooks settled');
        projector.watchLockfiles();
      })
      .catch(() => undefined);
    return projector;
  }

  /** Projects every target now (after any projection in progress); each outcome is a log line. */
  refresh(reason: string): Promise<ProjectionRun> {
    return this.queue.run(() => this.projectAll(reason));
  }

  /** Resolves once every projection asked for so far has ended, with the last run (undefined before the first). */
  async settled(): Promise<ProjectionRun | undefined> {
    await this.queue.idle();
    return this.last;
  }

  /** Stops watching and refreshing; a projection under way finishes. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const watcher of this.watchers.splice(0)) watcher.close();
    this.queue.close();
  }

  private async projectAll(reason: string): Promise<ProjectionRun> {
    const run: ProjectionRun = { reason, results: [], failures: [] };
    for (const target of this.targets) {
      if (this.stopped) break;
      try {
        const result = await projectTypes(this.vm, target, { protect: this.protect });
        run.results.push(result);
        this.log(describe(target, result, reason));
      } catch (err) {
        if (this.stopped) break;
        run.failures.push({ guestDir: target.guestDir, error: err as Error });
        this.log(
          `type projection of ${target.guestDir} (${reason}) failed (${(err as { code?: string }).code ?? 'error'}): ${(err as Error).message}`,
        );
      }
    }
    this.last = run;
    return run;
  }

  private watchLockfiles(): void {
    if (this.stopped) return;
    for (const dir of new Set(this.targets.map((t) => path.dirname(t.hostDir)))) {
      try {
        const watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
          if (name && LOCKFILE_NAMES.has(name.toString())) this.lockfileChanged();
        });
        watcher.on('error', () => watcher.close());
        this.watchers.push(watcher);
      } catch (err) {
        this.log(
          `type projection: cannot watch ${dir} for lockfile changes (${(err as Error).message}); run "MicroVM: Refresh Type Definitions" after an install`,
        );
      }
    }
  }

  private lockfileChanged(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (!this.stopped) this.onLockfile();
    }, LOCKFILE_QUIET_MS);
    this.timer.unref();
  }
}

function describe(target: ProjectionTarget, result: ProjectionResult, reason: string): string {
  const skipped = Object.entries(result.skipped)
    .map(([why, n]) => `${n} ${why}`)
    .join('; ');
  return (
    `type projection (${reason}): ${result.declarations} declaration files and ${result.packageJsons} package.json files ` +
    `(${size(result.bytes)}) from ${target.guestDir} to ${result.hostDir} in ${result.ms} ms${skipped ? `; left out: ${skipped}` : ''}`
  );
}

function size(bytes: number): string {
  return bytes < 1048576 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1048576).toFixed(1)} MiB`;
}
