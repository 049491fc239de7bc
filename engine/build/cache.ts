import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import type { ContentStore } from '../image/content-store';
import { readOciLayout } from '../image/oci-layout';
import { homePaths } from '../paths';
import { reapDeadWriters, tempPath } from '../temp-files';
import type { ImportedImage } from './result';
import type { BuiltImage } from './types';
import { hostPlatform } from '../image/platform';

/**
 * Build results by cache key under $MICROVM_HOME/builds/<key>/: an OCI image layout whose blobs
 * are hard links into the content store (no second copy), and build.json. The key hashes
 * every input of a build, so an unchanged reopen is a lookup that starts no VM.
 */
export interface BuildInputs {
  dockerfile: string;
  contextDigest: string;
  args: Record<string, string>;
  target: string | null;
  /** Each image the Dockerfile reads, with the manifest digest it resolved to. */
  bases: Array<{ ref: string; digest: string }>;
  builderDigest: string;
}

/** Bumped when the way results are built changes, so older results are not reused. */
const KEY_VERSION = 1;

export function cacheKey(inputs: BuildInputs): string {
  const args = Object.fromEntries(Object.entries(inputs.args).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const canonical = JSON.stringify({ v: KEY_VERSION, ...inputs, args });
  return createHash('sha256').update(canonical).digest('hex');
}

const recordSchema = z
  .object({
    version: z.literal(1),
    key: z.string().regex(/^[a-f0-9]{64}$/),
    digest: z.string(),
    builtAt: z.string(),
    durationMs: z.number(),
  })
  .passthrough();

const RECORD = 'build.json';

/** The result stored for `key`, when its layout is complete and its documents verify; else null. */
export async function lookupResult(key: string): Promise<BuiltImage | null> {
  const dir = path.join(homePaths.builds(), key);
  try {
    const record = recordSchema.parse(JSON.parse(await fsp.readFile(path.join(dir, RECORD), 'utf8')));
    const image = await readOciLayout(dir);
    if (record.key !== key || image.manifestDigest !== record.digest) return null;
    return { ref: `oci:${dir}`, digest: image.manifestDigest, cached: true, key };
  } catch {
    return null;
  }
}

/** Writes the result's layout (temp name, then rename) and returns it. */
export async function storeResult(
  key: string,
  image: ImportedImage,
  store: ContentStore,
  record: Record<string, unknown>,
): Promise<BuiltImage> {
  const root = homePaths.builds();
  await fsp.mkdir(root, { recursive: true, mode: 0o755 });
  reapDeadWriters(root);
  const temp = tempPath(root);
  const final = path.join(root, key);
  try {
    await fsp.mkdir(path.join(temp, 'blobs', 'sha256'), { recursive: true });
    for (const blob of [image.manifest, image.config, ...image.layers])
      linkOrCopy(store.blobPath(blob.digest), path.join(temp, 'blobs', 'sha256', blob.digest.slice('sha256:'.length)));
    await fsp.writeFile(path.join(temp, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      // The builder VM runs this host's architecture, so its result is for this host's platform.
      manifests: [{ ...image.manifest, platform: { architecture: hostPlatform().architecture, os: 'linux' } }],
    };
    await fsp.writeFile(path.join(temp, 'index.json'), JSON.stringify(index));
    await fsp.writeFile(
      path.join(temp, RECORD),
      `${JSON.stringify({ version: 1, key, digest: image.manifest.digest, ...record }, null, 1)}\n`,
    );
    await fsp.rm(final, { recursive: true, force: true });
    await fsp.rename(temp, final);
  } catch (err) {
    await fsp.rm(temp, { recursive: true, force: true });
    throw err;
  }
  return { ref: `oci:${final}`, digest: image.manifest.digest, cached: false, key };
}

/** A hard link shares the stored blob; across file systems it is copied. */
function linkOrCopy(from: string, to: string): void {
  try {
    fs.linkSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV' && (err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    fs.copyFileSync(from, to);
  }
}
