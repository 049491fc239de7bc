import * as fs from 'node:fs';
import { MicrovmError } from './errors';

/**
 * The one place that decides a host write failed because the filesystem (or the user's
 * quota) is full, and says so with E_HOST_DISK_FULL.
 */
const FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);
const FULL_TEXT = /No space left on device|Disk quota exceeded/;

/** True when `err`, or an error in its cause chain, is ENOSPC or EDQUOT. */
export function isHostDiskFull(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (FULL_CODES.has((e as NodeJS.ErrnoException).code ?? '')) return true;
  }
  return false;
}

/**
 * For a helper program (mke2fs, debugfs) that failed: an ENOSPC error to chain as the cause
 * when its output says the disk is full, so that isHostDiskFull sees it.
 */
export function diskFullInOutput(output: string): Error | undefined {
  const match = FULL_TEXT.exec(output);
  if (!match) return undefined;
  return Object.assign(new Error(match[0]), { code: match[0].startsWith('Disk') ? 'EDQUOT' : 'ENOSPC' });
}

/** Runs `work`; a full host disk becomes E_HOST_DISK_FULL naming `dir` and the next step. */
export async function onHostDisk<T>(dir: string, what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!isHostDiskFull(err)) throw err;
    throw new MicrovmError(
      'E_HOST_DISK_FULL',
      `the host disk holding ${dir}${diskSize(dir)} is full while ${what}; nothing partial was kept and cached images are intact; ` +
        'free space there (`microvm prune` removes unused images), or set MICROVM_HOME to a directory on a larger disk',
      { cause: err, details: { directory: dir } },
    );
  }
}

/** The filesystem's size; its free space now would mislead, as the partial write was just removed. */
function diskSize(dir: string): string {
  const space = spaceOf(dir);
  return space ? ` (${mib(space.totalBytes)})` : '';
}

/** Free (for this user) and total bytes of the filesystem holding `dir`; undefined when it cannot be read. */
export function spaceOf(dir: string): { freeBytes: number; totalBytes: number } | undefined {
  try {
    const stat = fs.statfsSync(dir);
    return { freeBytes: stat.bavail * stat.bsize, totalBytes: stat.blocks * stat.bsize };
  } catch {
    return undefined;
  }
}

export function mib(bytes: number): string {
  return `${Math.floor(bytes / (1024 * 1024))} MiB`;
}
