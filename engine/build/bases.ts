import { z } from 'zod';
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isImageErrorCode, isMicrovmError, MicrovmError, restated } from '../errors';
import type { ContentStore } from '../image/content-store';
import { parseJsonDocument } from '../image/json-document';
import { parseReference, type ImageReference } from '../image/reference';
import type { RegistryMirrors } from '../image/registry/mirrors';
import type { PullProgress } from '../image/registry/pull';
import type { Descriptor } from '../image/schemas';
import { resolveSource, type PullPolicy } from '../image/source';
import { MAX_JSON_DOCUMENT_BYTES, type ResolvedImage } from '../image/types';
import { encodeHeader, endOfArchive, paddingFor } from '../tar/writer';
import { newHeader } from '../tar/types';
import type { DockerfilePlan, ImageUse } from './dockerfile';

/**
 * A base image of the build (a FROM, a COPY --from or a RUN --mount from= image), pulled by
 * the engine's registry client on the host (credentials, mirrors, digest checks, the content
 * store) and handed to buildah in the builder as an OCI layout: buildah itself never contacts
 * a registry (`bud --pull=never`).
 */
export interface BaseImage {
  use: ImageUse;
  reference: ImageReference;
  /** The name buildah finds it under in its storage (what the FROM line resolves to). */
  guestName: string;
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  /** The uncompressed digest (diff_id) of each layer, from the config. */
  diffIds: string[];
}

export interface BaseOptions {
  store: ContentStore;
  pullPolicy: PullPolicy;
  maxLayerBytes: number;
  mirrors?: RegistryMirrors;
  /** FROM names that stand for images of this host (see BuildImageOptions.localBases). */
  localBases?: Readonly<Record<string, string>>;
  onPull?: (ref: string, event: PullProgress) => void;
  /** Aborts a base image's pull. */
  signal?: AbortSignal;
}

const rootfsSchema = z.object({
  rootfs: z.object({ diff_ids: z.array(z.string().regex(/^sha256:[a-f0-9]{64}$/)).max(1000) }),
});

/** Resolves every image the Dockerfile reads; a failure names the Dockerfile line that asked for it. */
export async function resolveBases(plan: DockerfilePlan, opts: BaseOptions): Promise<BaseImage[]> {
  const bases: BaseImage[] = [];
  for (const use of plan.images) {
    try {
      bases.push(await resolveBase(use, opts));
    } catch (err) {
      if (!isMicrovmError(err) || err.code === 'E_ABORTED') throw err;
      const message = `${plan.file}:${use.line}: ${use.use} ${use.ref}: ${err.message}`;
      if (!isImageErrorCode(err.code)) throw restated(err, message);
      throw new MicrovmError(err.code, message, { cause: err, details: { file: plan.file, line: use.line } });
    }
  }
  return bases;
}

async function resolveBase(use: ImageUse, opts: BaseOptions): Promise<BaseImage> {
  const reference = parseReference(use.ref);
  const local = opts.localBases?.[use.ref];
  const resolved = await resolveSource(local ?? reference.canonical, {
    pullPolicy: opts.pullPolicy,
    maxLayerBytes: opts.maxLayerBytes,
    store: opts.store,
    mirrors: opts.mirrors,
    onPull: (event) => opts.onPull?.(use.ref, event),
    signal: opts.signal,
  });
  if (local) await storeLocalBlobs(resolved, opts.store);
  const manifestBytes = await readStored(opts.store, resolved.manifestDigest);
  const manifest = parseJsonDocument(
    manifestBytes,
    resolved.manifestDigest,
    z.object({ mediaType: z.string().optional(), config: z.object({ mediaType: z.string(), size: z.number() }) }),
  );
  const configBytes = await readStored(opts.store, resolved.configDigest);
  const { diff_ids: diffIds } = parseJsonDocument(configBytes, resolved.configDigest, rootfsSchema).rootfs;
  if (diffIds.length !== resolved.layers.length) {
    throw new MicrovmError(
      'E_IMAGE_INVALID',
      `the config of ${reference.canonical} lists ${diffIds.length} layer digests for ${resolved.layers.length} layers; the image is malformed`,
    );
  }
  return {
    use,
    reference,
    guestName: guestNameOf(reference),
    manifest: {
      mediaType: manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json',
      digest: resolved.manifestDigest,
      size: manifestBytes.length,
    },
    config: { mediaType: manifest.config.mediaType, digest: resolved.configDigest, size: configBytes.length },
    layers: resolved.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    diffIds,
  };
}

