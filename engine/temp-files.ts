import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isProcessAlive } from './host/liveness';

/**
 * Every cache file is written under a temporary name and renamed into place when complete.
 * The temporary name carries the writer's pid, so any later process can tell the leftovers
 * of a writer that was killed (its pid is gone) from a write still in progress. This is the
 * one place that names temporary files and decides which are abandoned.
 */
const TEMP_NAME = /^\.tmp-(\d+)-/;

/** A fresh temporary path in `dir` for this process: `.tmp-<pid>-<random><suffix>`. */
export function tempPath(dir: string, suffix = ''): string {
  return path.join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}${suffix}`);
}

export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/**
 * Removes the temporary files and directories in `dir` whose writer no longer runs, and
 * returns their paths. A pid reused by another process keeps its leftovers until that one
 * ends too: never removing a live writer's file matters more than removing early.
 */
export function reapDeadWriters(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(TEMP_NAME.exec(name)?.[1]);
    if (!pid || pid === process.pid || isProcessAlive(pid)) continue;
    fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    removed.push(path.join(dir, name));
  }
  return removed;
}

/** Writes `data` to `file` through a temporary name in its directory, so `file` is never partial. */
export async function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  const temp = tempPath(path.dirname(file));
  try {
    await fsp.writeFile(temp, data, { mode });
    await fsp.rename(temp, file);
  } catch (err) {
    await fsp.rm(temp, { force: true });
    throw err;
  }
}
