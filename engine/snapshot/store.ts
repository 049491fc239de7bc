import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkFile, recordFile } from '../file-record';
import { reapDeadWriters, tempPath } from '../temp-files';
import type { BackendVm, RestoreSource } from '../backend/types';
import {
  inputMismatch,
  SNAPSHOT_FORMAT,
  SnapshotImage,
  SnapshotInputs,
  SnapshotMeta,
  snapshotMetaSchema,
} from './meta';

/** Every file of a snapshot directory, named once. */
export const SNAPSHOT_FILES = { meta: 'meta.json', state: 'state', mem: 'mem' } as const;

export type LoadResult = { ok: true; source: RestoreSource; meta: SnapshotMeta } | { ok: false; reason: string };

/**
 * Loads the snapshot in `dir` if it was baked from exactly `inputs` and its files are intact.
 * The state file is hashed on every load; the memory file is hashed again only when its
 * size, inode or mtime differ from the bake's (any write to it changes them).
 */
export async function loadSnapshot(dir: string, inputs: SnapshotInputs | undefined): Promise<LoadResult> {
  let meta: SnapshotMeta;
  try {
    const parsed = snapshotMetaSchema.safeParse(
      JSON.parse(await fs.promises.readFile(path.join(dir, SNAPSHOT_FILES.meta), 'utf8')),
    );
    if (!parsed.success)
      return {
        ok: false,
        reason: `its ${SNAPSHOT_FILES.meta} is not a format-${SNAPSHOT_FORMAT} snapshot description`,
      };
    meta = parsed.data;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    return {
      ok: false,
      reason: missing
        ? 'there is no snapshot yet'
        : `its ${SNAPSHOT_FILES.meta} is unreadable (${(err as Error).message})`,
    };
  }
  const mismatch = inputs && inputMismatch(meta.inputs, inputs);
  if (mismatch) return { ok: false, reason: mismatch };
  const stateFile = path.join(dir, SNAPSHOT_FILES.state);
  const stateCheck = await checkFile(stateFile, meta.files.state);
  if (!stateCheck.ok) return stateCheck;
  if (meta.kind === 'template') {
    const memFile = path.join(dir, SNAPSHOT_FILES.mem);
    if (!meta.files.mem) return { ok: false, reason: 'its memory file is not recorded' };
    const memCheck = await checkFile(memFile, meta.files.mem);
    if (!memCheck.ok) return memCheck;
    return { ok: true, source: { kind: 'template', stateFile, memFile }, meta };
  }
  return { ok: true, source: { kind: 'full', stateFile }, meta };
}

/**
 * Saves `machine` (left paused; the caller resumes it) as a snapshot in `dir`, written to a
 * temporary sibling and renamed, so a killed save never leaves a snapshot that looks complete.
 */
export async function writeSnapshot(
  machine: BackendVm,
  dir: string,
  inputs: SnapshotInputs | Record<string, string | number>,
  image: SnapshotImage,
): Promise<SnapshotMeta> {
  const parent = path.dirname(dir);
  await fs.promises.mkdir(parent, { recursive: true, mode: 0o700 });
  reapDeadWriters(parent);
  const temp = tempPath(parent);
  await fs.promises.mkdir(temp, { mode: 0o700 });
  try {
    const kind = await machine.saveState(path.join(temp, SNAPSHOT_FILES.state));
    const files: SnapshotMeta['files'] = { state: await recordFile(path.join(temp, SNAPSHOT_FILES.state)) };
    if (kind === 'template') {
      const memFile = path.join(temp, SNAPSHOT_FILES.mem);
      await fs.promises.copyFile(machine.memoryFile as string, memFile);
      await fs.promises.chmod(memFile, 0o600);
      files.mem = await recordFile(memFile, { stat: true });
    }
    const meta: SnapshotMeta = {
      format: SNAPSHOT_FORMAT,
      kind,
      createdAt: new Date().toISOString(),
      inputs: { ...inputs },
      image,
      files,
    };
    await fs.promises.writeFile(path.join(temp, SNAPSHOT_FILES.meta), JSON.stringify(meta, null, 2), { mode: 0o600 });
    await fs.promises.rm(dir, { recursive: true, force: true });
    await fs.promises.rename(temp, dir);
    return meta;
  } catch (err) {
    await fs.promises.rm(temp, { recursive: true, force: true });
    throw err;
  }
}
