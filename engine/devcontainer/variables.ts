import { createHash } from 'node:crypto';
import * as path from 'node:path';

/**
 * `${...}` variables in devcontainer.json, as the spec and the reference CLI define them:
 * the first `}` closes a variable, its inside splits on `:` (`${localEnv:NAME:default}`; a
 * default cannot hold a `:`), unknown names stay as written, and object keys are left alone.
 *
 * Host environment variables are a secret channel into an untrusted VM: `${localEnv:NAME}`
 * (and its alias `${env:NAME}`) resolve only for names the user allowed; any other resolves
 * to its default or to nothing, and is reported.
 */
export interface VariableContext {
  localWorkspaceFolder: string;
  containerWorkspaceFolder: string;
  devcontainerId?: string;
  /** The host environment, and which of its names may reach the VM. */
  localEnv: NodeJS.ProcessEnv;
  allowLocalEnv: ReadonlySet<string>;
  /** The VM's environment (image ENV and containerEnv), once known. */
  containerEnv?: Readonly<Record<string, string>>;
}

/** A `${localEnv:NAME}` the user did not allow, and where it was. */
export interface RefusedVariable {
  name: string;
  path: Array<string | number>;
}

const VARIABLE = /\$\{(.*?)\}/g;

/**
 * Substitutes every string value of `value` (recursively); the rest is returned as it is.
 * `only` limits the pass to those variable names (the others stay as written).
 */
export function substitute<T>(
  value: T,
  ctx: VariableContext,
  refused: RefusedVariable[] = [],
  at: Array<string | number> = [],
  only?: readonly string[],
): T {
  if (typeof value === 'string') return substituteString(value, ctx, refused, at, only) as T;
  if (Array.isArray(value)) return value.map((item, i) => substitute(item, ctx, refused, [...at, i], only)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substitute(v, ctx, refused, [...at, k], only)]),
    ) as T;
  }
  return value;
}

function substituteString(
  text: string,
  ctx: VariableContext,
  refused: RefusedVariable[],
  at: Array<string | number>,
  only?: readonly string[],
): string {
  return text.replace(VARIABLE, (match: string, inside: string) => {
    const [name = '', ...args] = inside.split(':');
    if (only && !only.includes(name)) return match;
    switch (name) {
      case 'localWorkspaceFolder':
        return ctx.localWorkspaceFolder;
      case 'localWorkspaceFolderBasename':
        return path.basename(ctx.localWorkspaceFolder);
      case 'containerWorkspaceFolder':
        return ctx.containerWorkspaceFolder;
      case 'containerWorkspaceFolderBasename':
        return path.posix.basename(ctx.containerWorkspaceFolder);
      case 'devcontainerId':
        return ctx.devcontainerId ?? match;
      case 'localEnv':
      case 'env':
        return localEnv(args, ctx, refused, at) ?? match;
      case 'containerEnv':
        return ctx.containerEnv ? (lookup(ctx.containerEnv, args) ?? match) : match;
      default:
        return match;
    }
  });
}

function localEnv(
  args: string[],
  ctx: VariableContext,
  refused: RefusedVariable[],
  at: Array<string | number>,
): string | undefined {
  const name = args[0];
  if (!name) return undefined;
  if (!ctx.allowLocalEnv.has(name)) {
    if (ctx.localEnv[name] !== undefined) refused.push({ name, path: at });
    return args[1] ?? '';
  }
  return lookup(ctx.localEnv, args);
}

/** `NAME[:default]`: the value when set (even ""), else the default, else "". */
function lookup(env: Readonly<Record<string, string | undefined>>, args: string[]): string | undefined {
  if (!args[0]) return undefined;
  const value = env[args[0]];
  return typeof value === 'string' ? value : (args[1] ?? '');
}

/** Whether a string still holds a variable of `names` (to find what could not be resolved yet). */
export function hasVariable(text: string, names: readonly string[]): boolean {
  return [...text.matchAll(VARIABLE)].some((m) => names.includes(m[1]?.split(':', 1)[0] ?? ''));
}

/**
 * `${devcontainerId}`: stable per folder and configuration file, the reference CLI's way
 * (sha256 of the sorted JSON of its two id labels, as a base-32 number in 0-9a-v, 52 digits),
 * so that tools that compute it agree.
 */
export function devcontainerId(localFolder: string, configFile: string): string {
  const labels: Record<string, string> = {
    'devcontainer.config_file': configFile,
    'devcontainer.local_folder': localFolder,
  };
  const json = JSON.stringify(labels, Object.keys(labels).sort());
  const digest = createHash('sha256').update(json, 'utf8').digest('hex');
  return BigInt(`0x${digest}`).toString(32).padStart(52, '0');
}
