import { MicrovmError, shown } from '../errors';
import { parseDigest } from './digest';
import { parseJsonDocument } from './json-document';
import { checkDocumentMediaType, imageConfigOf, unsupported } from './oci-layout';
import { checkConfigPlatform, hostPlatform, selectPlatformManifest, type Platform } from './platform';
import { configSchema, indexSchema, manifestSchema, type Descriptor } from './schemas';
import {
  CONFIG_MEDIA_TYPES,
  INDEX_MEDIA_TYPES,
  LAYER_MEDIA_TYPES,
  MANIFEST_MEDIA_TYPES,
  type ImageConfig,
} from './types';

/** Where verified JSON documents come from: the content store, a registry, an archive. */
export interface DocumentSource {
  /** The bytes of a manifest, index or config, already checked against `descriptor.digest`. */
  document(descriptor: Descriptor, kind: 'index' | 'manifest' | 'config'): Promise<Buffer>;
  describe(descriptor: Descriptor): string;
}

export interface ResolvedManifest {
  manifest: Descriptor;
  configDigest: string;
  config: ImageConfig;
  layers: Descriptor[];
}

/** The top descriptor is depth 0; an index it points to is depth 1; one more level is allowed. */
const MAX_INDEX_DEPTH = 2;

/**
 * Follows `top` (an index or a manifest) down to the manifest for `platform` (when none is
 * asked for: this host's entry of an index), then reads its config. An asked-for platform
 * must be the config's too (E_PLATFORM_MISSING); without one, a single-platform image of
 * another architecture is taken as it is (its config picks the guest). Documents are parsed
 * only from verified bytes, and a document whose mediaType differs from its descriptor's is
 * refused.
 */
export async function resolveManifest(
  source: DocumentSource,
  top: Descriptor,
  platform?: Platform,
): Promise<ResolvedManifest> {
  const wanted = platform ?? hostPlatform();
  let descriptor = top;
  for (let depth = 0; !MANIFEST_MEDIA_TYPES.includes(descriptor.mediaType); depth++) {
    const where = source.describe(descriptor);
    if (!INDEX_MEDIA_TYPES.includes(descriptor.mediaType))
      throw unsupported(`manifest media type ${shown(descriptor.mediaType)} at ${where}`);
    if (depth >= MAX_INDEX_DEPTH) {
      throw new MicrovmError(
        'E_IMAGE_INVALID',
        `image indexes nest deeper than ${MAX_INDEX_DEPTH} levels (at ${where}); the image is malformed or hostile`,
      );
    }
    const index = parseJsonDocument(await source.document(descriptor, 'index'), where, indexSchema);
    checkDocumentMediaType(index.mediaType, descriptor.mediaType, where);
    descriptor = selectPlatformManifest(index.manifests, wanted, where);
    parseDigest(descriptor.digest, where);
  }
  const where = source.describe(descriptor);
  const manifest = parseJsonDocument(await source.document(descriptor, 'manifest'), where, manifestSchema);
  checkDocumentMediaType(manifest.mediaType, descriptor.mediaType, where);
  if (!CONFIG_MEDIA_TYPES.includes(manifest.config.mediaType))
    throw unsupported(`config media type ${shown(manifest.config.mediaType)} in ${where}`);
  parseDigest(manifest.config.digest, `${where} config`);
  for (const [i, layer] of manifest.layers.entries()) {
    parseDigest(layer.digest, `${where} layers[${i}]`);
    if (!(layer.mediaType in LAYER_MEDIA_TYPES))
      throw unsupported(`layer media type ${shown(layer.mediaType)} in ${where} layers[${i}]`);
  }
  const configWhere = source.describe(manifest.config);
  const config = parseJsonDocument(await source.document(manifest.config, 'config'), configWhere, configSchema);
  if (platform) checkConfigPlatform(config, platform, where);
  return {
    manifest: descriptor,
    configDigest: manifest.config.digest,
    config: imageConfigOf(config),
    layers: manifest.layers,
  };
}
