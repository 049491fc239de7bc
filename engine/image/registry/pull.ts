import { abortedOr, onAbort, throwIfAborted } from '../../abort';
import { isMicrovmError, MicrovmError, restated } from '../../errors';
import type { ContentStore } from '../content-store';
import { writeRecord } from '../image-records';
import { formatPlatform, hostPlatform, type Platform } from '../platform';
import type { ImageReference } from '../reference';
import { resolveManifest, type DocumentSource } from '../resolve';
import { storeSource, toResolvedImage, type StoredImage } from '../stored-image';
import { MAX_JSON_DOCUMENT_BYTES } from '../types';
import { RegistryClient } from './client';
import { credentialsFor } from './credentials';
import { endpointsFor, mirrorsFromEnv, type RegistryEndpoint, type RegistryMirrors } from './mirrors';
import type { RetryPolicy } from './retry';

/** A layer's download progress while an image is pulled. */
export interface PullProgress {
  phase: 'pull';
  digest: string;
  bytes: number;
  total: number;
}

export interface PullOptions {
  /** Cap on one compressed layer blob as downloaded (its descriptor size must fit). */
  maxBlobBytes: number;
  onProgress?: (event: PullProgress) => void;
  retry?: RetryPolicy;
  /** Layers downloaded at the same time. */
  concurrency?: number;
  /** Mirrors tried before the registry itself (default: MICROVM_REGISTRY_MIRRORS). */
  mirrors?: RegistryMirrors;
  /** The platform whose manifest is taken from an image index (default: this host's). */
  platform?: Platform;
  /** Aborting stops every request and layer download; their partial blobs are removed and no record is written (E_ABORTED). */
  signal?: AbortSignal;
}

/**
 * Pulls an image into the content store: the manifest (through an index to the requested
 * platform, default this host's; E_PLATFORM_MISSING lists the index's platforms), the config, and every layer not already stored. Each blob is verified before it
 * is renamed into the store; the image record is written last, so a killed pull leaves no
 * record and the next build pulls again. Mirrors of the reference's registry are tried first,
 * in order; a mirror that fails (unreachable, missing the image, refusing) hands over to the
 * next endpoint, and the registry itself is the last. Blobs are verified by digest wherever
 * they came from.
 */
export async function pullImage(ref: ImageReference, store: ContentStore, opts: PullOptions): Promise<StoredImage> {
  const endpoints = endpointsFor(ref, opts.mirrors ?? mirrorsFromEnv());
  const failures: string[] = [];
  for (const endpoint of endpoints) {
    try {
      return await pullFrom(endpoint, ref, store, opts);
    } catch (err) {
      if (opts.signal?.aborted) throw abortedOr(err, opts.signal, `pulling ${ref.canonical}`);
      if (!endpoint.mirror || !isRegistryFailure(err)) throw withMirrorFailures(err, failures);
      failures.push(`${endpoint.origin.origin}: ${(err as Error).message}`);
    }
  }
  throw new Error('unreachable: the registry itself is always the last endpoint');
}

async function pullFrom(
  endpoint: RegistryEndpoint,
  ref: ImageReference,
  store: ContentStore,
  opts: PullOptions,
): Promise<StoredImage> {
  const client = new RegistryClient(ref, {
    credentials: credentialsFor(endpoint.host),
    retry: opts.retry,
    endpoint,
    signal: opts.signal,
  });
  const top = await client.manifest(ref.digest ?? (ref.tag as string), store);
  const fromStore = storeSource(store);
  const source: DocumentSource = {
    describe: (descriptor) => `${descriptor.digest} of ${ref.canonical}`,
    document: async (descriptor, kind) => {
      if (!(await store.has(descriptor.digest))) {
        if (kind === 'config') await client.blob(descriptor, store, MAX_JSON_DOCUMENT_BYTES);
        else await client.childManifest(descriptor, store);
      }
      return fromStore.document(descriptor, kind);
    },
  };
  const resolved = await resolveManifest(source, top, opts.platform);
  const missing = [];
  for (const layer of resolved.layers) if (!(await store.has(layer.digest))) missing.push(layer);
  await runLimited(missing, opts.concurrency ?? 3, opts.signal, (layer, signal) => {
    if (layer.size > opts.maxBlobBytes) {
      return Promise.reject(
        new MicrovmError(
          'E_IMAGE_TOO_LARGE',
          `layer ${layer.digest} of ${ref.canonical} is ${layer.size} bytes, over the ${opts.maxBlobBytes}-byte cap; raise maxLayerBytes if the image is genuine`,
        ),
      );
    }
    const onBytes = (bytes: number) =>
      opts.onProgress?.({ phase: 'pull', digest: layer.digest, bytes, total: layer.size });
    return client.blob(layer, store, opts.maxBlobBytes, onBytes, signal);
  });
  throwIfAborted(opts.signal, `pulling ${ref.canonical}`);
  const image = toResolvedImage(store, ref.canonical, resolved);
  await writeRecord(store, {
    ref: ref.canonical,
    manifest: image.manifest,
    source: 'registry',
    storedAt: new Date().toISOString(),
    platform: formatPlatform(opts.platform ?? hostPlatform()),
  });
  return image;
}

/** What makes the next endpoint worth a try; a full host disk or a hostile answer does not. */
export function isRegistryFailure(err: unknown): boolean {
  return (
    err instanceof MicrovmError &&
    ['E_REGISTRY_UNREACHABLE', 'E_REGISTRY_PROTOCOL', 'E_REGISTRY_AUTH', 'E_IMAGE_NOT_FOUND'].includes(err.code)
  );
}

/** The registry's own error, with what the mirrors answered before it. */
export function withMirrorFailures(err: unknown, failures: string[]): unknown {
  if (failures.length === 0 || !isMicrovmError(err)) return err;
  return restated(err, `${err.message} (before it, the mirrors failed: ${failures.join('; ')})`);
}

/**
 * Runs `work` on at most `limit` items at a time. The first failure (or an abort of `signal`)
 * aborts the downloads still running, and the call settles only once every one has ended, so
 * that none is left writing a partial blob behind it.
 */
async function runLimited<T>(
  items: T[],
  limit: number,
  signal: AbortSignal | undefined,
  work: (item: T, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const stopAll = new AbortController();
  const unlink = onAbort(signal, () => stopAll.abort(signal?.reason));
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && !stopAll.signal.aborted) {
      try {
        await work(items[next++]!, stopAll.signal);
      } catch (error) {
        failure ??= { error };
        stopAll.abort(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker)).finally(unlink);
  if (failure) throw failure.error;
  throwIfAborted(signal, 'pulling layers');
}
