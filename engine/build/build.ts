import * as fs from 'node:fs';
import * as path from 'node:path';
import { abortedOr, throwIfAborted } from '../abort';
import { MicrovmError } from '../errors';
import { ContentStore } from '../image/content-store';
import { Image } from '../api/image';
import { checkMirrors, type RegistryMirrors } from '../image/registry/mirrors';
import { resolveSource } from '../image/source';
import { parseOptions } from '../options';
import { homePaths } from '../paths';
import { baseLayoutTar, guestImageId, resolveBases, type BaseImage } from './bases';
import { budArgv, isCacheHit, parseStepLine, stepFailure, type StepLine } from './buildah';
import { BUILDER_VOLUME, BuilderVm, GUEST } from './builder-vm';
import { cacheKey, lookupResult, storeResult, type BuildInputs } from './cache';
import { contextTar, readIgnorePatterns, readRegularFile, scanContext, type ContextScan } from './context';
import { lineOfStep, planDockerfile, type DockerfilePlan } from './dockerfile';
import { HEREDOC_FILES_DIR, type GeneratedFile } from './heredoc';
import { singleQuoted } from './shell-quote';
import { HashCache } from './hash-cache';
import { exportLayoutScript, exportTarget, importResult } from './result';
import {
  buildImageOptionsSchema,
  type BuildImageOptions,
  type BuildImageProgress,
  type BuiltImage,
  type ParsedBuildOptions,
} from './types';

export const BUILDER_IMAGE_ENV = 'MICROVM_BUILDER_IMAGE';
const MAX_DOCKERFILE_BYTES = 1024 * 1024;
const BUILD_STEP = 'buildImage';
const LOG_TAIL_LINES = 30;

/** Everything a build reads on the host before any VM runs; it decides the cache key. */
interface Prepared {
  opts: ParsedBuildOptions;
  progress: (event: BuildImageProgress) => void;
  plan: DockerfilePlan;
  scan: ContextScan;
  bases: BaseImage[];
  builderRef: string;
  mirrors: RegistryMirrors | undefined;
  store: ContentStore;
  key: string;
}

/**
 * Builds a Dockerfile into an image in a builder microVM (buildah, chroot isolation) and
 * returns a ref for Image.build. Nothing from the Dockerfile runs on the host: the host reads
 * the Dockerfile's FROM lines, pulls the base images, filters and sends the context, and
 * imports the result; the same inputs a second time are a lookup that starts no VM.
 */
export async function buildImage(options: BuildImageOptions): Promise<BuiltImage> {
  const opts = parseOptions(buildImageOptionsSchema, options, 'buildImage');
  const started = performance.now();
  const progress = (event: BuildImageProgress) => opts.onProgress?.(event);
  const prepared = await prepare(opts, progress);
  const hit = opts.noCache ? null : await lookupResult(prepared.key);
  progress({ phase: 'lookup', key: prepared.key, cached: hit !== null, ms: performance.now() - started });
  const result = hit ?? (await oneAtATime(() => buildInVm(prepared)));
  progress({ phase: 'done', digest: result.digest, cached: result.cached, ms: performance.now() - started });
  return result;
}

async function prepare(opts: ParsedBuildOptions, progress: (event: BuildImageProgress) => void): Promise<Prepared> {
  throwIfAborted(opts.signal, BUILD_STEP);
  const root = contextRoot(opts.context);
  const dockerfile = path.resolve(root, opts.dockerfile ?? 'Dockerfile');
  const dockerfileText = readRegularFile(dockerfile, MAX_DOCKERFILE_BYTES, 'E_DOCKERFILE');
  if (dockerfileText === undefined) {
    throw new MicrovmError(
      'E_DOCKERFILE',
      `the Dockerfile ${dockerfile} does not exist; check build.dockerfile (relative paths are taken from the context ${root})`,
      { details: { file: dockerfile } },
    );
  }
  const plan = planDockerfile(dockerfileText, dockerfile, opts.args, opts.target);
  for (const message of plan.warnings) progress({ phase: 'warning', message });
  if (opts.cacheFrom !== undefined) {
    progress({
      phase: 'warning',
      message: 'cacheFrom is not used: the builder (buildah 1.28) reuses layers from its own cache volume only',
    });
  }
  const hashes = await HashCache.open(root);
  const scan = await scanContext(root, readIgnorePatterns(root, dockerfile), hashes);
  await hashes.save(root);
  progress({ phase: 'context', files: scan.entries.length, bytes: scan.bytes, ignored: scan.ignored });
  throwIfAborted(opts.signal, BUILD_STEP);
  const store = new ContentStore();
  const mirrors = opts.registryMirrors && checkMirrors(opts.registryMirrors, 'buildImage option registryMirrors');
  const bases = await resolveBases(plan, {
    store,
    pullPolicy: opts.pullPolicy,
    maxLayerBytes: opts.maxLayerBytes,
    mirrors,
    localBases: opts.localBases,
    onPull: (ref, event) =>
      progress({ phase: 'pull', ref, digest: event.digest, bytes: event.bytes, total: event.total }),
    signal: opts.signal,
  });
  const builderRef = opts.builderImage ?? process.env[BUILDER_IMAGE_ENV] ?? embeddedBuilder();
  const builder = await resolveSource(builderRef, {
    pullPolicy: 'missing',
    maxLayerBytes: opts.maxLayerBytes,
    store,
    mirrors,
    signal: opts.signal,
  });
  const inputs: BuildInputs = {
    // COPY here-documents' text left the rewritten Dockerfile for files of their own: it counts too.
    dockerfile: plan.generated.length === 0 ? plan.buildText : `${plan.buildText}\n${JSON.stringify(plan.generated)}`,
    contextDigest: scan.digest,
    args: opts.args,
    target: opts.target ?? null,
    bases: bases.map((b) => ({ ref: b.reference.canonical, digest: b.manifest.digest })),
    builderDigest: builder.manifestDigest,
  };
  return { opts, progress, plan, scan, bases, builderRef, mirrors, store, key: cacheKey(inputs) };
}

