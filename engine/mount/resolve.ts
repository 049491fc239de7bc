import * as fs from 'node:fs';
import * as path from 'node:path';
import { MicrovmError } from '../errors';
import { MountSpec } from './types';

/**
 * Checks that every hostPath is an existing directory and pins it to its real path, so a
 * symlink swapped in later cannot redirect virtiofsd. The path is named in the error.
 */
export function resolveMounts(mounts: MountSpec[]): MountSpec[] {
  return mounts.map((mount, i) => {
    let real: string;
    try {
      real = fs.realpathSync(path.resolve(mount.hostPath));
    } catch {
      throw new MicrovmError(
        'E_BAD_OPTION',
        `invalid Image.build option mounts.${i}.hostPath: ${JSON.stringify(mount.hostPath)} does not exist`,
      );
    }
    if (!fs.statSync(real).isDirectory()) {
      throw new MicrovmError(
        'E_BAD_OPTION',
        `invalid Image.build option mounts.${i}.hostPath: ${JSON.stringify(mount.hostPath)} is not a directory`,
      );
    }
    return { ...mount, hostPath: real, guestPath: path.posix.normalize(mount.guestPath).replace(/\/$/, '') };
  });
}
