import { MicrovmError } from '../errors';
import { formatPlatform, parsePlatform } from '../image/platform';
import { parsePublish } from './publish-flag';
import { PublishSpec } from '../forward/types';
import { NetworkMode } from '../qemu/network';
import { MountFlag, parseMountFlag, parseVolumeFlag, VolumeFlag } from './mount-flags';

export interface VmFlags {
  image?: string;
  /** `--platform OS/ARCH[/VARIANT]`: which manifest of a multi-platform image to run (default: this host's). */
  platform?: string;
  memoryMib?: number;
  vcpus?: number;
  env: Record<string, string>;
  cwd?: string;
  /** `--publish HOST:GUEST`, repeatable. */
  publish: PublishSpec[];
  network?: NetworkMode;
  /** `--allow PATTERN`, repeatable: what network allowlist lets the VM reach. */
  allow: string[];
  /** `--mount HOST:GUEST[:ro][:symlinks=POLICY]` and `--volume NAME:GUEST[:SIZE_MIB]`, repeatable. */
  mounts?: MountFlag[];
  volumes?: VolumeFlag[];
}

export interface ParsedCommand {
  flags: VmFlags;
  /** The guest command: everything after `--` or after the first non-flag word. */
  argv: string[];
}

const NETWORK_MODES: NetworkMode[] = ['outbound', 'none', 'allowlist', 'learn'];

const VALUE_FLAGS = new Set([
  '--image',
  '--platform',
  '--memory',
  '--cpus',
  '--env',
  '--cwd',
  '--publish',
  '--network',
  '--allow',
  '--mount',
  '--volume',
]);

/**
 * Whether `microvm run`'s flags (before the guest command) include --workspace-folder: the
 * workspace form of the verb. Flags the image form takes may come first.
 */
export function namesWorkspaceFolder(args: string[]): boolean {
  const workspaceValueFlags = new Set(['--allow-local-env', '--image']);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = splitInline(arg);
    if (arg === '--' || !arg.startsWith('--')) return false;
    if (name === '--workspace-folder') return true;
    if (inline === undefined && (VALUE_FLAGS.has(name) || workspaceValueFlags.has(name))) i++;
  }
  return false;
}

/**
 * Parses `[flags] [--] ARGV...`. Flags stop at the first word that is not one, so
 * `microvm run ls -la` passes -la to the guest.
 */
export function parseVmCommand(args: string[], allowArgv: boolean): ParsedCommand {
  const flags: VmFlags = { env: {}, publish: [], allow: [] };
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('--')) break;
    const [name, inline] = splitInline(arg);
    if (!VALUE_FLAGS.has(name)) throw badFlag(`unknown option ${name}`);
    const value = inline ?? args[++i];
    if (value === undefined) throw badFlag(`${name} needs a value`);
    applyFlag(flags, name, value);
  }
  const argv = args.slice(i);
  if (!allowArgv && argv.length > 0) throw badFlag(`unexpected argument ${JSON.stringify(argv[0])}`);
  return { flags, argv };
}

function splitInline(arg: string): [string, string | undefined] {
  const eq = arg.indexOf('=');
  return eq < 0 ? [arg, undefined] : [arg.slice(0, eq), arg.slice(eq + 1)];
}

function applyFlag(flags: VmFlags, name: string, value: string): void {
  switch (name) {
    case '--image':
      flags.image = value;
      return;
    case '--platform':
      flags.platform = formatPlatform(parsePlatform(value, '--platform'));
      return;
    case '--memory':
      flags.memoryMib = wholeNumber(name, value, 64, 1024 * 1024, 'MiB of guest memory');
      return;
    case '--cpus':
      flags.vcpus = wholeNumber(name, value, 1, 255, 'virtual CPUs');
      return;
    case '--cwd':
      flags.cwd = value;
      return;
    case '--mount':
      (flags.mounts ??= []).push(parseMountFlag(value));
      return;
    case '--volume':
      (flags.volumes ??= []).push(parseVolumeFlag(value));
      return;
    case '--publish':
      flags.publish.push(parsePublish(value));
      return;
    case '--network':
      if (!NETWORK_MODES.includes(value as NetworkMode))
        throw badFlag(`invalid --network value ${JSON.stringify(value)}: expected ${NETWORK_MODES.join(', ')}`);
      flags.network = value as NetworkMode;
      return;
    case '--allow':
      flags.allow.push(value);
      return;
    case '--env': {
      const eq = value.indexOf('=');
      if (eq <= 0) throw badFlag(`invalid --env value ${JSON.stringify(value)}: expected NAME=VALUE`);
      flags.env[value.slice(0, eq)] = value.slice(eq + 1);
      return;
    }
  }
}

/** The range matches the engine's option schema, so a bad value is reported with the flag's name. */
function wholeNumber(name: string, value: string, min: number, max: number, what: string): number {
  const number = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(number >= min && number <= max)) {
    throw badFlag(
      `invalid ${name} value ${JSON.stringify(value)}: expected a whole number from ${min} to ${max} (${what})`,
    );
  }
  return number;
}

function badFlag(message: string): MicrovmError {
  return new MicrovmError('E_BAD_OPTION', `${message}; see \`microvm --help\``);
}
