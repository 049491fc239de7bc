import { createHash } from 'node:crypto';
import type * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { homePaths } from '../paths';
import { writeFileAtomic } from '../temp-files';

/**
 * sha256 of context files, remembered per context folder by inode, size, mtime and ctime (in
 * nanoseconds), so reopening an unchanged folder hashes nothing: the cache lookup stays a few
 * milliseconds. ctime cannot be set back by a program, so a rewrite that restores the mtime
 * is still seen.
 */
export class HashCache {
  private readonly seen = new Map<string, Row>();
  private changed = false;

  private constructor(
    private readonly file: string,
    private readonly known: Map<string, Row>,
  ) {}

  static async open(contextRoot: string): Promise<HashCache> {
    const file = cacheFile(contextRoot);
    const known = new Map<string, Row>();
    try {
      const stat = await fsp.stat(file);
      if (stat.size <= MAX_CACHE_BYTES) {
        const parsed = cacheSchema.safeParse(JSON.parse(await fsp.readFile(file, 'utf8')));
        if (parsed.success && parsed.data.root === contextRoot)
          for (const [rel, row] of Object.entries(parsed.data.files)) known.set(rel, row);
      }
    } catch {
      // No cache yet, or an unreadable one: every file is hashed.
    }
    return new HashCache(file, known);
  }

  /** Drops what is remembered of a context folder that is gone (a temporary one, such as engine/features' contexts). */
  static async forget(contextRoot: string): Promise<void> {
    await fsp.rm(cacheFile(contextRoot), { force: true });
  }

  /** The file's sha256 from the cache when its identity is unchanged, else from `compute`. */
  async hash(rel: string, stat: fs.BigIntStats, compute: () => Promise<string>): Promise<string> {
    const key: Row = [String(stat.ino), String(stat.size), String(stat.mtimeNs), String(stat.ctimeNs), ''];
    const cached = this.known.get(rel);
    if (cached && cached.slice(0, 4).every((v, i) => v === key[i])) {
      this.seen.set(rel, cached);
      return cached[4];
    }
    key[4] = await compute();
    this.seen.set(rel, key);
    this.changed = true;
    return key[4];
  }

  /** Keeps what this scan saw (files gone since are forgotten). */
  async save(contextRoot: string): Promise<void> {
    if (!this.changed && this.seen.size === this.known.size) return;
    await fsp.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await writeFileAtomic(
      this.file,
      JSON.stringify({ version: 1, root: contextRoot, files: Object.fromEntries(this.seen) }),
      0o600,
    );
  }
}

function cacheFile(contextRoot: string): string {
  return path.join(
    homePaths.builds(),
    'contexts',
    `${createHash('sha256').update(contextRoot).digest('hex').slice(0, 32)}.json`,
  );
}

/** [inode, size, mtimeNs, ctimeNs, sha256 hex], as decimal strings. */
type Row = [string, string, string, string, string];

const MAX_CACHE_BYTES = 256 * 1024 * 1024;
const cacheSchema = z.object({
  version: z.literal(1),
  root: z.string(),
  files: z.record(z.tuple([z.string(), z.string(), z.string(), z.string(), z.string().regex(/^[a-f0-9]{64}$/)])),
});