/**
 * The files of COPY here-documents (heredoc.ts), written into the builder's copy of the
 * context, and kept by its .dockerignore (buildah applies that file again; the host applied
 * it already, to what it sent).
 */
async function writeGenerated(builder: BuilderVm, files: GeneratedFile[]): Promise<void> {
  if (files.length === 0) return;
  const context = `${GUEST.job}/context`;
  const dirs = [...new Set(files.map((f) => path.posix.dirname(`${context}/${f.rel}`)))];
  await builder.sh(
    `mkdir -p ${dirs.map(singleQuoted).join(' ')}\n` +
      `if [ -f ${context}/.dockerignore ]; then printf '\\n!%s\\n!%s/**\\n' ${HEREDOC_FILES_DIR} ${HEREDOC_FILES_DIR} >> ${context}/.dockerignore; fi`,
    'write the files of COPY here-documents',
  );
  for (const f of files) await builder.writeFile(`${context}/${f.rel}`, f.content);
}

function contextRoot(context: string): string {
  let root: string;
  try {
    root = fs.realpathSync(path.resolve(context));
  } catch (err) {
    throw new MicrovmError(
      'E_BUILD_CONTEXT',
      `the build context ${path.resolve(context)} does not exist; check build.context`,
      { cause: err },
    );
  }
  if (!fs.statSync(root).isDirectory())
    throw new MicrovmError('E_BUILD_CONTEXT', `the build context ${root} is not a folder; check build.context`);
  return root;
}

function embeddedBuilder(): string {
  const dir = homePaths.builderImage();
  if (!fs.existsSync(path.join(dir, 'index.json'))) {
    throw new MicrovmError(
      'E_SETUP_MISSING',
      `the builder image is not built (${dir}); run \`npm run setup\`, or set ${BUILDER_IMAGE_ENV} to an image with buildah`,
    );
  }
  return dir;
}

/** One build at a time in this process (they share the builder's volume); other processes wait on its lock. */
let queue: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(work: () => Promise<T>): Promise<T> {
  const run = queue.then(work, work);
  queue = run.catch(() => undefined);
  return run;
}

