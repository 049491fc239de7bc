import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { MicrovmError } from '../errors';
import { homePaths } from '../paths';
import { reapDeadWriters, tempPath } from '../temp-files';
import { assertDigestMatches, createDigestHash, parseDigest, type ParsedDigest } from './digest';

export interface WriteBlobOptions {
  /** The digest the bytes must have; without it the digest is computed (docker save files). */
  digest?: string;
  /** The exact size the bytes must have, when known. */
  size?: number;
  /** Refuse more than this many bytes (checked as they arrive). */
  maxBytes: number;
  onBytes?: (bytes: number) => void;
  what: string;
}

/**
 * Blobs by digest under $MICROVM_HOME/store/blobs/<alg>/<hex>. Bytes are streamed into
 * tmp/, hashed on the way, and renamed into place only after size and digest match, so a
 * killed or tampered download never leaves anything under blobs/ that looks complete; the
 * partial file of a killed download is removed by the next start (reapAbandoned).
 */
export class ContentStore {
  constructor(readonly root: string = homePaths.store()) {}

  blobPath(digest: string | ParsedDigest): string {
    const parsed = typeof digest === 'string' ? parseDigest(digest, 'the content store') : digest;
    return path.join(this.root, 'blobs', parsed.algorithm, parsed.hex);
  }

  get tempDir(): string {
    return path.join(this.root, 'tmp');
  }

  async has(digest: string): Promise<boolean> {
    return (await fs.stat(this.blobPath(digest)).catch(() => null))?.isFile() ?? false;
  }

  /** Streams bytes into the store; returns the digest they were stored under. */
  async writeBlob(
    source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer>,
    opts: WriteBlobOptions,
  ): Promise<string> {
    const expected = opts.digest ? parseDigest(opts.digest, opts.what) : undefined;
    const hash = createDigestHash(expected ?? { algorithm: 'sha256', hex: '' });
    const temp = await this.tempFile();
    const handle = await fs.open(temp, 'wx', 0o644);
    let committed = false;
    try {
      let bytes = 0;
      for await (const chunk of source) {
        bytes += chunk.length;
        const limit = opts.size ?? opts.maxBytes;
        if (bytes > limit) throw tooLarge(opts.what, limit, opts.size !== undefined);
        hash.update(chunk);
        await handle.write(chunk);
        opts.onBytes?.(bytes);
      }
      if (opts.size !== undefined && bytes !== opts.size) {
        throw new MicrovmError(
          'E_IMAGE_DIGEST',
          `${opts.what} ended after ${bytes} of the ${opts.size} bytes its descriptor declares; pull again`,
        );
      }
      const hex = hash.digest('hex');
      if (expected) assertDigestMatches(expected, hex, opts.what);
      const digest = expected ? `${expected.algorithm}:${expected.hex}` : `sha256:${hex}`;
      await handle.sync();
      await handle.close();
      const final = this.blobPath(digest);
      await fs.mkdir(path.dirname(final), { recursive: true, mode: 0o755 });
      await fs.rename(temp, final);
      committed = true;
      return digest;
    } finally {
      if (!committed) {
        await handle.close().catch(() => undefined);
        await fs.rm(temp, { force: true });
      }
    }
  }

  /**
   * Reads a small blob (manifest, index, config) into one buffer and verifies its digest;
   * the caller parses exactly the bytes that were hashed.
   */
  async readDocument(digest: string, maxBytes: number): Promise<Buffer> {
    const parsed = parseDigest(digest, 'the content store');
    const file = this.blobPath(parsed);
    const handle = await fs.open(file, 'r').catch((err: Error) => {
      throw new MicrovmError(
        'E_IMAGE_NOT_CACHED',
        `blob ${digest} is not in the content store (${file}); pull the image again`,
        { cause: err },
      );
    });
    try {
      const buffer = Buffer.alloc(maxBytes + 1);
      let filled = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
        if (bytesRead === 0 || (filled += bytesRead) === buffer.length) break;
      }
      if (filled > maxBytes) throw tooLarge(file, maxBytes, false);
      const content = buffer.subarray(0, filled);
      assertDigestMatches(parsed, createDigestHash(parsed).update(content).digest('hex'), file);
      return Buffer.from(content);
    } finally {
      await handle.close();
    }
  }

  /** Every stored blob digest. */
  async listBlobs(): Promise<string[]> {
    const dir = path.join(this.root, 'blobs', 'sha256');
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  async removeBlob(digest: string): Promise<void> {
    await fs.rm(this.blobPath(digest), { force: true });
  }

  /** Removes the partial downloads and records of writers that were killed; returns their paths. */
  reapAbandoned(): string[] {
    return [...reapDeadWriters(this.tempDir), ...reapDeadWriters(path.join(this.root, 'refs'))];
  }

  private async tempFile(): Promise<string> {
    await fs.mkdir(this.tempDir, { recursive: true, mode: 0o700 }).catch((err: Error) => {
      throw new MicrovmError('E_STATE_DIR', `cannot create ${this.tempDir}: ${err.message}; check MICROVM_HOME`, {
        cause: err,
      });
    });
    return tempPath(this.tempDir, '.partial');
  }
}

function tooLarge(what: string, limit: number, declared: boolean): MicrovmError {
  return new MicrovmError(
    declared ? 'E_IMAGE_DIGEST' : 'E_IMAGE_TOO_LARGE',
    declared
      ? `${what} is larger than the ${limit} bytes its descriptor declares; the source is corrupt or hostile; nothing was stored`
      : `${what} exceeds the ${limit}-byte limit; the source is malformed or hostile; nothing was stored`,
  );
}
