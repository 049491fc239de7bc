import type { WorkspacePlan } from '../devcontainer/plan';
import { DetectedLanguage, LANGUAGE_NAMES } from '../devcontainer/language';
import { baseImage } from '../features/base-image';
import { buildFeaturesImage } from '../features/build';
import type { MetadataEntry } from '../features/metadata';
import { ContentStore } from '../image/content-store';
import { buildImage } from '../build/build';
import type { BuildImageProgress } from '../build/types';
import { ErrorCode, isMicrovmError, MicrovmError } from '../errors';

/** Why an image could not be pulled, as opposed to a fault of this machine (disk full, a bug). */
const PULL_FAILURES: ErrorCode[] = [
  'E_REGISTRY_UNREACHABLE',
  'E_REGISTRY_AUTH',
  'E_REGISTRY_PROTOCOL',
  'E_IMAGE_NOT_FOUND',
];

/** What the image step needs from the session that runs it. */
export interface ImageSourceContext {
  plan: WorkspacePlan;
  events: {
    log(line: string): void;
    baking(): void;
    output(channel: 'build', chunk: Buffer): void;
  };
  /** A step for the progress notification. */
  onProgress(step: string): void;
  /** Aborted when the session stops: cancels pulls and builds. */
  signal: AbortSignal;
}

/**
 * The workspace image's reference: the configuration's image (or the default, or its
 * language's image), or its Dockerfile's result, with the features installed on top in the
 * builder microVM (engine/features); and the image's own devcontainer.metadata entries, which
 * the caller merges into the plan. Each step and log line is reported as it happens.
 */
export async function resolveImageRef(
  ctx: ImageSourceContext,
): Promise<{ ref: string | undefined; metadata: MetadataEntry[] }> {
  const base = await baseImageRef(ctx);
  const { plan } = ctx;
  const { features } = plan;
  if (features.length === 0) {
    const { metadata } = await baseImage(base, {
      store: new ContentStore(),
      platform: plan.platform,
      onPull: (e) => reportBuildProgress(ctx, { ...e, ref: base ?? 'default' }),
      signal: ctx.signal,
    });
    return { ref: base, metadata };
  }
  ctx.events.baking();
  ctx.onProgress(`Installing features: ${features.map((f) => f.userId).join(', ')}`);
  const built = await buildFeaturesImage({
    base,
    features,
    network: plan.network,
    allow: plan.allow,
    signal: ctx.signal,
    onProgress: (event: BuildImageProgress) => reportBuildProgress(ctx, event),
    ...(plan.containerUser ? { containerUser: plan.containerUser } : {}),
    ...(plan.remoteUser ? { remoteUser: plan.remoteUser } : {}),
  });
  ctx.events.log(
    `features ${features.map((f) => f.userId).join(', ')} installed as ${built.users.containerUser}${built.cached ? ' (cached: nothing changed)' : ''}: ${built.digest}`,
  );
  return { ref: built.ref, metadata: built.baseMetadata };
}

/** The configuration's image (or the default), or the result of building its Dockerfile. */
async function baseImageRef(ctx: ImageSourceContext): Promise<string | undefined> {
  const { source } = ctx.plan;
  if (source.kind === 'image') {
    if (source.language && source.ref) return languageImageRef(ctx, source.ref, source.language);
    if (!source.ref)
      ctx.events.log(
        'the workspace opens on the embedded default image (a small busybox system, always available offline)',
      );
    return source.ref;
  }
  const { build } = source;
  ctx.events.baking();
  ctx.onProgress('Building the image from its Dockerfile');
  const built = await buildImage({
    context: build.context,
    dockerfile: build.dockerfile,
    args: build.args,
    ...(build.target ? { target: build.target } : {}),
    ...(build.cacheFrom.length > 0 ? { cacheFrom: build.cacheFrom } : {}),
    ...(build.pull ? { pullPolicy: 'always' as const } : {}),
    network: build.network === 'none' ? 'none' : ctx.plan.network,
    allow: ctx.plan.allow,
    signal: ctx.signal,
    onProgress: (event: BuildImageProgress) => reportBuildProgress(ctx, event),
  });
  ctx.events.log(
    `image built from ${build.dockerfile}${built.cached ? ' (cached: nothing changed)' : ''}: ${built.digest}`,
  );
  return built.ref;
}

/**
 * The image for the folder's language (it has no devcontainer.json), pulled now; when it
 * cannot be (offline, a registry that refuses, no such image), the embedded default image,
 * and the log says so.
 */
async function languageImageRef(
  ctx: ImageSourceContext,
  ref: string,
  detected: DetectedLanguage,
): Promise<string | undefined> {
  const why = `${detected.marker} makes this a ${LANGUAGE_NAMES[detected.language]} project`;
  ctx.events.log(
    `no devcontainer.json: ${why}, so the workspace opens on ${ref} (the microvm.defaultImages setting names another)`,
  );
  ctx.onProgress(`Pulling ${ref} (${why})`);
  try {
    await baseImage(ref, {
      store: new ContentStore(),
      onPull: (e) => reportBuildProgress(ctx, { ...e, ref }),
      signal: ctx.signal,
    });
    return ref;
  } catch (err) {
    if (ctx.signal.aborted || !PULL_FAILURES.some((code) => isMicrovmError(err, code))) throw err;
    ctx.events.log(
      `warning: ${ref} could not be pulled (${(err as MicrovmError).code}: ${(err as Error).message}); ` +
        "the workspace opens on the embedded default image instead (a small busybox system without the language's tools)",
    );
    return undefined;
  }
}

/** A build's or pull's event as a progress step, a log line or build output. */
function reportBuildProgress(ctx: ImageSourceContext, event: BuildImageProgress): void {
  switch (event.phase) {
    case 'step':
      ctx.onProgress(`Building: step ${event.step}/${event.steps}${event.line ? ` (line ${event.line})` : ''}`);
      ctx.events.log(`build step ${event.step}/${event.steps}: ${event.instruction}`);
      return;
    case 'builder':
      ctx.onProgress(`Building: ${event.step}${event.detail ? ` ${event.detail}` : ''}`);
      return;
    case 'log':
      ctx.events.output('build', Buffer.from(`${event.line}\n`));
      return;
    case 'warning':
      ctx.events.log(`build: ${event.message}`);
      return;
    case 'pull':
      ctx.onProgress(
        `Pulling ${event.ref}: ${(event.bytes / 1048576).toFixed(1)} of ${(event.total / 1048576).toFixed(1)} MiB`,
      );
      return;
    default:
  }
}
