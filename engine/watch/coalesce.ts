import * as path from 'node:path';

/** What the host watcher reported for one path, relative to the share. */
export type ChangeKind = 'create' | 'update' | 'delete';

/** A pending change, merged with later ones for the same path until it is sent. */
export type PendingKind = 'MODIFY' | 'CREATE' | 'DELETE' | 'DIR_CHANGED';

/** Most paths kept between two sends: past it the pending set collapses to directories at once. */
export const MAX_PENDING = 20_000;

/**
 * Merges a new change into the pending set (insertion order is kept, so a delete and the
 * create of a rename travel in one batch, where the guest module pairs them by inode).
 * create+delete cancel out (the guest never saw the file); delete+create is a create (a
 * replaced file: the guest module tells the old inode's watchers it is gone).
 */
export function mergeChange(pending: Map<string, PendingKind>, rel: string, change: ChangeKind): void {
  const before = pending.get(rel);
  const next = change === 'create' ? 'CREATE' : change === 'delete' ? 'DELETE' : 'MODIFY';
  if (before === 'DIR_CHANGED') return;
  if (before === 'CREATE' && next === 'DELETE') {
    pending.delete(rel);
    return;
  }
  if (before === 'CREATE' && next === 'MODIFY') return;
  if (before === 'DELETE' && next === 'MODIFY') {
    pending.set(rel, 'CREATE');
    return;
  }
  pending.set(rel, next);
}

/**
 * Bounds a batch: at most `limit` events. Past it, every changed path is replaced by its
 * parent directory (DIR_CHANGED: "something in here changed, read it again"), one level up at
 * a time until the set fits; a directory that no longer exists (`exists` says) becomes the
 * DELETE of the top of its removed subtree. '' is the share itself.
 */
export function collapse(
  pending: Map<string, PendingKind>,
  limit: number,
  exists: (rel: string) => boolean,
): Map<string, PendingKind> {
  if (pending.size <= limit) return pending;
  let dirs = new Set<string>();
  for (const [rel, kind] of pending) dirs.add(kind === 'DIR_CHANGED' ? rel : parentOf(rel));
  while (dirs.size > limit) {
    const up = new Set<string>();
    for (const dir of dirs) up.add(dir === '' ? '' : parentOf(dir));
    dirs = up;
  }
  const out = new Map<string, PendingKind>();
  for (const dir of dirs) {
    if (dir === '' || exists(dir)) {
      out.set(dir, 'DIR_CHANGED');
      continue;
    }
    // A removed subtree (an `rm -rf`, a checkout that drops a directory): the delete of its top.
    let gone = dir;
    while (parentOf(gone) !== '' && !exists(parentOf(gone))) gone = parentOf(gone);
    out.set(gone, 'DELETE');
  }
  return out;
}

function parentOf(rel: string): string {
  const parent = path.posix.dirname(rel);
  return parent === '.' ? '' : parent;
}

/**
 * The share-relative path of a host path the watcher reported, or undefined when it is not
 * one to relay: outside the share, inside a path a volume covers (the guest sees the volume,
 * not the host's copy), inside a `.git` directory (object and index churn that guest tools do
 * not watch), or too long for the guest's PATH_MAX.
 */
export function relativeToShare(hostRoot: string, hostPath: string, covers: readonly string[]): string | undefined {
  const rel = path.relative(hostRoot, hostPath);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel) || rel.includes('\0')) return undefined;
  const posix = rel.split(path.sep).join('/');
  if (posix.split('/').includes('.git')) return undefined;
  if (covers.some((c) => posix === c || posix.startsWith(`${c}/`))) return undefined;
  if (Buffer.byteLength(posix) >= 4096) return undefined;
  return posix;
}
