import { z } from 'zod';
import { callback, registryMirrors } from '../options';

/** buildImage's options, validated at the boundary (unknown keys are refused). */
export const buildImageOptionsSchema = z
  .object({
    /** The build context folder on the host. */
    context: z.string().min(1),
    /** The Dockerfile (default CONTEXT/Dockerfile); relative paths are taken from the context. */
    dockerfile: z.string().min(1).optional(),
    /** Build arguments (ARG values). */
    args: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an ARG name'),
        z.string().refine((v) => !v.includes('\0'), 'must not contain NUL'),
      )
      .default({}),
    /**
     * Image names the Dockerfile's FROM lines use for images of this host rather than a
     * registry: name (e.g. localhost/microvm-base:1a2b3c) -> an OCI layout (`oci:DIR`, a path)
     * or an archive, as Image.build takes them. engine/features builds on a Dockerfile's result this way.
     */
    localBases: z.record(z.string().min(1).max(255), z.string().min(1).max(4096)).default({}),
    /** The stage to build (default: the last). */
    target: z.string().min(1).max(128).optional(),
    /**
     * devcontainer.json's build.cacheFrom. buildah 1.28 reads cache only from its own storage,
     * which persists on the builder's volume; these images are not pulled (a progress warning says so).
     */
    cacheFrom: z.union([z.string(), z.array(z.string())]).optional(),
    /** The network RUN steps get: the builder VM's ('outbound' NAT by default; 'none': no NIC). */
    network: z.enum(['outbound', 'none', 'allowlist', 'learn']).default('outbound'),
    /** network 'allowlist': the names RUN steps may reach through the egress proxy. */
    allow: z.array(z.string().min(1).max(253)).max(256).default([]),
    /** Base images: 'missing' uses the stored image when there is one (as docker build without --pull). */
    pullPolicy: z.enum(['always', 'missing', 'never']).default('missing'),
    /** Build without the builder's layer cache and without looking up an earlier result. */
    noCache: z.boolean().default(false),
    /** The builder image (default: MICROVM_BUILDER_IMAGE, else the embedded one setup made). */
    builderImage: z.string().min(1).optional(),
    /** Registry host -> mirror URLs for base images (default: MICROVM_REGISTRY_MIRRORS). */
    registryMirrors: registryMirrors.optional(),
    memoryMib: z
      .number()
      .int()
      .min(512)
      .max(1024 * 1024)
      .default(1536),
    vcpus: z.number().int().min(1).max(255).default(2),
    /** The builder's cache volume grows up to this (a sparse file; default 32 GiB). */
    cacheSizeMib: z
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024)
      .default(32 * 1024),
    /** Cap on one layer blob, the base images' and the result's (default 16 GiB). */
    maxLayerBytes: z
      .number()
      .int()
      .positive()
      .max(Number.MAX_SAFE_INTEGER)
      .default(16 * 1024 * 1024 * 1024),
    onProgress: callback<(event: BuildImageProgress) => void>().optional(),
    /** Aborting stops the base pulls and the builder VM (E_ABORTED); nothing is cached. */
    signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'expected an AbortSignal').optional(),
  })
  .strict();

/** buildImage's options: the Dockerfile, context, build args and target, mirrors, progress and signal. */
export type BuildImageOptions = z.input<typeof buildImageOptionsSchema>;
export type ParsedBuildOptions = z.output<typeof buildImageOptionsSchema>;

/** What a build produced: `ref` goes to Image.build({ ref }). */
export interface BuiltImage {
  /** `oci:DIR`, an OCI layout under $MICROVM_HOME/builds. */
  ref: string;
  /** The image's manifest digest. */
  digest: string;
  /** True when an earlier result for the same inputs was used and nothing was built. */
  cached: boolean;
  /** The cache key: every input of the build. */
  key: string;
}

/** What buildImage reports through `onProgress`, one phase at a time. */
export type BuildImageProgress =
  /** The inputs were read; `cached` says whether a result exists for them. */
  | { phase: 'lookup'; key: string; cached: boolean; ms: number }
  | { phase: 'pull'; ref: string; digest: string; bytes: number; total: number }
  | { phase: 'context'; files: number; bytes: number; ignored: number }
  /** The builder VM's work outside buildah's own steps. */
  | { phase: 'builder'; step: BuilderStep; detail?: string }
  /** buildah started a Dockerfile step ("STEP 3/7: RUN apt-get ..."); `line` is its Dockerfile line. */
  | { phase: 'step'; stage?: number; stages?: number; step: number; steps: number; instruction: string; line?: number }
  /** buildah reused its cache for the current step. */
  | { phase: 'step-cached'; step: number; line?: number }
  /** One line of build output, as the builder printed it (guest text: show it as plain text). */
  | { phase: 'log'; stream: 'stdout' | 'stderr'; line: string }
  | { phase: 'warning'; message: string }
  | { phase: 'done'; digest: string; cached: boolean; ms: number };

/** A step of the builder VM's work, for progress. */
export type BuilderStep = 'wait' | 'boot' | 'base' | 'context' | 'build' | 'export' | 'import' | 'stop';
