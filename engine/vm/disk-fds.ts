import * as fs from 'node:fs';
import type { StorageDevices } from '../mount';
import type { QemuSpec } from '../qemu/types';

/**
 * Each writable disk opened twice (read-write, read-only) for QEMU to inherit as fds 3, 4, ...:
 * the fd set lets it reopen the disk read-only when a save deactivates it (see QemuSpec.volumes).
 */
export function openDiskFds(volumes: StorageDevices['volumes']): {
  volumes: NonNullable<QemuSpec['volumes']>;
  fds: number[];
} {
  const fds: number[] = [];
  try {
    const withFds = volumes.map((v) => {
      fds.push(fs.openSync(v.file, 'r+'), fs.openSync(v.file, 'r'));
      return { ...v, fds: { readWrite: fds.length + 1, readOnly: fds.length + 2 } };
    });
    return { volumes: withFds, fds };
  } catch (err) {
    for (const fd of fds) fs.closeSync(fd);
    throw err;
  }
}
