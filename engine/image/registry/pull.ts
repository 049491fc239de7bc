import { MicrovmError } from '../../errors';
import type { ContentStore } from '../content-store';
import { writeRecord } from '../image-records';
import type { ImageReference } from '../reference';
import { resolveManifest, type DocumentSource } from '../resolve';
import { storeSource, toResolvedImage, type StoredImage } from '../stored-image';
import { MAX_JSON_DOCUMENT_BYTES } from '../types';
import { RegistryClient } from './client';
import { credentialsFor } from './credentials';
import type { RetryPolicy } from './retry';

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
}

/**
 * Pulls an image into the content store: the manifest (through an index to this host's
 * platform), the config, and every layer not already stored. Each blob is verified before it
 * is renamed into the store; the image record is written last, so a killed pull leaves no
 * record and the next build pulls again.
 */
export async function pullImage(ref: ImageReference, store: ContentStore, opts: PullOptions): Promise<StoredImage> {
  const client = new RegistryClient(ref, { credentials: credentialsFor(ref.registry), retry: opts.retry });
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
  const resolved = await resolveManifest(source, top);
  const missing = [];
  for (const layer of resolved.layers) if (!(await store.has(layer.digest))) missing.push(layer);
  await runLimited(missing, opts.concurrency ?? 3, (layer) => {
    if (layer.size > opts.maxBlobBytes) {
      return Promise.reject(new MicrovmError(
        'E_IMAGE_TOO_LARGE',
        `Layer ${layer.digest} of ${ref.canonical} is ${layer.size} bytes, over the ${opts.maxBlobBytes}-byte cap. Raise maxLayerBytes if the image is genuine.`,
      ));
    }
    return client.blob(layer, store, opts.maxBlobBytes, (bytes) => opts.onProgress?.({ phase: 'pull', digest: layer.digest, bytes, total: layer.size }));
  });
  const image = toResolvedImage(store, ref.canonical, resolved);
  await writeRecord(store, { ref: ref.canonical, manifest: image.manifest, source: 'registry', storedAt: new Date().toISOString() });
  return image;
}

async function runLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

