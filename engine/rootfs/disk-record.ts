import * as fs from 'node:fs/promises';
import { checkFile, fileRecordSchema, recordFile, type FileRecord } from '../file-record';
import { writeFileAtomic } from '../temp-files';

/**
 * Each cached root disk `<key>.ext4` has a record `<key>.json` with its size, sha256, inode
 * and mtime, written before the disk is renamed into place. A cache hit checks the size and
 * stats the file (well under a millisecond); the disk is hashed again only when its inode or
 * mtime changed, as engine/file-record.ts does for snapshots.
 */
export function diskRecordPath(disk: string): string {
  return disk.replace(/\.ext4$/, '.json');
}

export type DiskCheck = { ok: true; sha256: string } | { ok: false; reason: string; missing?: boolean };

/** Whether the cached disk can be used; the reason says why not (missing, truncated, corrupted). */
export async function checkDisk(disk: string): Promise<DiskCheck> {
  const record = await readDiskRecord(disk);
  if (!(await fs.stat(disk).catch(() => null))?.isFile())
    return { ok: false, reason: 'there is no disk yet', missing: true };
  // A disk built before records were kept is hashed once and adopted as it is.
  if (record === 'missing') return { ok: true, sha256: (await writeDiskRecord(disk, disk)).sha256 };
  if (record === 'unreadable') return { ok: false, reason: `its record ${diskRecordPath(disk)} is unreadable` };
  const check = await checkFile(disk, record, 'root disk');
  if (!check.ok) return check;
  if (check.hashed) await writeDiskRecord(disk, disk); // Same bytes, new mtime or inode (a copy, a touch).
  return { ok: true, sha256: record.sha256 };
}

/** Records the finished disk at `built` as the record of `disk` (its final name). */
export async function writeDiskRecord(built: string, disk: string): Promise<FileRecord> {
  const record = await recordFile(built, { stat: true });
  await writeFileAtomic(diskRecordPath(disk), JSON.stringify(record) + '\n', 0o600);
  return record;
}

async function readDiskRecord(disk: string): Promise<FileRecord | 'missing' | 'unreadable'> {
  try {
    return fileRecordSchema.parse(JSON.parse(await fs.readFile(diskRecordPath(disk), 'utf8')));
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable';
  }
}
