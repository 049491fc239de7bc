import * as fs from 'node:fs';
import * as path from 'node:path';
import { MicrovmError } from '../errors';
import { homePaths } from '../paths';
import { archiveImage } from './archive-image';
import type { ContentStore } from './content-store';
import { readRecord } from './image-records';
import { readOciLayout } from './oci-layout';
import { hostPlatform, type Platform } from './platform';
import { parseReference, type ImageReference } from './reference';
import type { RegistryMirrors } from './registry/mirrors';
import { pullImage, type PullProgress } from './registry/pull';
import { resolvedFromStore } from './stored-image';
import type { ResolvedImage } from './types';

export type PullPolicy = 'always' | 'missing' | 'never';

export interface SourceOptions {
  pullPolicy: PullPolicy;
  maxLayerBytes: number;
  store: ContentStore;
  onPull?: (event: PullProgress) => void;
  /** Mirrors tried before a registry (default: MICROVM_REGISTRY_MIRRORS). */
  mirrors?: RegistryMirrors;
  /** Aborts a pull (engine/image/registry/pull.ts). */
  signal?: AbortSignal;
  /** Which platform's manifest an image index resolves to (default: this host's). */
  platform?: Platform;
}

/**
 * Turns a `ref` into a resolved image: nothing = the embedded default image; a path (or an
 * `oci:`, `oci-archive:` or `docker-archive:` prefix) = a local OCI layout directory or an
 * archive; anything else = a registry reference, taken from the store when the pull policy
 * allows and pulled otherwise.
 */
export async function resolveSource(ref: string | undefined, opts: SourceOptions): Promise<ResolvedImage> {
  const { platform } = opts;
  if (ref === undefined) return readDefaultImage(platform);
  const local = localPath(ref);
  if (local) {
    const stat = fs.statSync(local, { throwIfNoEntry: false });
    if (stat?.isDirectory()) return readOciLayout(local, platform);
    if (stat?.isFile())
      return archiveImage(local, opts.store, opts.maxLayerBytes, opts.pullPolicy !== 'always', platform);
    throw new MicrovmError(
      'E_IMAGE_NOT_FOUND',
      `image ${JSON.stringify(ref)}: ${local} does not exist; give an OCI layout directory, an OCI archive or a docker save tarball`,
    );
  }
  const reference = parseReference(ref.replace(/^docker:\/\//, ''));
  if (opts.pullPolicy !== 'always') {
    const cached = await fromStore(reference, opts.store, platform);
    if (cached) return cached;
    if (opts.pullPolicy === 'never') {
      throw new MicrovmError(
        'E_IMAGE_NOT_CACHED',
        `image ${reference.canonical} is not in the local store and pullPolicy is 'never'; run \`microvm pull ${ref}\` or use pullPolicy 'missing'`,
      );
    }
  }
  return pullImage(reference, opts.store, {
    maxBlobBytes: opts.maxLayerBytes,
    onProgress: opts.onPull,
    mirrors: opts.mirrors,
    signal: opts.signal,
    platform,
  });
}

/** The stored image for a reference on `platform`, or null when any part of it is missing or unreadable. */
export async function fromStore(
  reference: ImageReference,
  store: ContentStore,
  platform?: Platform,
): Promise<ResolvedImage | null> {
  const record = await readRecord(store, reference.canonical, platform ?? hostPlatform());
  if (!record) return null;
  try {
    return await resolvedFromStore(store, reference.canonical, record.manifest, platform);
  } catch (err) {
    if (err instanceof MicrovmError && (err.code === 'E_IMAGE_NOT_CACHED' || err.code === 'E_IMAGE_DIGEST'))
      return null;
    throw err;
  }
}

/** Whether a reference names something on this machine (a layout or an archive) rather than a registry image. */
export function isLocalImageRef(ref: string): boolean {
  return localPath(ref) !== null;
}

function localPath(ref: string): string | null {
  const prefixed = /^(oci|oci-archive|docker-archive):(.+)$/.exec(ref);
  const candidate = prefixed?.[2] ?? ref;
  const looksLikePath = /^(\/|\.\/|\.\.\/|~\/)/.test(candidate) || candidate === '.' || candidate === '..';
  if (!prefixed && !looksLikePath) return null;
  return path.resolve(candidate.replace(/^~(?=\/)/, process.env.HOME ?? '~'));
}

/** The embedded default image; setup wrote it, so setup is what repairs it. */
async function readDefaultImage(platform: Platform | undefined): Promise<ResolvedImage> {
  const dir = defaultLayoutDir();
  try {
    return await readOciLayout(dir, platform);
  } catch (err) {
    if (!(err instanceof MicrovmError) || !err.code.startsWith('E_IMAGE_')) throw err;
    throw new MicrovmError(
      'E_SETUP_MISSING',
      `the embedded default image in ${dir} is damaged (${err.message}); run \`npm run setup\` to rebuild it`,
      { cause: err },
    );
  }
}

function defaultLayoutDir(): string {
  const dir = homePaths.defaultImage();
  if (!fs.existsSync(path.join(dir, 'index.json'))) {
    throw new MicrovmError(
      'E_SETUP_MISSING',
      `the embedded default image is not built (${dir}); run \`npm run setup\``,
    );
  }
  return dir;
}
