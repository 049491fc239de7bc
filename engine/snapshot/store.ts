import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Machine, RestoreSource } from '../vm/machine';
import { pidExists } from '../vm/state-dir';
import { inputMismatch, SNAPSHOT_FORMAT, SnapshotImage, SnapshotInputs, SnapshotMeta, snapshotMetaSchema } from './meta';

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
    const parsed = snapshotMetaSchema.safeParse(JSON.parse(await fs.promises.readFile(path.join(dir, SNAPSHOT_FILES.meta), 'utf8')));
    if (!parsed.success) return { ok: false, reason: `its ${SNAPSHOT_FILES.meta} is not a format-${SNAPSHOT_FORMAT} snapshot description` };
    meta = parsed.data;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    return { ok: false, reason: missing ? 'there is no snapshot yet' : `its ${SNAPSHOT_FILES.meta} is unreadable (${(err as Error).message})` };
  }
  const mismatch = inputs && inputMismatch(meta.inputs, inputs);
  if (mismatch) return { ok: false, reason: mismatch };
  const stateFile = path.join(dir, SNAPSHOT_FILES.state);
  const stateProblem = await checkFile(stateFile, meta.files.state);
  if (stateProblem) return { ok: false, reason: stateProblem };
  if (meta.kind === 'template') {
    const memFile = path.join(dir, SNAPSHOT_FILES.mem);
    if (!meta.files.mem) return { ok: false, reason: 'its memory file is not recorded' };
    const memProblem = await checkMemFile(memFile, meta.files.mem);
    if (memProblem) return { ok: false, reason: memProblem };
    return { ok: true, source: { kind: 'template', stateFile, memFile }, meta };
  }
  return { ok: true, source: { kind: 'full', stateFile }, meta };
}

/**
 * Saves `machine` (left paused; the caller resumes it) as a snapshot in `dir`, written to a
 * temporary sibling and renamed, so a killed save never leaves a snapshot that looks complete.
 */
export async function writeSnapshot(
  machine: Machine,
  dir: string,
  inputs: SnapshotInputs | Record<string, string | number>,
  image: SnapshotImage,
): Promise<SnapshotMeta> {
  const parent = path.dirname(dir);
  await fs.promises.mkdir(parent, { recursive: true, mode: 0o700 });
  reapAbandonedTemps(parent);
  const temp = path.join(parent, `${TEMP_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  await fs.promises.mkdir(temp, { mode: 0o700 });
  try {
    const kind = await machine.saveState(path.join(temp, SNAPSHOT_FILES.state));
    const files: SnapshotMeta['files'] = { state: await recordFile(path.join(temp, SNAPSHOT_FILES.state)) };
    if (kind === 'template') {
      const memFile = path.join(temp, SNAPSHOT_FILES.mem);
      await fs.promises.copyFile(machine.memoryFile as string, memFile);
      await fs.promises.chmod(memFile, 0o600);
      const stat = await fs.promises.stat(memFile);
      files.mem = { ...(await recordFile(memFile)), mtimeMs: stat.mtimeMs, ino: stat.ino };
    }
    const meta: SnapshotMeta = { format: SNAPSHOT_FORMAT, kind, createdAt: new Date().toISOString(), inputs: { ...inputs }, image, files };
    await fs.promises.writeFile(path.join(temp, SNAPSHOT_FILES.meta), JSON.stringify(meta, null, 2), { mode: 0o600 });
    await fs.promises.rm(dir, { recursive: true, force: true });
    await fs.promises.rename(temp, dir);
    return meta;
  } catch (err) {
    await fs.promises.rm(temp, { recursive: true, force: true });
    throw err;
  }
}

const TEMP_PREFIX = '.tmp-';

/** Removes half-written snapshots whose writer died (killed mid-save): their pid is gone. */
export function reapAbandonedTemps(parent: string): string[] {
  const removed: string[] = [];
  for (const name of fs.readdirSync(parent)) {
    const pid = Number(/^\.tmp-(\d+)-/.exec(name)?.[1]);
    if (!pid || pidExists(pid)) continue;
    fs.rmSync(path.join(parent, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

async function checkFile(file: string, expected: { size: number; sha256: string }): Promise<string | undefined> {
  const name = path.basename(file);
  const stat = await fs.promises.stat(file).catch(() => undefined);
  if (!stat) return `its ${name} file is missing`;
  if (stat.size !== expected.size) return `its ${name} file has ${stat.size} bytes, ${expected.size} were saved (truncated?)`;
  if ((await sha256File(file)) !== expected.sha256) return `its ${name} file does not match its checksum (corrupted)`;
  return undefined;
}

async function checkMemFile(file: string, expected: { size: number; sha256: string; mtimeMs: number; ino: number }): Promise<string | undefined> {
  const stat = await fs.promises.stat(file).catch(() => undefined);
  if (stat && stat.size === expected.size && stat.mtimeMs === expected.mtimeMs && stat.ino === expected.ino) return undefined;
  return checkFile(file, expected);
}

async function recordFile(file: string): Promise<{ size: number; sha256: string }> {
  return { size: (await fs.promises.stat(file)).size, sha256: await sha256File(file) };
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
