import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { MicrovmError, shown } from '../errors';
import type { ContentStore } from '../image/content-store';
import { normalizeEntryPath } from '../rootfs/entry-path';
import { readTar, TarFormatError } from '../tar/reader';
import { fromBytePath } from '../tar/types';
import type { Descriptor } from '../image/schemas';

/**
 * A feature's folder as plain data: from its OCI layer (a tar, gzip or not) or from a local
 * folder. Features are small, so they are read into memory with caps, and written to the
 * build context only as regular files, folders and (last) symbolic links: no entry can make
 * the host write outside the context folder (`..` is refused, links are created after every
 * file, so no file is written through one).
 */
export interface FeatureFile {
  /** '/'-separated, relative to the feature folder. */
  rel: string;
  type: 'file' | 'dir' | 'symlink';
  data?: Buffer;
  linkpath?: string;
}

const MAX_FEATURE_BYTES = 256 * 1024 * 1024;
const MAX_FEATURE_ENTRIES = 20_000;
export const FEATURE_JSON = 'devcontainer-feature.json';

/** The files of an OCI feature's layer, read from the content store (the bytes are checked against the digest again). */
export async function layerFiles(userId: string, store: ContentStore, layer: Descriptor): Promise<FeatureFile[]> {
  const bytes = await store.readDocument(layer.digest, layer.size);
  let tar: Buffer;
  try {
    tar = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes, { maxOutputLength: MAX_FEATURE_BYTES }) : bytes;
  } catch (err) {
    throw invalid(
      userId,
      `its layer ${layer.digest} is neither a tar nor a gzip tar within ${MAX_FEATURE_BYTES} bytes (${(err as Error).message})`,
    );
  }
  const files: FeatureFile[] = [];
  try {
    for await (const entry of readTar(once(tar), {
      maxPaxHeaderBytes: 1024 * 1024,
      maxPathBytes: 4096,
      maxEntries: MAX_FEATURE_ENTRIES,
    })) {
      const parts = normalizeEntryPath(entry.header.path);
      if (parts === null)
        throw invalid(
          userId,
          `its layer has the entry ${shown(fromBytePath(entry.header.path))}, which climbs out of the feature folder`,
        );
      if (parts.length === 0) continue;
      const rel = fromBytePath(parts.join('/'));
      const { type } = entry.header;
      if (type === 'dir') files.push({ rel, type });
      else if (type === 'symlink') files.push({ rel, type, linkpath: fromBytePath(entry.header.linkpath) });
      else if (type === 'file') files.push({ rel, type, data: await collect(entry.body()) });
      else
        throw invalid(
          userId,
          `its layer has ${shown(rel)}, a ${type} entry; a feature holds files, folders and symbolic links only`,
        );
    }
  } catch (err) {
    if (err instanceof TarFormatError) throw invalid(userId, `its layer is not a valid tar: ${err.message}`);
    throw err;
  }
  return files;
}

/** The files of a local feature folder; symbolic links are kept as links, never followed. */
export async function localFiles(userId: string, dir: string): Promise<FeatureFile[]> {
  const files: FeatureFile[] = [];
  let bytes = 0;
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await fsp.readdir(path.join(dir, rel))).sort()) {
      const child = rel ? `${rel}/${name}` : name;
      const abs = path.join(dir, child);
      const stat = await fsp.lstat(abs);
      if (files.length >= MAX_FEATURE_ENTRIES)
        throw invalid(userId, `its folder has more than ${MAX_FEATURE_ENTRIES} entries`);
      if (stat.isDirectory()) {
        files.push({ rel: child, type: 'dir' });
        await walk(child);
      } else if (stat.isSymbolicLink()) {
        files.push({ rel: child, type: 'symlink', linkpath: await fsp.readlink(abs) });
      } else if (stat.isFile()) {
        bytes += stat.size;
        if (bytes > MAX_FEATURE_BYTES) throw invalid(userId, `its folder holds more than ${MAX_FEATURE_BYTES} bytes`);
        files.push({ rel: child, type: 'file', data: await readNoFollow(abs) });
      }
    }
  };
  await walk('');
  return files;
}

/** The feature's devcontainer-feature.json text, from its files. */
export function featureJsonText(userId: string, files: readonly FeatureFile[]): string {
  const file = files.find((f) => f.rel === FEATURE_JSON && f.type === 'file');
  if (!file?.data) throw invalid(userId, `it has no ${FEATURE_JSON} at the top of its folder`);
  return file.data.toString('utf8');
}

/** Writes the files under `dir` (which must not exist yet): folders and files first, links last; files are 0755, as the reference CLI makes them. */
export async function writeFiles(dir: string, files: readonly FeatureFile[]): Promise<void> {
  await fsp.mkdir(dir, { recursive: false, mode: 0o755 });
  for (const file of files.filter((f) => f.type !== 'symlink')) {
    const target = path.join(dir, ...file.rel.split('/'));
    if (file.type === 'dir') {
      await fsp.mkdir(target, { recursive: true, mode: 0o755 });
      continue;
    }
    await fsp.mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
    await fsp.writeFile(target, file.data ?? Buffer.alloc(0), {
      mode: 0o755,
      flag: fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW,
    });
    await fsp.chmod(target, 0o755);
  }
  for (const file of files.filter((f) => f.type === 'symlink')) {
    const target = path.join(dir, ...file.rel.split('/'));
    await fsp.mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
    await fsp.symlink(file.linkpath ?? '', target);
  }
}

async function* once(buffer: Buffer): AsyncGenerator<Buffer> {
  yield buffer;
}

async function collect(body: AsyncGenerator<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function readNoFollow(file: string): Promise<Buffer> {
  const handle = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

function invalid(userId: string, problem: string): MicrovmError {
  return new MicrovmError(
    'E_FEATURE_INVALID',
    `feature ${shown(userId)}: ${problem}; the feature is malformed: check the reference, or ask its publisher`,
  );
}
