import type { NetworkMode } from '../qemu/network';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { buildImage } from '../build/build';
import { HashCache } from '../build/hash-cache';
import type { BuildImageProgress, BuiltImage } from '../build/types';
import { ContentStore } from '../image/content-store';
import { parseReference } from '../image/reference';
import type { RegistryMirrors } from '../image/registry/mirrors';
import { homePaths } from '../paths';
import { reapDeadWriters, tempPath } from '../temp-files';
import { baseImage } from './base-image';
import {
  BUILTIN_ENV,
  builtinEnvFile,
  featuresDockerfile,
  OPTIONS_ENV,
  WRAPPER,
  wrapperScript,
  type FeatureStep,
} from './dockerfile';
import { layerFiles, localFiles, writeFiles, type FeatureFile } from './files';
import { fetchLayer } from './fetch';
import { featureEntry, type MetadataEntry } from './metadata';
import { optionsEnvFile } from './options';
import type { ResolvedFeature } from './types';

/** What buildFeaturesImage installs the features onto, and how. */
export interface FeaturesImageOptions {
  /** The workspace's image as Image.build takes it (a registry reference, `oci:DIR` of a Dockerfile build, a path; undefined: the embedded default image). */
  base: string | undefined;
  /** In install order (resolveFeatures). */
  features: readonly ResolvedFeature[];
  /** devcontainer.json's, when set; otherwise the base image's metadata label, then its USER, decide. */
  containerUser?: string;
  remoteUser?: string;
  network?: NetworkMode;
  /** network 'allowlist': the names feature installers may reach. */
  allow?: readonly string[];
  registryMirrors?: RegistryMirrors;
  signal?: AbortSignal;
  /** Progress of the build, as buildImage reports it. */
  onProgress?: (event: BuildImageProgress) => void;
}

export interface FeaturesImage extends BuiltImage {
  /** The base image's own `devcontainer.metadata` entries (the features' come after them in the label). */
  baseMetadata: MetadataEntry[];
  users: { containerUser: string; remoteUser: string };
}

/**
 * Installs features on top of the workspace's image in the builder microVM: a build context
 * assembled here in a temporary folder (each feature's files, its options as
 * devcontainer-features.env, its wrapper; the users as devcontainer-features.builtin.env) and
 * the generated Dockerfile go to buildImage, whose cache key covers them all (feature
 * digests and options are in the context, the base's digest among its bases), so an
 * unchanged reopen is a lookup. Nothing of a feature runs on the host.
 */
export async function buildFeaturesImage(opts: FeaturesImageOptions): Promise<FeaturesImage> {
  const store = new ContentStore();
  const base = await baseImage(opts.base, {
    store,
    mirrors: opts.registryMirrors,
    ...(opts.signal ? { signal: opts.signal } : {}),
    onPull: (event) =>
      opts.onProgress?.({
        phase: 'pull',
        ref: opts.base ?? 'default',
        digest: event.digest,
        bytes: event.bytes,
        total: event.total,
      }),
  });
  const containerUser = opts.containerUser ?? lastOf(base.metadata, 'containerUser') ?? (base.user || 'root');
  const users = { containerUser, remoteUser: opts.remoteUser ?? lastOf(base.metadata, 'remoteUser') ?? containerUser };
  const root = homePaths.features();
  await fsp.mkdir(path.join(root, 'contexts'), { recursive: true, mode: 0o700 });
  reapDeadWriters(path.join(root, 'contexts'));
  const context = tempPath(path.join(root, 'contexts'));
  try {
    await fsp.mkdir(context, { mode: 0o755 });
    const builtin = builtinEnvFile(users);
    await fsp.writeFile(path.join(context, BUILTIN_ENV), builtin, { mode: 0o755 });
    const steps: FeatureStep[] = [];
    for (const [i, feature] of opts.features.entries())
      steps.push(
        await stageFeature(
          context,
          `${feature.json.id}_${i}`,
          feature,
          builtin,
          store,
          opts.registryMirrors,
          opts.signal,
        ),
      );
    const metadata = [...base.metadata, ...opts.features.map(featureEntry)];
    await fsp.writeFile(
      path.join(context, 'Dockerfile'),
      featuresDockerfile({ from: base.from, steps, imageUser: base.user, metadata }),
    );
    const built = await buildImage({
      context,
      dockerfile: 'Dockerfile',
      localBases: base.localBases,
      network: opts.network ?? 'outbound',
      allow: [...(opts.allow ?? [])],
      ...(opts.registryMirrors ? { registryMirrors: opts.registryMirrors as Record<string, string[]> } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
    return { ...built, baseMetadata: base.metadata, users };
  } finally {
    await fsp.rm(context, { recursive: true, force: true });
    await HashCache.forget(context);
  }
}

/** One feature's folder in the context, and its step: the digest covers its files, options, wrapper and the users. */
async function stageFeature(
  context: string,
  folder: string,
  feature: ResolvedFeature,
  builtin: string,
  store: ContentStore,
  mirrors?: RegistryMirrors,
  signal?: AbortSignal,
): Promise<FeatureStep> {
  const { source, userId } = feature;
  let files: FeatureFile[];
  if (source.kind === 'local') {
    files = await localFiles(userId, source.dir);
  } else {
    // The layer is stored when resolving read it; a prune since then means fetching it again.
    await fetchLayer(userId, parseReference(source.ref), source.layer, store, mirrors, signal);
    files = await layerFiles(userId, store, source.layer);
  }
  const generated: FeatureFile[] = [
    { rel: OPTIONS_ENV, type: 'file', data: Buffer.from(optionsEnvFile(feature.options)) },
    { rel: WRAPPER, type: 'file', data: Buffer.from(wrapperScript(userId, feature.json)) },
  ];
  const all = [...files.filter((f) => f.rel !== OPTIONS_ENV && f.rel !== WRAPPER), ...generated];
  await writeFiles(path.join(context, folder), all);
  const hash = createHash('sha256').update(builtin);
  for (const f of all)
    hash
      .update(`${f.type}\0${f.rel}\0${f.linkpath ?? ''}\0`)
      .update(f.data ?? Buffer.alloc(0))
      .update('\n');
  return { folder, containerEnv: feature.json.containerEnv ?? {}, digest: `sha256:${hash.digest('hex')}`, userId };
}

function lastOf(entries: readonly MetadataEntry[], key: string): string | undefined {
  const value = [...entries].reverse().find((e) => typeof e[key] === 'string' && e[key])?.[key];
  return value as string | undefined;
}
