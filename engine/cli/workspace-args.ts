import * as fs from 'node:fs';
import * as path from 'node:path';
import { chosenConfigFile } from '../devcontainer/locate';
import { MicrovmError } from '../errors';
import type { NetworkMode } from '../qemu/network';

/** The options the workspace verbs take (`read-configuration`, `build`, `run --workspace-folder`), as the reference CLI names them. */
export interface WorkspaceFlags {
  folder: string;
  /** `--config`: the devcontainer.json chosen (absolute; given relative to the current directory), instead of the spec's first. */
  configFile?: string;
  /** Host variables `${localEnv:NAME}` may pass into the VM. */
  allowLocalEnv: string[];
  includeMerged: boolean;
  /** The image for a folder without a devcontainer.json (as the microvm.image setting). */
  image?: string;
  /** Apply a configuration that changed since it was last accepted (it may take more from this machine). */
  acceptConfigChanges: boolean;
  /** `--network`: as the microvm.network setting (default outbound). */
  network: NetworkMode;
  /** `--allow`: host names network allowlist may reach, beyond the presets. */
  allow: string[];
  /** The host CAs the guest trusts (as the microvm.trustHostCertificates setting): auto, off, or PEM files. */
  trustCertificates: 'auto' | 'off' | string[];
  /** Project the VM's node_modules types onto the folder (`--no-type-projection` turns it off). */
  typeProjection: boolean;
  /** The guest command after `--` (`run`, `exec`); empty: an interactive shell. */
  argv: string[];
  /** `up`: stop the VM after this long with no client attached (0 = never). */
  idleStopMinutes?: number;
  /** `rm`: remove a running workspace too (it is stopped first). */
  force: boolean;
}

/** Which flags a verb takes beyond --workspace-folder and --allow-local-env. */
interface VerbShape {
  merged?: boolean;
  /** `--config PATH`, as the reference CLI takes it. */
  config?: boolean;
  vm?: boolean;
  argv?: boolean;
  /** The command may start at the first word that is not a flag, without `--` (`exec`, as the reference CLI). */
  bareArgv?: boolean;
  idle?: boolean;
  force?: boolean;
}

export function parseWorkspaceFlags(
  args: string[],
  verb: string,
  shape: VerbShape = { merged: true, config: true },
): WorkspaceFlags {
  const flags: WorkspaceFlags = {
    folder: process.cwd(),
    allowLocalEnv: [],
    includeMerged: false,
    acceptConfigChanges: false,
    network: 'outbound',
    allow: [],
    trustCertificates: 'auto',
    typeProjection: true,
    argv: [],
    force: false,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--' && shape.argv) {
      flags.argv = args.slice(i + 1);
      break;
    }
    if (!arg.startsWith('-') && shape.bareArgv) {
      flags.argv = args.slice(i);
      break;
    }
    const eq = arg.indexOf('=');
    const [name, inline] = eq < 0 ? [arg, undefined] : [arg.slice(0, eq), arg.slice(eq + 1)];
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw bad(`${name} needs a value`, verb);
      return v;
    };
    if (name === '--workspace-folder') flags.folder = path.resolve(value());
    else if (name === '--allow-local-env') flags.allowLocalEnv.push(value());
    else if (name === '--config' && shape.config) flags.configFile = path.resolve(value());
    else if (name === '--include-merged-configuration' && shape.merged) flags.includeMerged = true;
    else if (name === '--image' && shape.vm) flags.image = value();
    else if (name === '--accept-config-changes' && shape.vm) flags.acceptConfigChanges = true;
    else if (name === '--network' && shape.vm) flags.network = networkValue(value(), verb);
    else if (name === '--allow' && shape.vm) flags.allow.push(value());
    else if (name === '--trust-host-certificates' && shape.vm)
      flags.trustCertificates = trustValue(flags.trustCertificates, value());
    else if (name === '--no-type-projection' && shape.vm) flags.typeProjection = false;
    else if (name === '--idle-stop-minutes' && shape.idle) flags.idleStopMinutes = idleMinutes(value(), verb);
    else if (name === '--force' && shape.force) flags.force = true;
    else if (!name.startsWith('-') && shape.argv)
      throw bad(
        `put the command after --, e.g. \`microvm ${verb} --workspace-folder . -- ${args.slice(i).join(' ')}\``,
        verb,
      );
    else throw bad(`unknown option ${JSON.stringify(name)}`, verb);
  }
  if (!fs.statSync(flags.folder, { throwIfNoEntry: false })?.isDirectory()) {
    throw new MicrovmError('E_BAD_OPTION', `--workspace-folder ${JSON.stringify(flags.folder)} is not a directory`);
  }
  // Checked here, before any supervisor starts: a file inside the folder with a configuration's name (E_CONFIG_PATH).
  if (flags.configFile !== undefined) chosenConfigFile(flags.folder, flags.configFile);
  return flags;
}

const NETWORK_MODES: NetworkMode[] = ['outbound', 'none', 'allowlist', 'learn'];

function networkValue(value: string, verb: string): NetworkMode {
  if (!NETWORK_MODES.includes(value as NetworkMode))
    throw bad(`--network ${JSON.stringify(value)} is not one of ${NETWORK_MODES.join(', ')}`, verb);
  return value as NetworkMode;
}

/** `auto` or `off` replace what came before; a file adds to the list (a list given replaces `auto`). */
function trustValue(current: WorkspaceFlags['trustCertificates'], value: string): WorkspaceFlags['trustCertificates'] {
  if (value === 'auto' || value === 'off') return value;
  return [...(Array.isArray(current) ? current : []), path.resolve(value)];
}

/** Minutes, fractions allowed (a test stops after seconds); 0 = never. */
function idleMinutes(value: string, verb: string): number {
  const minutes = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!(minutes >= 0 && minutes <= 7 * 24 * 60))
    throw bad(
      `invalid --idle-stop-minutes value ${JSON.stringify(value)}: expected minutes from 0 (never) to ${7 * 24 * 60}`,
      verb,
    );
  return minutes;
}

function bad(message: string, verb: string): MicrovmError {
  return new MicrovmError('E_BAD_OPTION', `microvm ${verb}: ${message}; see \`microvm --help\``);
}
