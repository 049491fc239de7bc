import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { z } from 'zod';
import { MicrovmError, shown } from '../errors';
import { assertDigestMatches, blobPath, createDigestHash, parseDigest } from './digest';
import { parseJsonDocument, readJsonDocument } from './json-document';
import { checkConfigPlatform, hostPlatform, selectPlatformManifest, type Platform } from './platform';
import { configSchema, indexSchema, manifestSchema, ociLayoutSchema, type Descriptor } from './schemas';
import {
  CONFIG_MEDIA_TYPES,
  INDEX_MEDIA_TYPES,
  LAYER_MEDIA_TYPES,
  MANIFEST_MEDIA_TYPES,
  MAX_JSON_DOCUMENT_BYTES,
  type ImageConfig,
  type LayerBlob,
  type ResolvedImage,
} from './types';

/** index.json is depth 0; an index it points to is depth 1; one more level is allowed. */
const MAX_INDEX_DEPTH = 2;

/**
 * Resolves a local OCI image layout directory (as written by `skopeo copy ... oci:DIR` or
 * `docker buildx --output type=oci,tar=false`) to its manifest for `platform` (when none is
 * asked for: this host's entry of an index), config and layer blobs. Every JSON blob is
 * size-checked and digest-verified before it is parsed; a config for another platform than
 * the one asked for is refused (E_PLATFORM_MISSING).
 */
export async function readOciLayout(dir: string, platform?: Platform): Promise<ResolvedImage> {
  const layoutDir = path.resolve(dir);
  await checkLayoutMarker(layoutDir);
  const indexFile = path.join(layoutDir, 'index.json');
  const index = await readJsonDocument(indexFile, MAX_JSON_DOCUMENT_BYTES, indexSchema);
  const manifestDescriptor = await selectManifest(layoutDir, index.manifests, indexFile, 0, platform ?? hostPlatform());
  const manifestFile = describeBlob(layoutDir, manifestDescriptor.digest);
  const manifest = parseJsonDocument(
    await readVerifiedBlob(layoutDir, manifestDescriptor, 'manifest'),
    manifestFile,
    manifestSchema,
  );
  checkDocumentMediaType(manifest.mediaType, manifestDescriptor.mediaType, manifestFile);
  if (!CONFIG_MEDIA_TYPES.includes(manifest.config.mediaType)) {
    throw unsupported(`config media type ${shown(manifest.config.mediaType)} in ${manifestFile}`);
  }
  const configFile = describeBlob(layoutDir, manifest.config.digest);
  const config = parseJsonDocument(
    await readVerifiedBlob(layoutDir, manifest.config, 'config'),
    configFile,
    configSchema,
  );
  if (platform) checkConfigPlatform(config, platform, `${layoutDir} (config ${configFile})`);
  const layers: LayerBlob[] = [];
  for (const [i, layer] of manifest.layers.entries()) {
    layers.push(await checkLayer(layoutDir, layer, `${manifestFile} layers[${i}]`));
  }
  const imageConfig = imageConfigOf(config);
  return {
    source: layoutDir,
    manifestDigest: manifestDescriptor.digest,
    configDigest: manifest.config.digest,
    config: imageConfig,
    layers,
  };
}

/** The runtime settings of a parsed config blob, with the image spec's defaults. */
export function imageConfigOf(config: z.infer<typeof configSchema>): ImageConfig {
  const settings = config.config ?? {};
  return {
    env: settings.Env ?? [],
    entrypoint: settings.Entrypoint ?? [],
    cmd: settings.Cmd ?? [],
    workingDir: settings.WorkingDir ?? '',
    user: settings.User ?? '',
    ...exposedPortsOf(settings.ExposedPorts),
    ...(config.architecture ? { architecture: config.architecture } : {}),
  };
}

/** `{"5432/tcp": {}}` -> [5432]: TCP ports only (a bare number is TCP), at most 64, valid ones. */
function exposedPortsOf(exposed: Record<string, unknown> | null | undefined): { exposedPorts?: number[] } {
  if (!exposed) return {};
  const ports = Object.keys(exposed).flatMap((key) => {
    const match = /^(\d{1,5})(?:\/tcp)?$/i.exec(key);
    const port = match ? Number(match[1]) : 0;
    return port >= 1 && port <= 65535 ? [port] : [];
  });
  return ports.length > 0 ? { exposedPorts: [...new Set(ports)].sort((a, b) => a - b).slice(0, 64) } : {};
}

async function checkLayoutMarker(layoutDir: string): Promise<void> {
  const marker = path.join(layoutDir, 'oci-layout');
  try {
    await fs.access(marker);
  } catch (err) {
    throw new MicrovmError(
      'E_IMAGE_NOT_FOUND',
      `${layoutDir} is not an OCI image layout: ${marker} is missing; point to a directory written by ` +
        '`skopeo copy docker://IMAGE oci:DIR` or `docker buildx build --output type=oci,tar=false,dest=DIR`',
      { cause: err },
    );
  }
  const layout = await readJsonDocument(marker, 64 * 1024, ociLayoutSchema);
  if (!layout.imageLayoutVersion.startsWith('1.')) {
    throw unsupported(`imageLayoutVersion ${shown(layout.imageLayoutVersion)} in ${marker} (only 1.x is known)`);
  }
}

