import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { isMicrovmError, MicrovmError, restated, shown } from '../errors';
import type { ContentStore } from '../image/content-store';
import { parseJsonDocument } from '../image/json-document';
import type { ImageReference } from '../image/reference';
import { RegistryClient } from '../image/registry/client';
import { credentialsFor } from '../image/registry/credentials';
import { endpointsFor, mirrorsFromEnv, type RegistryMirrors } from '../image/registry/mirrors';
import { isRegistryFailure, withMirrorFailures } from '../image/registry/pull';
import { descriptorSchema, type Descriptor } from '../image/schemas';
import { MAX_JSON_DOCUMENT_BYTES } from '../image/types';
import { homePaths } from '../paths';
import { writeFileAtomic } from '../temp-files';
import { FEATURE_MEDIA_TYPES } from './types';

/**
 * A feature published as an OCI artifact (spec digest §4.6), fetched with the engine's own
 * registry client: credentials, MICROVM_REGISTRY_MIRRORS (mirrors first, the registry last),
 * digest checks, the content store. The manifest's config must be `application/vnd.devcontainers`;
 * its first layer is the feature's folder as a tar. The tag's manifest digest is recorded
 * under $MICROVM_HOME/features/refs, so a registry that cannot be reached later does not stop
 * a workspace that opened before (a warning says the stored one was used).
 */
export interface FetchedFeature {
  manifestDigest: string;
  layer: Descriptor;
  /** The `dev.containers.metadata` annotation, when the publisher set it (saves the layer download). */
  metadata?: string;
  /** Set when the registry was unreachable and the recorded manifest was used. */
  offline?: string;
}

export const MAX_FEATURE_LAYER_BYTES = 64 * 1024 * 1024;

const manifestSchema = z.object({
  schemaVersion: z.literal(2),
  config: z.object({ mediaType: z.string() }),
  layers: z.array(descriptorSchema).nonempty(),
  annotations: z.record(z.string()).optional(),
});

export async function fetchFeature(
  userId: string,
  ref: ImageReference,
  store: ContentStore,
  mirrors?: RegistryMirrors,
  signal?: AbortSignal,
): Promise<FetchedFeature> {
  let digest: string;
  let offline: string | undefined;
  try {
    digest = await withEndpoints(ref, mirrors, signal, (client) =>
      client.manifest(ref.digest ?? (ref.tag as string), store),
    ).then((d) => d.digest);
    if (!ref.digest) await recordDigest(ref.canonical, digest);
  } catch (err) {
    const recorded =
      err instanceof MicrovmError && err.code === 'E_REGISTRY_UNREACHABLE'
        ? await recordedDigest(ref.canonical, store)
        : undefined;
    if (!recorded) throw featureFetchError(userId, err);
    digest = recorded;
    offline = (err as Error).message;
  }
  const manifest = parseJsonDocument(
    await store.readDocument(digest, MAX_JSON_DOCUMENT_BYTES),
    `the manifest of ${ref.canonical}`,
    manifestSchema,
  );
  if (manifest.config.mediaType !== FEATURE_MEDIA_TYPES.config) {
    throw new MicrovmError(
      'E_FEATURE_INVALID',
      `feature ${shown(userId)}: ${ref.canonical} is not a dev container feature (its config media type is ${shown(manifest.config.mediaType)}, not ${FEATURE_MEDIA_TYPES.config}); check the reference: is it an image?`,
    );
  }
  const layer = manifest.layers[0];
  if (layer.size > MAX_FEATURE_LAYER_BYTES) {
    throw new MicrovmError(
      'E_FEATURE_INVALID',
      `feature ${shown(userId)}: its layer is ${layer.size} bytes, over the ${MAX_FEATURE_LAYER_BYTES}-byte cap for a feature; is the reference right?`,
    );
  }
  const metadata = manifest.annotations?.[FEATURE_MEDIA_TYPES.metadataAnnotation];
  return {
    manifestDigest: digest,
    layer: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size },
    ...(metadata ? { metadata } : {}),
    ...(offline ? { offline } : {}),
  };
}

/** The feature's layer in the content store (fetched when it is not there yet). */
export async function fetchLayer(
  userId: string,
  ref: ImageReference,
  layer: Descriptor,
  store: ContentStore,
  mirrors?: RegistryMirrors,
  signal?: AbortSignal,
): Promise<void> {
  if (await store.has(layer.digest)) return;
  await withEndpoints(ref, mirrors, signal, (client) => client.blob(layer, store, MAX_FEATURE_LAYER_BYTES)).catch(
    (err: unknown) => {
      throw featureFetchError(userId, err);
    },
  );
}

/**
 * Each endpoint in turn (mirrors, then the registry), as pullImage does. A mirror's 404 stays
 * the answer when the registry itself cannot be reached: the feature is missing where it was
 * looked for, which is what the user can act on.
 */
async function withEndpoints<T>(
  ref: ImageReference,
  mirrors: RegistryMirrors | undefined,
  signal: AbortSignal | undefined,
  work: (client: RegistryClient) => Promise<T>,
): Promise<T> {
  const failures: string[] = [];
  let notFound: MicrovmError | undefined;
  for (const endpoint of endpointsFor(ref, mirrors ?? mirrorsFromEnv())) {
    try {
      return await work(
        new RegistryClient(ref, {
          credentials: credentialsFor(endpoint.host),
          endpoint,
          ...(signal ? { signal } : {}),
        }),
      );
    } catch (err) {
      if (endpoint.mirror && err instanceof MicrovmError && err.code === 'E_IMAGE_NOT_FOUND') notFound ??= err;
      if (!endpoint.mirror && notFound && err instanceof MicrovmError && err.code === 'E_REGISTRY_UNREACHABLE') {
        throw new MicrovmError(
          'E_IMAGE_NOT_FOUND',
          `${notFound.message} (${endpoint.host} itself could not be reached: ${err.message})`,
          { cause: err },
        );
      }
      if (!endpoint.mirror || !isRegistryFailure(err)) throw withMirrorFailures(err, failures);
      failures.push(`${endpoint.origin.origin}: ${(err as Error).message}`);
    }
  }
  throw new Error('unreachable: the registry itself is always the last endpoint');
}

/** A 404 names the feature and says what to check; other registry errors keep their code and gain the feature's name. */
function featureFetchError(userId: string, err: unknown): unknown {
  if (!isMicrovmError(err)) return err;
  if (err.code === 'E_IMAGE_NOT_FOUND') {
    return new MicrovmError(
      'E_FEATURE_NOT_FOUND',
      `feature ${shown(userId)} was not found in its registry (${err.message}); check its name and version tag (features publish tags such as 1, 1.2, 1.2.3 and latest)`,
      { cause: err },
    );
  }
  return restated(err, `feature ${shown(userId)}: ${err.message}`);
}

function recordFile(ref: string): string {
  return path.join(homePaths.features(), 'refs', `${createHash('sha256').update(ref).digest('hex')}.json`);
}

async function recordDigest(ref: string, digest: string): Promise<void> {
  const file = recordFile(ref);
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  await writeFileAtomic(file, `${JSON.stringify({ ref, digest })}\n`, 0o644);
}

async function recordedDigest(ref: string, store: ContentStore): Promise<string | undefined> {
  try {
    const record = z
      .object({ ref: z.literal(ref), digest: z.string().regex(/^sha256:[a-f0-9]{64}$/) })
      .parse(JSON.parse(await fsp.readFile(recordFile(ref), 'utf8')));
    return (await store.has(record.digest)) ? record.digest : undefined;
  } catch {
    return undefined;
  }
}
