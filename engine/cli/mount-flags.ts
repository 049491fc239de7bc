import { MicrovmError } from '../errors';
import { GitPolicy, SymlinkPolicy } from '../mount/types';

export interface MountFlag {
  hostPath: string;
  guestPath: string;
  readOnly?: boolean;
  symlinks?: SymlinkPolicy;
  git?: GitPolicy;
  filter?: boolean;
}

export interface VolumeFlag {
  name: string;
  mountPoint: string;
  sizeMib?: number;
}

const MOUNT_SYNTAX = 'HOST:GUEST[:ro][:symlinks=opaque|deny|follow][:git=writable|strict][:nofilter]';

/** `--mount HOST:GUEST[:ro][:symlinks=...][:git=...][:nofilter]`; the engine's schema checks the paths. */
export function parseMountFlag(value: string): MountFlag {
  const [hostPath, guestPath, ...options] = value.split(':');
  if (!hostPath || !guestPath) throw bad(`invalid --mount value ${JSON.stringify(value)}: expected ${MOUNT_SYNTAX}`);
  const flag: MountFlag = { hostPath, guestPath };
  for (const option of options) {
    const policy = /^symlinks=(opaque|deny|follow)$/.exec(option);
    const git = /^git=(writable|strict)$/.exec(option);
    if (option === 'ro') flag.readOnly = true;
    else if (option === 'nofilter') flag.filter = false;
    else if (policy) flag.symlinks = policy[1] as SymlinkPolicy;
    else if (git) flag.git = git[1] as GitPolicy;
    else
      throw bad(
        `invalid --mount option ${JSON.stringify(option)} in ${JSON.stringify(value)}: expected ${MOUNT_SYNTAX}`,
      );
  }
  return flag;
}

/** `--volume NAME:GUEST[:SIZE_MIB]`. */
export function parseVolumeFlag(value: string): VolumeFlag {
  const [name, mountPoint, size, ...rest] = value.split(':');
  if (!name || !mountPoint || rest.length > 0)
    throw bad(`invalid --volume value ${JSON.stringify(value)}: expected NAME:GUEST[:SIZE_MIB]`);
  if (size === undefined) return { name, mountPoint };
  if (!/^\d+$/.test(size))
    throw bad(
      `invalid --volume size ${JSON.stringify(size)} in ${JSON.stringify(value)}: expected a whole number of MiB`,
    );
  return { name, mountPoint, sizeMib: Number(size) };
}

function bad(message: string): MicrovmError {
  return new MicrovmError('E_BAD_OPTION', `${message}; see \`microvm --help\``);
}