/** Follows indexes down to one manifest, choosing `platform`'s where there is a choice. */
async function selectManifest(
  layoutDir: string,
  candidates: Descriptor[],
  where: string,
  depth: number,
  platform: Platform,
): Promise<Descriptor> {
  const chosen = selectPlatformManifest(candidates, platform, where);
  parseDigest(chosen.digest, where);
  if (MANIFEST_MEDIA_TYPES.includes(chosen.mediaType)) return chosen;
  if (!INDEX_MEDIA_TYPES.includes(chosen.mediaType)) {
    throw unsupported(`manifest media type ${shown(chosen.mediaType)} in ${where}`);
  }
  if (depth + 1 > MAX_INDEX_DEPTH) {
    throw new MicrovmError(
      'E_IMAGE_INVALID',
      `image indexes in ${layoutDir} nest deeper than ${MAX_INDEX_DEPTH} levels (at ${where}); re-export the image for a single platform`,
    );
  }
  const file = describeBlob(layoutDir, chosen.digest);
  const nested = parseJsonDocument(await readVerifiedBlob(layoutDir, chosen, 'index'), file, indexSchema);
  checkDocumentMediaType(nested.mediaType, chosen.mediaType, file);
  return selectManifest(layoutDir, nested.manifests, file, depth + 1, platform);
}

/** Kept here for the callers that import it from the layout reader; engine/image/platform.ts owns it. */
export { hostArchitecture } from './platform';

async function checkLayer(layoutDir: string, layer: Descriptor, where: string): Promise<LayerBlob> {
  if (!(layer.mediaType in LAYER_MEDIA_TYPES)) {
    throw unsupported(`layer media type ${shown(layer.mediaType)} in ${where}`);
  }
  const file = blobPath(layoutDir, parseDigest(layer.digest, where));
  const stat = await statBlob(file, layer.digest);
  if (stat.size !== layer.size) throw sizeMismatch(file, layer.size, stat.size);
  return { digest: layer.digest, mediaType: layer.mediaType, size: layer.size, path: file };
}

/**
 * Reads a JSON blob into one buffer, checks its size against the descriptor and its digest,
 * and returns that same buffer so what is parsed is exactly what was hashed.
 */
async function readVerifiedBlob(layoutDir: string, descriptor: Descriptor, kind: string): Promise<Buffer> {
  const digest = parseDigest(descriptor.digest, `${kind} descriptor`);
  const file = blobPath(layoutDir, digest);
  if (descriptor.size > MAX_JSON_DOCUMENT_BYTES) {
    throw new MicrovmError(
      'E_IMAGE_TOO_LARGE',
      `the ${kind} ${file} is ${descriptor.size} bytes, over the ${MAX_JSON_DOCUMENT_BYTES}-byte limit for JSON documents; ` +
        'the image is malformed or hostile; use another image',
    );
  }
  await statBlob(file, descriptor.digest);
  const handle = await fs.open(file, 'r');
  try {
    // One byte more than declared, so a file that grew is noticed without reading all of it.
    const buffer = Buffer.alloc(descriptor.size + 1);
    let filled = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
      if (filled === buffer.length) break;
    }
    if (filled !== descriptor.size) throw sizeMismatch(file, descriptor.size, filled);
    const content = buffer.subarray(0, filled);
    assertDigestMatches(digest, createDigestHash(digest).update(content).digest('hex'), file);
    return content;
  } finally {
    await handle.close();
  }
}

async function statBlob(file: string, digest: string): Promise<{ size: number }> {
  try {
    return await fs.stat(file);
  } catch (err) {
    throw new MicrovmError(
      'E_IMAGE_NOT_FOUND',
      `blob ${digest} is missing from the layout (${file}); the layout is incomplete; re-export the image`,
      { cause: err },
    );
  }
}

export function checkDocumentMediaType(inDocument: string | undefined, inDescriptor: string, file: string): void {
  if (inDocument !== undefined && inDocument !== inDescriptor) {
    throw new MicrovmError(
      'E_IMAGE_INVALID',
      `${file} says mediaType ${shown(inDocument)} but its descriptor says ${shown(inDescriptor)}; refusing a document whose type is ambiguous`,
    );
  }
}

function describeBlob(layoutDir: string, digest: string): string {
  return blobPath(layoutDir, parseDigest(digest, layoutDir));
}

function sizeMismatch(file: string, expected: number, actual: number): MicrovmError {
  return new MicrovmError(
    'E_IMAGE_DIGEST',
    `${file} is ${actual === expected + 1 ? 'larger than' : `${actual} bytes, not`} the ${expected} bytes its descriptor declares; ` +
      'the blob is corrupt or was tampered with; re-export the image',
  );
}

export function unsupported(what: string): MicrovmError {
  return new MicrovmError(
    'E_IMAGE_UNSUPPORTED',
    `unsupported ${what}; supported: OCI and Docker v2 manifests with tar, tar+gzip or tar+zstd layers`,
  );
}
