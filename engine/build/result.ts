import { MicrovmError } from '../errors';
import type { ContentStore } from '../image/content-store';
import { parseDigest } from '../image/digest';
import { parseJsonDocument } from '../image/json-document';
import { resolveManifest, type DocumentSource } from '../image/resolve';
import { indexSchema, manifestSchema, type Descriptor } from '../image/schemas';
import { MAX_JSON_DOCUMENT_BYTES, MEDIA_TYPES } from '../image/types';
import type { BaseImage } from './bases';
import { GUEST, type BuilderVm } from './builder-vm';

/**
 * The built image leaves the builder as an OCI layout that buildah pushed into the job
 * directory, read file by file through the agent: the host never mounts or parses the guest's
 * file system, and everything it reads is guest data. Documents are size-capped and parsed
 * only after their digest matched (the engine's hardened OCI reader); layer blobs stream into
 * the content store, which checks size and digest before anything gets a final name.
 *
 * Layers of the base images are not exported again: before the push the job's layout gets an
 * empty placeholder named by each base layer's uncompressed digest, which buildah's OCI
 * writer takes for "already there" (it only looks for the name). The manifest it writes then
 * lists that digest, and the host puts back the base's own stored blob with the same content
 * (its config's diff_id). Without this every build re-compressed and re-sent its base layers
 * (a 127 MB Debian layer took ~30 s under TCG); should buildah ever write the layer anyway,
 * it is fetched and verified like any other.
 */
export const EXPORT_DIR = `${GUEST.job}/export`;
const EXPORT_NAME = 'result';

/** The shell commands that prepare the export layout with one placeholder per base layer. */
export function exportLayoutScript(bases: BaseImage[]): string {
  const blobs = `${EXPORT_DIR}/blobs/sha256`;
  const placeholders = [...new Set(bases.flatMap((b) => b.diffIds))].map(
    (d) => `${blobs}/${parseDigest(d, 'a base layer').hex}`,
  );
  return [
    `rm -rf ${EXPORT_DIR}`,
    `mkdir -p ${blobs}`,
    `printf '%s' '{"imageLayoutVersion":"1.0.0"}' > ${EXPORT_DIR}/oci-layout`,
    ...(placeholders.length > 0 ? [`touch ${placeholders.join(' ')}`] : []),
  ].join('\n');
}

export function exportTarget(): string {
  return `oci:${EXPORT_DIR}:${EXPORT_NAME}`;
}

export interface ImportedImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
}

/** Reads the pushed result into the content store and writes its host manifest there. */
export async function importResult(
  builder: BuilderVm,
  bases: BaseImage[],
  store: ContentStore,
  maxLayerBytes: number,
  onLayer: (done: number, total: number) => void,
): Promise<ImportedImage> {
  const where = `${EXPORT_DIR}/index.json in the builder`;
  const index = parseJsonDocument(await builder.readFile(`${EXPORT_DIR}/index.json`), where, indexSchema);
  const top = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === EXPORT_NAME);
  if (!top)
    throw new MicrovmError(
      'E_BUILD_FAILED',
      `the builder's export (${where}) names no image "${EXPORT_NAME}"; the push did not complete`,
    );
  const resolved = await resolveManifest(guestDocuments(builder, store), top);
  const fromBases = new Map<string, Descriptor>();
  // bases.ts checks that a base lists one diff id per layer.
  for (const base of bases) base.layers.forEach((layer, i) => fromBases.set(base.diffIds[i]!, layer));
  const layers: Descriptor[] = [];
  for (const [i, layer] of resolved.layers.entries()) {
    onLayer(i, resolved.layers.length);
    const base = fromBases.get(layer.digest);
    if (base) {
      layers.push(base);
      continue;
    }
    if (!(await store.has(layer.digest))) {
      const hex = parseDigest(layer.digest, `layer ${i} of the built image`).hex;
      await store.writeBlob(builder.stream(`${EXPORT_DIR}/blobs/sha256/${hex}`), {
        digest: layer.digest,
        size: layer.size,
        maxBytes: maxLayerBytes,
        what: `layer ${layer.digest} of the built image`,
      });
    }
    layers.push({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size });
  }
  const guestManifest = parseJsonDocument(
    await store.readDocument(resolved.manifest.digest, MAX_JSON_DOCUMENT_BYTES),
    resolved.manifest.digest,
    manifestSchema,
  );
  const config = {
    mediaType: guestManifest.config.mediaType,
    digest: resolved.configDigest,
    size: guestManifest.config.size,
  };
  const manifestBytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config, layers }),
  );
  const digest = await store.writeBlob([manifestBytes], {
    maxBytes: MAX_JSON_DOCUMENT_BYTES,
    what: 'the manifest of the built image',
  });
  return { manifest: { mediaType: MEDIA_TYPES.ociManifest, digest, size: manifestBytes.length }, config, layers };
}

/** The export's documents, read through the agent and stored only if they hash as named. */
function guestDocuments(builder: BuilderVm, store: ContentStore): DocumentSource {
  return {
    describe: (descriptor) => `${descriptor.digest} in the builder's export`,
    document: async (descriptor) => {
      const { hex } = parseDigest(descriptor.digest, "the builder's export");
      if (descriptor.size > MAX_JSON_DOCUMENT_BYTES)
        throw new MicrovmError(
          'E_IMAGE_TOO_LARGE',
          `${descriptor.digest} in the builder's export is ${descriptor.size} bytes, over ${MAX_JSON_DOCUMENT_BYTES}`,
        );
      if (!(await store.has(descriptor.digest))) {
        const bytes = await builder.readFile(`${EXPORT_DIR}/blobs/sha256/${hex}`);
        await store.writeBlob([bytes], {
          digest: descriptor.digest,
          size: descriptor.size,
          maxBytes: MAX_JSON_DOCUMENT_BYTES,
          what: `${descriptor.digest} in the builder's export`,
        });
      }
      return store.readDocument(descriptor.digest, MAX_JSON_DOCUMENT_BYTES);
    },
  };
}