async function buildInVm(p: Prepared): Promise<BuiltImage> {
  const { opts, progress } = p;
  throwIfAborted(opts.signal, BUILD_STEP);
  const started = performance.now();
  progress({ phase: 'builder', step: 'boot' });
  const image = await Image.build({
    ref: p.builderRef,
    snapshot: false,
    memoryMib: opts.memoryMib,
    vcpus: opts.vcpus,
    network: opts.network,
    allow: opts.allow,
    volumes: [{ name: BUILDER_VOLUME, sizeMib: opts.cacheSizeMib, mountPoint: GUEST.volume }],
    registryMirrors: p.mirrors as Record<string, string[]> | undefined,
    signal: opts.signal,
  }).catch((err: unknown) => {
    throw abortedOr(err, opts.signal, BUILD_STEP);
  });
  const builder = await BuilderVm.start(image, opts.signal, () =>
    progress({ phase: 'builder', step: 'wait', detail: 'another build is using the builder; waiting for it' }),
  ).catch((err: unknown) => {
    throw abortedOr(err, opts.signal, BUILD_STEP);
  });
  const stopOnAbort = builder.stopOn(opts.signal);
  try {
    await loadBases(builder, p);
    progress({ phase: 'builder', step: 'context', detail: `${p.scan.entries.length} entries, ${p.scan.bytes} bytes` });
    await builder.feed(
      ['/bin/sh', '-c', `mkdir -p ${GUEST.job}/context && exec tar -x -p -C ${GUEST.job}/context`],
      contextTar(p.scan),
      'unpack the build context',
    );
    await builder.writeFile(`${GUEST.job}/Dockerfile`, p.plan.buildText);
    await writeGenerated(builder, p.plan.generated);
    const tag = `localhost/microvm-build:${p.key.slice(0, 16)}`;
    await runBuild(builder, p, tag);
    progress({ phase: 'builder', step: 'export' });
    await builder.sh(
      `${exportLayoutScript(p.bases)}\nbuildah push --quiet ${tag} ${exportTarget()}`,
      'export the built image',
    );
    const imported = await importResult(builder, p.bases, p.store, opts.maxLayerBytes, (done, total) =>
      progress({ phase: 'builder', step: 'import', detail: `layer ${done + 1} of ${total}` }),
    );
    const result = await storeResult(p.key, imported, p.store, {
      builtAt: new Date().toISOString(),
      durationMs: Math.round(performance.now() - started),
      dockerfile: p.plan.file,
      context: p.scan.root,
      target: opts.target ?? null,
      bases: p.bases.map((b) => ({ ref: b.reference.canonical, digest: b.manifest.digest })),
      builder: p.builderRef,
    });
    progress({ phase: 'builder', step: 'stop' });
    await builder.stop();
    return result;
  } catch (err) {
    await builder.kill();
    throw abortedOr(err, opts.signal, BUILD_STEP);
  } finally {
    stopOnAbort();
  }
}

/** Base images already in the builder's storage (by image id) are only tagged; the others are sent first. */
async function loadBases(builder: BuilderVm, p: Prepared): Promise<void> {
  if (p.bases.length === 0) return;
  const ids = p.bases.map(guestImageId);
  const present = new Set(
    (
      await builder.sh(
        ids.map((id) => `buildah inspect --type image ${id} >/dev/null 2>&1 && echo ${id} || true`).join('\n'),
        'list its images',
      )
    ).split('\n'),
  );
  for (const [i, base] of p.bases.entries()) {
    if (present.has(guestImageId(base))) continue;
    p.progress({ phase: 'builder', step: 'base', detail: base.reference.canonical });
    const dir = `${GUEST.job}/base-${i}`;
    await builder.feed(
      ['/bin/sh', '-c', `mkdir -p ${dir} && exec tar -x -C ${dir}`],
      baseLayoutTar(base, p.store),
      `receive ${base.reference.canonical}`,
    );
    await builder.sh(
      `buildah pull --quiet oci:${dir}:base >/dev/null\nrm -rf ${dir}`,
      `load ${base.reference.canonical}`,
    );
  }
  await builder.sh(
    p.bases.map((b) => `buildah tag ${guestImageId(b)} '${b.guestName}'`).join('\n'),
    'name the base images',
  );
}

/** `buildah bud`, its output streamed as progress: each line, and each step with its Dockerfile line. */
async function runBuild(builder: BuilderVm, p: Prepared, tag: string): Promise<void> {
  p.progress({ phase: 'builder', step: 'build' });
  let current: StepLine | undefined;
  let currentLine: number | undefined;
  const tail: string[] = [];
  const argv = budArgv({
    dockerfile: `${GUEST.job}/Dockerfile`,
    context: `${GUEST.job}/context`,
    args: p.opts.args,
    target: p.opts.target,
    tag,
    noCache: p.opts.noCache,
  });
  const exitCode = await builder.run(argv, (stream, line) => {
    p.progress({ phase: 'log', stream, line });
    tail.push(line);
    if (tail.length > LOG_TAIL_LINES) tail.shift();
    const step = parseStepLine(line);
    if (step) {
      current = step;
      currentLine = lineOfStep(p.plan, step);
      p.progress({
        phase: 'step',
        stage: step.stage,
        stages: step.stages,
        step: step.step,
        steps: step.steps,
        instruction: step.text,
        line: currentLine,
      });
    } else if (current && isCacheHit(line)) {
      p.progress({ phase: 'step-cached', step: current.step, line: currentLine });
    }
  });
  throwIfAborted(p.opts.signal, BUILD_STEP);
  if (exitCode !== 0) throw stepFailure(p.plan, current, exitCode, tail);
}
