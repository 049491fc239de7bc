import * as fs from 'node:fs';
import { MicrovmError } from '../errors';
import { isExecutable } from './host-binary';
import { MountSpec } from './types';

/** Debian 12's bindfs (package bindfs, built on libfuse 2) and the fusermount it execs (package fuse). */
const BINDFS_CANDIDATES = ['/usr/bin/bindfs', '/usr/local/bin/bindfs'];
const FUSERMOUNT_CANDIDATES = ['/bin/fusermount', '/usr/bin/fusermount'];
const FUSE_DEVICE = '/dev/fuse';

/**
 * bindfs refuses to resolve a path into its own mount point. In its mount namespace the view
 * is mounted nowhere (microvm-fsjail mounts it for virtiofsd only), so it is given a
 * directory no share links into.
 */
export const BINDFS_MOUNT_POINT = '/proc/self/fdinfo';

/**
 * What `symlinks: 'follow'` needs on the host: bindfs, the fusermount path that
 * microvm-fsjail covers with its fd-passing stand-in, and /dev/fuse. The error names the
 * package, so `follow` never silently behaves like `opaque`.
 */
export function findBindfs(exists: (path: string) => boolean = isExecutable): string {
  const bindfs = BINDFS_CANDIDATES.find(exists);
  if (!bindfs) {
    throw new MicrovmError('E_MOUNT_UNAVAILABLE', `symlinks: 'follow' needs bindfs (looked at ${BINDFS_CANDIDATES.join(', ')}); install the Debian package bindfs (\`npm run setup\` does), or use symlinks: 'opaque'`);
  }
  if (!FUSERMOUNT_CANDIDATES.some(exists)) {
    throw new MicrovmError('E_MOUNT_UNAVAILABLE', `symlinks: 'follow' needs ${FUSERMOUNT_CANDIDATES[0]} from the Debian package fuse (bindfs's libfuse 2 runs it); install fuse, or use symlinks: 'opaque'`);
  }
  if (!fs.existsSync(FUSE_DEVICE)) {
    throw new MicrovmError('E_MOUNT_UNAVAILABLE', `symlinks: 'follow' needs ${FUSE_DEVICE}; load the fuse kernel module (modprobe fuse), or use symlinks: 'opaque'`);
  }
  return bindfs;
}

/**
 * microvm-fsjail's options for the follow view (pure): bindfs serves hostPath with host
 * symlinks resolved (`--resolve-symlinks`, which also refuses new symlinks) as the folder's
 * owner, in the foreground (`-f`: it must stay the jail's child to die with it), and the jail
 * mounts it over hostPath where virtiofsd looks. `auto_unmount` makes libfuse ask fusermount
 * for the connection (the jail answers); `nonempty` skips a check of a mount point it never
 * uses; readOnly adds bindfs's own `-r` under the jail's read-only bind.
 */
export function followViewArgv(bindfs: string, mount: MountSpec): string[] {
  const daemon = [
    bindfs, '-f', '-o', 'auto_unmount,nonempty', '--resolve-symlinks', '--resolved-symlink-deletion=symlink-only',
    ...(mount.readOnly ? ['-r'] : []), mount.hostPath, BINDFS_MOUNT_POINT,
  ];
  return ['--fuse-view', mount.hostPath, ...daemon.flatMap((arg) => ['--fuse-daemon', arg])];
}
