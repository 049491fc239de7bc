import { MicrovmError } from '../errors';
import type { ContentStore } from './content-store';
import { resolveManifest, type DocumentSource } from './resolve';
import type { Platform } from './platform';
import type { Descriptor } from './schemas';
import { MAX_JSON_DOCUMENT_BYTES, type ResolvedImage } from './types';

/** Documents read from the content store, each verified against its digest as it is read. */
export function storeSource(store: ContentStore): DocumentSource {
  return {
    document: async (descriptor) =>
      checkedSize(await store.readDocument(descriptor.digest, MAX_JSON_DOCUMENT_BYTES), descriptor, store),
    describe: (descriptor) => store.blobPath(descriptor.digest),
  };
}

/** A resolved image that also names its platform manifest, as image records store it. */
export type StoredImage = ResolvedImage & { manifest: { mediaType: string; digest: string; size: number } };

/** An image whose manifest, config and layers are all in the store; layers are verified when read. */
export async function resolvedFromStore(
  store: ContentStore,
  source: string,
  top: Descriptor,
  platform?: Platform,
): Promise<StoredImage> {
  const resolved = await resolveManifest(storeSource(store), top, platform);
  return toResolvedImage(store, source, resolved);
}

export function toResolvedImage(
  store: ContentStore,
  source: string,
  resolved: Awaited<ReturnType<typeof resolveManifest>>,
): StoredImage {
  const { mediaType, digest, size } = resolved.manifest;
  return {
    manifest: { mediaType, digest, size },
    source,
    manifestDigest: resolved.manifest.digest,
    configDigest: resolved.configDigest,
    config: resolved.config,
    layers: resolved.layers.map((layer) => ({
      digest: layer.digest,
      mediaType: layer.mediaType,
      size: layer.size,
      path: store.blobPath(layer.digest),
    })),
  };
}

function checkedSize(content: Buffer, descriptor: Descriptor, store: ContentStore): Buffer {
  if (content.length !== descriptor.size) {
    throw new MicrovmError(
      'E_IMAGE_INVALID',
      `${store.blobPath(descriptor.digest)} is ${content.length} bytes but its descriptor declares ${descriptor.size}; the image is malformed`,
    );
  }
  return content;
}
