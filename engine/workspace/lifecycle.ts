import type { Vm } from '../vm/vm';
import type { Hook } from '../devcontainer/lifecycle';
import type { WorkspacePlan } from '../devcontainer/plan';
import {
  CommandOutcome,
  describeFailure,
  failedOutcomes,
  HookEnvironment,
  HookOutput,
  HookRun,
  hooksToRun,
  runHook,
  splitAtWaitFor,
} from './lifecycle-runner';

/** What the workspace remembers between opens: the container's hooks that already ran. */
export interface LifecycleState {
  done: readonly Hook[];
  /** Why hooks run again that ran before (a lockfile changed): said in the log when the hooks start. */
  notes?: readonly string[];
  /** Records that a once-per-container hook succeeded. */
  markDone(hook: Hook): Promise<void>;
  /**
   * The container runs on the image `digest`: a new container when the image changed (its
   * once-only hooks to run again, its disk emptied). Resolves to the volume that keeps its
   * root changes. Absent: the root's changes last until the VM stops.
   */
  useImage?(digest: string): Promise<{ rootVolume: string; fresh: boolean }>;
}

/** What the lifecycle tells its owner: log lines, progress, hook failures. */
export interface LifecycleEvents extends HookOutput {
  /** A line for the log. */
  log(line: string): void;
  /** A hook failed: later hooks of this start did not run. `retry` runs it and the rest again. */
  hookFailed(description: string, retry: () => Promise<void>): void;
  /** The step now under way, for a progress indicator. */
  progress(step: string): void;
}

/**
 * The lifecycle of one start of the workspace VM: the container's hooks that have not run
 * yet (onCreate, updateContent, postCreate: once, recorded only when they succeed), then
 * postStart, then postAttach. Hooks up to `waitFor` run before the workspace is handed over;
 * the rest run after, in the background. A failure stops the hooks after it, keeps the VM,
 * and offers to retry. No VS Code here.
 */
export class Lifecycle {
  background: Promise<void> = Promise.resolve();

  constructor(
    private readonly vm: Vm,
    private readonly plan: WorkspacePlan,
    private readonly where: HookEnvironment,
    private readonly state: LifecycleState,
    private readonly events: LifecycleEvents,
  ) {}

  /** Runs the hooks up to waitFor; resolves when they are done (or one failed). */
  async start(phase: { start: boolean; attach: boolean }): Promise<void> {
    for (const note of this.state.notes ?? []) this.events.log(note);
    const hooks = pendingHooks(this.plan, this.state.done, phase);
    const { before, after } = splitAtWaitFor(hooks, this.plan.waitFor);
    if (await this.runAll(before, after)) {
      // The rest runs while the user works; a VM stopped meanwhile ends it (said in the log, not thrown).
      this.background = this.runAll(after).then(
        () => undefined,
        (err: Error) => this.events.log(`the lifecycle hooks stopped: ${err.message}`),
      );
    }
  }

  /**
   * Runs hooks one after another; false at the first failure, which is reported with a retry
   * that runs it, the hooks after it, then `then` (the hooks a failure before waitFor held back).
   */
  private async runAll(hooks: readonly Hook[], then: readonly Hook[] = []): Promise<boolean> {
    for (const [i, hook] of hooks.entries()) {
      this.events.progress(`Running ${hook}`);
      let outcomes: CommandOutcome[] = [];
      // The image's and the features' commands first, each blocking the next; a failure stops the rest.
      for (const run of hookRuns(this.plan, hook)) {
        outcomes = await runHook(this.vm, run, this.where, this.events);
        if (!this.succeeded(hook, outcomes)) break;
      }
      if (failedOutcomes(outcomes).length > 0) {
        const rest = [...hooks.slice(i), ...then];
        this.events.log(`${hook} failed: ${rest.slice(1).join(', ') || 'no other hook'} did not run`);
        this.events.hookFailed(failureText(outcomes), async () => {
          if (await this.runAll(rest)) this.events.log(`${rest.join(', ')} ran after the retry`);
        });
        return false;
      }
      if (['onCreateCommand', 'updateContentCommand', 'postCreateCommand'].includes(hook))
        await this.state.markDone(hook);
    }
    return true;
  }

  private succeeded(hook: Hook, outcomes: readonly CommandOutcome[]): boolean {
    const failures = failedOutcomes(outcomes);
    for (const outcome of outcomes) {
      const from = outcome.origin === 'devcontainer.json' ? '' : ` from ${outcome.origin}`;
      this.events.log(
        `${outcome.name ? `${hook} (${outcome.name})` : hook}${from} exited ${outcome.exitCode}${outcome.signal ? ` (${outcome.signal})` : ''}`,
      );
    }
    return failures.length === 0;
  }
}

/** The hooks a start with `phase` runs: those not done yet (or not once-only) that have commands. */
export function pendingHooks(
  plan: Pick<WorkspacePlan, 'hooks' | 'metadataHooks'>,
  done: readonly Hook[],
  phase: { start: boolean; attach: boolean },
): Hook[] {
  return hooksToRun(done, phase).filter((hook) => hookRuns(plan, hook).length > 0);
}

/** One hook's commands in the spec's order: the image metadata's and the features' (install order), then devcontainer.json's. */
export function hookRuns(plan: Pick<WorkspacePlan, 'hooks' | 'metadataHooks'>, hook: Hook): HookRun[] {
  const own = plan.hooks[hook];
  return [
    ...(plan.metadataHooks[hook] ?? []).map((c) => ({ hook, origin: c.origin, command: c.command })),
    ...(own ? [{ hook, origin: 'devcontainer.json', command: own }] : []),
  ];
}

function failureText(outcomes: readonly CommandOutcome[]): string {
  return failedOutcomes(outcomes).map(describeFailure).join('; ');
}
