import type { ExecChild } from '../agent/exec-child';
import type { Vm } from '../vm/vm';
import {
  Command,
  commandArgv,
  describeCommand,
  Hook,
  HOOK_SCOPE,
  HOOKS,
  LifecycleCommand,
  WaitFor,
} from '../devcontainer/lifecycle';

/** One hook to run: its command, and where it came from (devcontainer.json, or a feature or the image). */
export interface HookRun {
  hook: Hook;
  origin: string;
  command: LifecycleCommand;
}

/** How one command of a hook ended (a parallel object has one per entry). */
export interface CommandOutcome {
  hook: Hook;
  origin: string;
  /** The entry's name in the object form. */
  name?: string;
  command: string;
  exitCode: number;
  signal?: string;
}

/** Where and as whom the lifecycle commands run in the guest. */
export interface HookEnvironment {
  cwd: string;
  env: Record<string, string>;
  /** Names remoteEnv unsets (`null`): not in the hook's environment, the image's included. */
  unsetEnv?: string[];
  /** The remote user's ids. */
  user?: { uid: number; gid: number; groups?: number[] };
}

/** Where a lifecycle command's output and its start and end go. */
export interface HookOutput {
  /** A labelled chunk of a command's output (stdout and stderr alike). */
  output(label: string, chunk: Buffer): void;
  /** A command starts: for a banner or a log line. */
  started?: (outcome: Omit<CommandOutcome, 'exitCode'>) => void;
  /** A command ended, with its exit code or signal: for a banner or a log line. */
  finished?: (outcome: CommandOutcome) => void;
}

/** Which hooks run at this start, in order: the container's once (not done yet), the start's, the attach's. */
export function hooksToRun(done: readonly Hook[], phase: { start: boolean; attach: boolean }): Hook[] {
  return HOOKS.filter((hook) => {
    const scope = HOOK_SCOPE[hook];
    if (scope === 'container') return !done.includes(hook);
    return scope === 'start' ? phase.start : phase.attach;
  });
}

/** The hooks that must finish before the workspace is ready (up to and including waitFor); the rest run after. */
export function splitAtWaitFor(hooks: readonly Hook[], waitFor: WaitFor): { before: Hook[]; after: Hook[] } {
  const last = waitFor === 'initializeCommand' ? -1 : HOOKS.indexOf(waitFor);
  return { before: hooks.filter((h) => HOOKS.indexOf(h) <= last), after: hooks.filter((h) => HOOKS.indexOf(h) > last) };
}

/**
 * Runs one hook's command: a single command, or every entry of an object at once, each with
 * its own labelled output and exit status; one failing does not stop the others. Resolves
 * when all have ended (never rejects for a failing command: see the outcomes).
 */
export async function runHook(
  vm: Vm,
  run: HookRun,
  where: HookEnvironment,
  out: HookOutput,
): Promise<CommandOutcome[]> {
  const entries =
    run.command.kind === 'single' ? [{ name: undefined, command: run.command.command }] : run.command.entries;
  return Promise.all(entries.map((entry) => runCommand(vm, run, entry.name, entry.command, where, out)));
}

async function runCommand(
  vm: Vm,
  run: HookRun,
  name: string | undefined,
  command: Command,
  where: HookEnvironment,
  out: HookOutput,
): Promise<CommandOutcome> {
  const base = { hook: run.hook, origin: run.origin, ...(name ? { name } : {}), command: describeCommand(command) };
  const label = name ? `${run.hook}: ${name}` : run.hook;
  out.started?.(base);
  let child: ExecChild;
  try {
    child = vm.spawn({
      argv: commandArgv(command),
      cwd: where.cwd,
      env: where.env,
      unsetEnv: where.unsetEnv ?? [],
      timeoutMs: 0,
      ...(where.user ? { user: where.user } : {}),
    });
  } catch (err) {
    out.output(label, Buffer.from(`${(err as Error).message}\n`));
    const outcome = { ...base, exitCode: 127 };
    out.finished?.(outcome);
    return outcome;
  }
  child.closeStdin();
  const pump = async (read: () => Promise<Buffer>) => {
    for (let chunk = await read(); chunk.length > 0; chunk = await read()) out.output(label, chunk);
  };
  await Promise.all([pump(() => child.readStdout()), pump(() => child.readStderr())]);
  const result = await child.wait();
  const outcome: CommandOutcome = {
    ...base,
    exitCode: result.exitCode,
    ...(result.signal ? { signal: String(result.signal) } : {}),
  };
  out.finished?.(outcome);
  return outcome;
}

/** `postCreateCommand 'bundle install' exited 1`, for a failure notice and the log. */
export function describeFailure(outcome: CommandOutcome): string {
  const what = outcome.name ? `${outcome.hook} (${outcome.name})` : outcome.hook;
  const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited ${outcome.exitCode}`;
  const from = outcome.origin === 'devcontainer.json' ? '' : ` from ${outcome.origin}`;
  return `${what}${from} '${outcome.command.length > 60 ? `${outcome.command.slice(0, 57)}...` : outcome.command}' ${how}`;
}

/** The commands that exited non-zero or were killed by a signal. */
export function failedOutcomes(outcomes: readonly CommandOutcome[]): CommandOutcome[] {
  return outcomes.filter((o) => o.exitCode !== 0 || o.signal);
}
