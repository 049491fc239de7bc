import { createHash, type Hash } from 'node:crypto';
import * as path from 'node:path';
import { MicrovmError, shown } from '../errors';

export type DigestAlgorithm = 'sha256' | 'sha512';

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
}

const DIGEST_PATTERN = /^(sha256):([a-f0-9]{64})$|^(sha512):([a-f0-9]{128})$/;

/**
 * Checks a digest's syntax. This runs before a digest is ever used to build a path or URL,
 * so values such as `sha256:../../etc/x`, uppercase hex or `md5:...` never reach the filesystem.
 */
export function parseDigest(value: unknown, where: string): ParsedDigest {
  const match = typeof value === 'string' ? DIGEST_PATTERN.exec(value) : null;
  if (!match) {
    throw new MicrovmError(
      'E_IMAGE_DIGEST',
      `invalid digest ${shown(value)} in ${where}: expected sha256:<64 lowercase hex> or ` +
        'sha512:<128 lowercase hex>; the image is malformed or was tampered with; re-export it',
    );
  }
  const [, , sha256Hex, , sha512Hex = ''] = match;
  return sha256Hex ? { algorithm: 'sha256', hex: sha256Hex } : { algorithm: 'sha512', hex: sha512Hex };
}

/** The blob file of a validated digest inside an OCI layout directory. */
export function blobPath(layoutDir: string, digest: ParsedDigest): string {
  return path.join(layoutDir, 'blobs', digest.algorithm, digest.hex);
}

export function createDigestHash(digest: ParsedDigest): Hash {
  return createHash(digest.algorithm);
}

/** Throws E_IMAGE_DIGEST unless `actualHex` matches. */
export function assertDigestMatches(expected: ParsedDigest, actualHex: string, file: string): void {
  if (actualHex !== expected.hex) {
    throw new MicrovmError(
      'E_IMAGE_DIGEST',
      `digest mismatch for ${file}: expected ${expected.algorithm}:${expected.hex}, got ` +
        `${expected.algorithm}:${actualHex}; the blob is corrupt or was tampered with; re-export or re-pull the image`,
    );
  }
}
