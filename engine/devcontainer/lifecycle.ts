/**
 * Lifecycle commands as the spec writes them, and when each runs:
 *
 * - a string runs through `/bin/sh -c`; an array is exec'd as it is (no shell);
 * - an object's entries run in parallel, each with its own output and exit status, and one
 *   failing does not stop the others;
 * - `""`, `[]` and `{}` are no-ops.
 */
export type Command = { kind: 'shell'; script: string } | { kind: 'exec'; argv: string[] };

/** A hook's command: one command, or named commands that run in parallel (the object form). */
export type LifecycleCommand =
  { kind: 'single'; command: Command } | { kind: 'parallel'; entries: Array<{ name: string; command: Command }> };

/** The lifecycle hooks that run in the guest, in the order they run. */
export const HOOKS = [
  'onCreateCommand',
  'updateContentCommand',
  'postCreateCommand',
  'postStartCommand',
  'postAttachCommand',
] as const;
/** A lifecycle hook's name. */
export type Hook = (typeof HOOKS)[number];

/** `waitFor` may also name initializeCommand, which never runs here (it would run on the host). */
export const WAIT_FOR = ['initializeCommand', ...HOOKS.slice(0, 4)] as const;
/** The hook `waitFor` names: the workspace counts as ready once it has run. */
export type WaitFor = (typeof WAIT_FOR)[number];

/**
 * When a hook runs: once per container (onCreate, updateContent, postCreate: the workspace's
 * persistent root layer is its container), on every start of the VM, on every attach.
 */
export const HOOK_SCOPE: Record<Hook, 'container' | 'start' | 'attach'> = {
  onCreateCommand: 'container',
  updateContentCommand: 'container',
  postCreateCommand: 'container',
  postStartCommand: 'start',
  postAttachCommand: 'attach',
};

/** The spec's command forms, or undefined for an empty one (a no-op). Throws on a wrong type. */
export function toLifecycleCommand(value: unknown): LifecycleCommand | undefined {
  if (isObject(value)) {
    const entries = Object.entries(value).flatMap(([name, entry]) => {
      const command = toCommand(entry);
      return command ? [{ name, command }] : [];
    });
    return entries.length === 0 ? undefined : { kind: 'parallel', entries };
  }
  const command = toCommand(value);
  return command && { kind: 'single', command };
}

function toCommand(value: unknown): Command | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : { kind: 'shell', script: value };
  if (Array.isArray(value) && value.every((v) => typeof v === 'string'))
    return value.length === 0 ? undefined : { kind: 'exec', argv: value };
  throw new TypeError('expected a command string, an array of strings, or an object of named commands');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The argv that runs a command in the guest. */
export function commandArgv(command: Command): string[] {
  return command.kind === 'shell' ? ['/bin/sh', '-c', command.script] : command.argv;
}

/** How a command reads in a log line or a terminal banner. */
export function describeCommand(command: Command): string {
  return command.kind === 'shell' ? command.script : command.argv.join(' ');
}