/**
 * A local OCI layout's blobs copied into the content store (verified by digest on the way),
 * where the rest of the build reads every base from. A build result's blobs are already
 * there (its layout holds hard links to them), so only other layouts cost a copy, once.
 */
async function storeLocalBlobs(image: ResolvedImage, store: ContentStore): Promise<void> {
  const inLayout = (digest: string) => path.join(image.source, 'blobs', ...digest.split(':'));
  const blobs = [
    { digest: image.manifestDigest, file: inLayout(image.manifestDigest) },
    { digest: image.configDigest, file: inLayout(image.configDigest) },
    ...image.layers.map((l) => ({ digest: l.digest, file: l.path })),
  ];
  for (const { digest, file } of blobs) {
    if (await store.has(digest)) continue;
    await store.writeBlob(createReadStream(file) as AsyncIterable<Buffer>, {
      digest,
      maxBytes: Number.MAX_SAFE_INTEGER,
      what: `${file} of the local image ${image.source}`,
    });
  }
}

/** A stored document, read into a buffer of its own size (readDocument sizes its buffer by the cap). */
async function readStored(store: ContentStore, digest: string): Promise<Buffer> {
  const size = await fsp.stat(store.blobPath(digest)).then(
    (s) => s.size,
    () => MAX_JSON_DOCUMENT_BYTES,
  );
  return store.readDocument(digest, Math.min(size, MAX_JSON_DOCUMENT_BYTES));
}

/**
 * The name the image gets in buildah's storage: the reference as containers normalise it
 * (docker.io/library/debian:bookworm). A digest reference gets a tag of its own beside the
 * repository: buildah then finds it by repository and manifest digest.
 */
function guestNameOf(ref: ImageReference): string {
  const tag = ref.tag && !ref.digest ? ref.tag : `microvm-${(ref.digest ?? '').slice(7, 19)}`;
  return `${ref.registry}/${ref.repository}:${tag}`;
}

/** The image's id in buildah's storage: the hex of its config digest. */
export function guestImageId(base: BaseImage): string {
  return base.config.digest.slice('sha256:'.length);
}

/**
 * An OCI image layout of the base as a tar stream, read from the content store: oci-layout,
 * index.json naming the manifest "base", and the manifest, config and layer blobs.
 */
export async function* baseLayoutTar(base: BaseImage, store: ContentStore): AsyncGenerator<Buffer> {
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ ...base.manifest, annotations: { 'org.opencontainers.image.ref.name': 'base' } }],
  };
  yield* smallFile('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  yield* smallFile('index.json', Buffer.from(JSON.stringify(index)));
  yield encodeHeader(newHeader({ path: 'blobs/sha256', type: 'dir' }));
  for (const blob of [base.manifest, base.config, ...base.layers]) {
    yield encodeHeader(
      newHeader({ path: `blobs/sha256/${blob.digest.slice('sha256:'.length)}`, type: 'file', size: blob.size }),
    );
    let sent = 0;
    for await (const chunk of createReadStream(store.blobPath(blob.digest), {
      highWaterMark: 256 * 1024,
    }) as AsyncIterable<Buffer>) {
      sent += chunk.length;
      if (sent > blob.size) break;
      yield chunk;
    }
    if (sent !== blob.size)
      throw new MicrovmError(
        'E_IMAGE_DIGEST',
        `the stored blob ${blob.digest} of ${base.reference.canonical} is not ${blob.size} bytes; pull the image again`,
      );
    yield Buffer.alloc(paddingFor(blob.size));
  }
  yield endOfArchive();
}

function* smallFile(name: string, data: Buffer): Generator<Buffer> {
  yield encodeHeader(newHeader({ path: name, type: 'file', size: data.length }));
  yield data;
  yield Buffer.alloc(paddingFor(data.length));
}
