import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The dependency lockfiles at a folder's top: what "new content" means for a workspace.
 * updateContentCommand (the hook that installs dependencies) runs again when their digest
 * changed since it last succeeded, on a booted VM and on a resumed one alike (a suspended VM
 * is resumed over a changed lockfile: its disks still match its memory, and the folder is live).
 */

/** The JavaScript package managers' lockfiles: a change means node_modules changed (the type projection refreshes). */
export const NODE_LOCKFILES: readonly string[] = [
  'package-lock.json',
  'npm-shrinkwrap.json',
  'yarn.lock',
  'pnpm-lock.yaml',
  'bun.lock',
  'bun.lockb',
];

/** The package managers' lockfiles of every language: a change runs updateContentCommand again. */
export const LOCKFILES: readonly string[] = [
  ...NODE_LOCKFILES,
  'requirements.txt',
  'poetry.lock',
  'Pipfile.lock',
  'uv.lock',
  'Cargo.lock',
  'go.sum',
  'Gemfile.lock',
  'composer.lock',
  'mix.lock',
];

/** A lockfile may be large; one bigger than this counts by its size and mtime instead of its bytes. */
const MAX_HASHED_BYTES = 64 * 1024 * 1024;

/** A lockfile that is not there, in the digest. */
const ABSENT = 'absent';

/** sha256 over each lockfile's name and content (a missing one counts as absent). */
export function lockfilesDigest(folder: string): string {
  return digestOf(lockfileStamps(folder));
}

/** The digest of `lockfileStamps`: what the record keeps as `contentDigest`. */
export function digestOf(stamps: Readonly<Record<string, string>>): string {
  const hash = createHash('sha256');
  for (const name of LOCKFILES) {
    hash.update(`${name}\0`);
    hash.update(stamps[name] ?? ABSENT);
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 32);
}

/** Each lockfile at the folder's top, by name: the sha256 of its content (of its size and mtime when it is big). */
export function lockfileStamps(folder: string): Record<string, string> {
  const stamps: Record<string, string> = {};
  for (const name of LOCKFILES) {
    const stamp = fileStamp(path.join(folder, name));
    if (stamp !== ABSENT) stamps[name] = stamp;
  }
  return stamps;
}

/** The lockfiles added, removed or changed from `before` to `now`, in LOCKFILES order. */
export function changedLockfiles(
  before: Readonly<Record<string, string>>,
  now: Readonly<Record<string, string>>,
): string[] {
  return LOCKFILES.filter((name) => before[name] !== now[name]);
}

function fileStamp(file: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(file);
  } catch {
    return ABSENT;
  }
  if (!stat.isFile()) return `not a file ${stat.mode}`;
  if (stat.size > MAX_HASHED_BYTES) return `big ${stat.size} ${stat.mtimeMs}`;
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Why updateContentCommand runs again, naming the lockfiles that changed (when the record kept their stamps). */
export function newContentNote(
  before: Readonly<Record<string, string>> | undefined,
  now: Readonly<Record<string, string>>,
): string {
  const changed = before ? changedLockfiles(before, now) : [];
  return changed.length > 0
    ? `updateContentCommand runs again: ${changed.join(', ')} changed since it last succeeded`
    : 'a lockfile changed since updateContentCommand last ran: it runs again';
}
