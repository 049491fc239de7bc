import * as fs from 'node:fs/promises';
import { z } from 'zod';
import { importArchive, invalid, type ArchiveContents } from './archive';
import type { ContentStore } from './content-store';
import { readRecord, writeRecord } from './image-records';
import { parseJsonDocument } from './json-document';
import { formatPlatform, hostPlatform, selectPlatformManifest, type Platform } from './platform';
import { indexSchema, ociLayoutSchema, type Descriptor } from './schemas';
import { resolvedFromStore } from './stored-image';
import { MAX_JSON_DOCUMENT_BYTES, MEDIA_TYPES, type ResolvedImage } from './types';

const dockerManifestSchema = z
  .array(
    z.object({
      Config: z.string().max(4096),
      RepoTags: z.array(z.string()).nullish(),
      Layers: z.array(z.string().max(4096)).max(1000),
    }),
  )
  .nonempty();

/**
 * An image from an OCI archive or a `docker save` tarball. The archive is streamed into the
 * content store once; later builds of the unchanged file (same path, size and mtime) read the
 * store only.
 */
export async function archiveImage(
  file: string,
  store: ContentStore,
  maxFileBytes: number,
  useCache: boolean,
  platform?: Platform,
): Promise<ResolvedImage> {
  const stat = await fs.stat(file);
  const key = `archive:${file}@${stat.size}:${Math.floor(stat.mtimeMs)}`;
  const record = useCache ? await readRecord(store, key, platform ?? hostPlatform()) : null;
  if (record) {
    try {
      return await resolvedFromStore(store, file, record.manifest, platform);
    } catch {
      // The store lost a blob (pruned): import again.
    }
  }
  const contents = await importArchive(file, store, maxFileBytes);
  const top = contents.documents.has('index.json')
    ? ociTop(file, contents, platform ?? hostPlatform())
    : await dockerTop(file, contents, store);
  const image = await resolvedFromStore(store, file, top, platform);
  await writeRecord(store, {
    ref: key,
    manifest: image.manifest,
    source: contents.documents.has('index.json') ? 'oci-archive' : 'docker-archive',
    storedAt: new Date().toISOString(),
    platform: formatPlatform(platform ?? hostPlatform()),
  });
  return image;
}

function ociTop(file: string, contents: ArchiveContents, platform: Platform): Descriptor {
  const marker = contents.documents.get('oci-layout');
  if (!marker) throw invalid(file, 'it has index.json but no oci-layout');
  const layout = parseJsonDocument(marker, `${file}: oci-layout`, ociLayoutSchema);
  if (!layout.imageLayoutVersion.startsWith('1.'))
    throw invalid(file, `imageLayoutVersion ${layout.imageLayoutVersion} is not 1.x`);
  const index = parseJsonDocument(contents.documents.get('index.json') as Buffer, `${file}: index.json`, indexSchema);
  return selectPlatformManifest(index.manifests, platform, `${file}: index.json`);
}

/** A classic `docker save` archive: manifest.json names the config and layer files; we write an OCI manifest for them. */
async function dockerTop(file: string, contents: ArchiveContents, store: ContentStore): Promise<Descriptor> {
  const manifestJson = contents.documents.get('manifest.json');
  if (!manifestJson) throw invalid(file, 'it has neither index.json (OCI) nor manifest.json (docker save)');
  const entries = parseJsonDocument(manifestJson, `${file}: manifest.json`, dockerManifestSchema);
  if (entries.length > 1) throw invalid(file, `it holds ${entries.length} images; save one image per archive`);
  const [entry] = entries;
  const digestOf = (name: string): string => {
    const digest = contents.files.get(name.replace(/^\.?\/+/, ''));
    if (!digest) throw invalid(file, `manifest.json names ${JSON.stringify(name)}, which is not in the archive`);
    return digest;
  };
  const describe = async (name: string, mediaType: string): Promise<Descriptor> => {
    const digest = digestOf(name);
    return { mediaType, digest, size: (await fs.stat(store.blobPath(digest))).size };
  };
  const layers: Descriptor[] = [];
  for (const name of entry.Layers) layers.push(await describe(name, await layerMediaType(store, digestOf(name))));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: await describe(entry.Config, MEDIA_TYPES.dockerConfig),
      layers,
    }),
  );
  const digest = await store.writeBlob([manifest], { maxBytes: MAX_JSON_DOCUMENT_BYTES, what: `manifest for ${file}` });
  return { mediaType: MEDIA_TYPES.ociManifest, digest, size: manifest.length };
}

/** docker save writes plain tar layers; newer versions may keep them compressed. */
async function layerMediaType(store: ContentStore, digest: string): Promise<string> {
  const handle = await fs.open(store.blobPath(digest), 'r');
  const magic = Buffer.alloc(4);
  await handle.read(magic, 0, 4, 0).finally(() => handle.close());
  if (magic[0] === 0x1f && magic[1] === 0x8b) return 'application/vnd.oci.image.layer.v1.tar+gzip';
  if (magic.readUInt32LE(0) === 0xfd2fb528) return 'application/vnd.oci.image.layer.v1.tar+zstd';
  return 'application/vnd.oci.image.layer.v1.tar';
}
