import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../temp-files';
import { parseDigest } from './digest';
import type { ContentStore } from './content-store';
import { formatPlatform, hostPlatform, parsePlatform, type Platform } from './platform';

/** What a pull or an archive import left behind: which manifest a reference resolved to. */
export interface ImageRecord {
  ref: string;
  /** The platform manifest chosen for this host. */
  manifest: { mediaType: string; digest: string; size: number };
  source: 'registry' | 'oci-archive' | 'docker-archive';
  storedAt: string;
  /** The platform it was pulled for (`linux/arm64`); records written before platforms existed lack it (this host's). */
  platform?: string;
}

const recordSchema = z
  .object({
    ref: z.string().max(4096),
    manifest: z
      .object({
        mediaType: z.string().max(256),
        digest: z.string(),
        size: z
          .number()
          .int()
          .min(0)
          .max(64 * 1024 * 1024),
      })
      .strict(),
    source: z.enum(['registry', 'oci-archive', 'docker-archive']),
    storedAt: z.string().max(64),
    platform: z
      .string()
      .max(64)
      .regex(/^[a-z0-9_.-]+(\/[a-z0-9_.-]+){1,2}$/)
      .optional(),
  })
  .strict();

const MAX_RECORD_BYTES = 64 * 1024;

function recordsDir(store: ContentStore): string {
  return path.join(store.root, 'refs');
}

/**
 * One file per reference and platform, so that pulls of `x:1` for two platforms never answer
 * for each other. This host's platform keeps the name records had before platforms existed.
 */
function recordPath(store: ContentStore, ref: string, platform: string): string {
  const key = platform === formatPlatform(hostPlatform()) ? ref : `${ref}\n${platform}`;
  return path.join(recordsDir(store), `${createHash('sha256').update(key).digest('hex')}.json`);
}

/** The platform a record is for: the one it names, else this host's (it was written before platforms existed). */
export function recordPlatform(record: ImageRecord): Platform {
  return record.platform ? parsePlatform(record.platform) : hostPlatform();
}

export async function writeRecord(store: ContentStore, record: ImageRecord & { platform: string }): Promise<void> {
  const file = recordPath(store, record.ref, record.platform);
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  await writeFileAtomic(file, JSON.stringify(record) + '\n', 0o644);
}

/** The record for `ref` on `platform`, or null when there is none or it is unreadable (then it is re-pulled). */
export async function readRecord(store: ContentStore, ref: string, platform: Platform): Promise<ImageRecord | null> {
  const wanted = formatPlatform(platform);
  const record = await parseRecordFile(recordPath(store, ref, wanted));
  return record && formatPlatform(recordPlatform(record)) === wanted ? record : null;
}

export async function listRecords(store: ContentStore): Promise<ImageRecord[]> {
  const names = await fs.readdir(recordsDir(store)).catch(() => [] as string[]);
  const records = await Promise.all(
    names.filter((n) => /^[a-f0-9]{64}\.json$/.test(n)).map((n) => parseRecordFile(path.join(recordsDir(store), n))),
  );
  return records.filter((r): r is ImageRecord => r !== null).sort((a, b) => a.ref.localeCompare(b.ref));
}

async function parseRecordFile(file: string): Promise<ImageRecord | null> {
  const stat = await fs.stat(file).catch(() => null);
  if (!stat?.isFile() || stat.size > MAX_RECORD_BYTES) return null;
  try {
    const record = recordSchema.parse(JSON.parse(await fs.readFile(file, 'utf8')));
    parseDigest(record.manifest.digest, file);
    return record;
  } catch {
    return null;
  }
}
