import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { MicrovmError } from '../errors';
import { normalizeEntryPath } from '../rootfs/entry-path';
import { DEFAULT_TAR_LIMITS, readTar, TarFormatError } from '../tar/reader';
import { fromBytePath } from '../tar/types';
import type { ContentStore } from './content-store';
import { parseDigest } from './digest';
import { MAX_JSON_DOCUMENT_BYTES } from './types';

/** What streaming an archive left: its blobs are in the store; names map to digests. */
export interface ArchiveContents {
  /** Archive path (normalised, no leading ./) -> digest of the stored file. */
  files: Map<string, string>;
  /** Small JSON files kept in memory as well, by archive path. */
  documents: Map<string, Buffer>;
}

const DOCUMENT_NAMES = new Set(['index.json', 'oci-layout', 'manifest.json']);
const BLOB_PATH = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/;
const MAX_LINK_HOPS = 8;

/**
 * Streams an OCI archive or a `docker save` tarball (plain or gzip) into the content store.
 * Nothing is extracted: every regular file is hashed into the store (a `blobs/ALG/HEX` file
 * must match its name), and symlinks and hardlinks are only resolved as names inside the
 * archive, never on the host filesystem.
 */
export async function importArchive(file: string, store: ContentStore, maxFileBytes: number): Promise<ArchiveContents> {
  const files = new Map<string, string>();
  const documents = new Map<string, Buffer>();
  const links = new Map<string, string>();
  try {
    for await (const { header, body } of readTar(await openArchive(file), DEFAULT_TAR_LIMITS)) {
      const parts = normalizeEntryPath(header.path);
      if (!parts) throw invalid(file, `entry "${fromBytePath(header.path)}" has a ".." component`);
      const name = parts.join('/');
      if (header.type === 'symlink') links.set(name, joinLink(parts, header.linkpath));
      else if (header.type === 'hardlink') links.set(name, (normalizeEntryPath(header.linkpath) ?? ['..']).join('/'));
      else if (header.type === 'file') {
        const blob = BLOB_PATH.exec(name);
        if (blob) parseDigest(`${blob[1]}:${blob[2]}`, `${file}: ${name}`);
        const isDocument =
          DOCUMENT_NAMES.has(name) || (name.endsWith('.json') && header.size <= MAX_JSON_DOCUMENT_BYTES);
        const chunks: Buffer[] = [];
        const source = isDocument ? keep(body(), chunks) : body();
        const digest = await store.writeBlob(source, {
          digest: blob ? `${blob[1]}:${blob[2]}` : undefined,
          size: header.size,
          maxBytes: maxFileBytes,
          what: `${name} in ${file}`,
        });
        files.set(name, digest);
        if (isDocument) documents.set(name, Buffer.concat(chunks));
      }
    }
  } catch (err) {
    if (err instanceof TarFormatError) throw invalid(file, err.message);
    throw err;
  }
  for (const [name, target] of links) {
    const digest = followLinks(target, links, files);
    if (digest) files.set(name, digest);
  }
  return { files, documents };
}

async function openArchive(file: string): Promise<AsyncIterable<Buffer>> {
  const handle = await fs.open(file, 'r').catch((err: Error) => {
    throw new MicrovmError('E_IMAGE_NOT_FOUND', `cannot open the image archive ${file}: ${err.message}`, {
      cause: err,
    });
  });
  const magic = Buffer.alloc(2);
  await handle.read(magic, 0, 2, 0).finally(() => handle.close());
  const stream = createReadStream(file, { highWaterMark: 256 * 1024 });
  return magic[0] === 0x1f && magic[1] === 0x8b ? stream.pipe(createGunzip()) : stream;
}

async function* keep(source: AsyncGenerator<Buffer>, into: Buffer[]): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    into.push(Buffer.from(chunk));
    yield chunk;
  }
}

/** A symlink target as an archive path: relative to the link's directory; null when it leaves the archive. */
function joinLink(linkParts: string[], target: string): string {
  const base = target.startsWith('/') ? [] : linkParts.slice(0, -1);
  const parts = [...base];
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) return '\0outside';
      parts.pop();
    } else parts.push(part);
  }
  return parts.join('/');
}

function followLinks(target: string, links: Map<string, string>, files: Map<string, string>): string | undefined {
  let current = target;
  for (let hop = 0; hop < MAX_LINK_HOPS; hop++) {
    const digest = files.get(current);
    if (digest) return digest;
    const next = links.get(current);
    if (next === undefined) return undefined;
    current = next;
  }
  return undefined;
}

export function invalid(file: string, problem: string): MicrovmError {
  return new MicrovmError(
    'E_IMAGE_INVALID',
    `${file} is not a usable image archive: ${problem}; re-export it with \`docker save\` or \`skopeo copy ... oci-archive:FILE\``,
  );
}
