import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';

/**
 * How cached files (snapshot state and memory files, root disks) are checked before use:
 * their size and sha256 are recorded when they are written. The size is checked on every
 * use; the sha256 is recomputed only when the file's inode or mtime differ from the
 * recorded ones (any write to the file changes its mtime), or on every use when no inode and
 * mtime were recorded (small files).
 */
export const fileRecordSchema = z.object({
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[a-f0-9]{64}$/),
  mtimeMs: z.number().optional(),
  ino: z.number().optional(),
});

export type FileRecord = z.infer<typeof fileRecordSchema>;

/** Size and sha256 of `file`; with `stat`, also its inode and mtime so later checks can skip the hash. */
export async function recordFile(file: string, opts: { stat?: boolean } = {}): Promise<FileRecord> {
  const sha256 = await sha256File(file);
  const stat = await fs.promises.stat(file);
  return opts.stat ? { size: stat.size, sha256, mtimeMs: stat.mtimeMs, ino: stat.ino } : { size: stat.size, sha256 };
}

export type FileCheck = { ok: true; hashed: boolean } | { ok: false; reason: string };

/** Whether `file` still has the recorded bytes; the reason names the file and says what differs. */
export async function checkFile(
  file: string,
  expected: FileRecord,
  label = `${path.basename(file)} file`,
): Promise<FileCheck> {
  const stat = await fs.promises.stat(file).catch(() => undefined);
  if (!stat) return { ok: false, reason: `its ${label} is missing` };
  if (stat.size !== expected.size)
    return { ok: false, reason: `its ${label} has ${stat.size} bytes, ${expected.size} were saved (truncated?)` };
  if (expected.ino !== undefined && stat.ino === expected.ino && stat.mtimeMs === expected.mtimeMs)
    return { ok: true, hashed: false };
  if ((await sha256File(file)) !== expected.sha256)
    return { ok: false, reason: `its ${label} does not match its checksum (corrupted)` };
  return { ok: true, hashed: true };
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
