import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { MicrovmError } from '../errors';
import type { ContentStore } from '../image/content-store';
import { parseJsonDocument } from '../image/json-document';
import { parseReference } from '../image/reference';
import type { RegistryMirrors } from '../image/registry/mirrors';
import type { PullProgress } from '../image/registry/pull';
import { parsePlatform } from '../image/platform';
import { isLocalImageRef, resolveSource } from '../image/source';
import { MAX_JSON_DOCUMENT_BYTES, type ResolvedImage } from '../image/types';
import { homePaths } from '../paths';
import { labelEntries, type MetadataEntry } from './metadata';

/**
 * The image features are installed on: how the generated FROM line names it (a registry
 * reference as it is; an image of this host, such as a Dockerfile's build result or the
 * embedded default image, under a local name buildImage's `localBases` maps), its USER
 * (restored after the features) and the `devcontainer.metadata` label it already carries.
 */
export interface BaseImage {
  from: string;
  localBases: Record<string, string>;
  user: string;
  metadata: MetadataEntry[];
}

const configLabelsSchema = z
  .object({
    config: z
      .object({ Labels: z.record(z.string()).nullish() })
      .passthrough()
      .nullish(),
  })
  .passthrough();

export async function baseImage(
  ref: string | undefined,
  opts: {
    store: ContentStore;
    mirrors?: RegistryMirrors;
    onPull?: (event: PullProgress) => void;
    signal?: AbortSignal;
    /** The image's platform (`linux/arm64`; default: this host's). */
    platform?: string;
  },
): Promise<BaseImage> {
  const resolved = await resolveSource(ref, {
    platform: opts.platform === undefined ? undefined : parsePlatform(opts.platform),
    pullPolicy: 'missing',
    maxLayerBytes: 16 * 1024 * 1024 * 1024,
    store: opts.store,
    mirrors: opts.mirrors,
    onPull: opts.onPull,
    signal: opts.signal,
  });
  const labels =
    parseJsonDocument(await configBytes(resolved, opts.store), `the config of ${resolved.source}`, configLabelsSchema)
      .config?.Labels ?? undefined;
  const common = { user: resolved.config.user, metadata: labelEntries(labels) };
  if (ref !== undefined && !isLocalImageRef(ref))
    return { from: parseReference(ref.replace(/^docker:\/\//, '')).canonical, localBases: {}, ...common };
  const from = `localhost/microvm-base:${resolved.manifestDigest.slice('sha256:'.length, 'sha256:'.length + 12)}`;
  return { from, localBases: { [from]: ref ?? homePaths.defaultImage() }, ...common };
}

/** The config blob: from the content store, or from the local layout (checked against its digest). */
async function configBytes(image: ResolvedImage, store: ContentStore): Promise<Buffer> {
  if (await store.has(image.configDigest)) return store.readDocument(image.configDigest, MAX_JSON_DOCUMENT_BYTES);
  const file = path.join(image.source, 'blobs', ...image.configDigest.split(':'));
  const bytes = await fsp.readFile(file);
  if (
    bytes.length > MAX_JSON_DOCUMENT_BYTES ||
    `sha256:${createHash('sha256').update(bytes).digest('hex')}` !== image.configDigest
  ) {
    throw new MicrovmError(
      'E_IMAGE_DIGEST',
      `${file} is not the config ${image.configDigest} of ${image.source}; rebuild or re-export the image`,
    );
  }
  return bytes;
}
