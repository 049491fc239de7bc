import { z } from 'zod';
import { MAX_PIDS_MAX } from './agent/protocol';
import type { VmBackend } from './backend/types';
import { MicrovmError } from './errors';
import { isPlatformText } from './image/platform';
import { DEFAULT_PROTECT } from './mount/types';
import {
  isServiceLinkAddress,
  isServiceLinkPath,
  MAX_SERVICE_LINK_PATH,
  MAX_SERVICE_LINKS,
  SERVICE_LINK_NET,
} from './qemu/network';

/**
 * User-facing options, validated at the boundary: unknown keys are rejected, and an error
 * names the field, the value it got and what it expected.
 */
const abortSignal = z.custom<AbortSignal>((v) => v instanceof AbortSignal, 'expected an AbortSignal');
/** A hypervisor backend (engine/backend/types.ts): checked by shape, as any object can implement it. */
function isVmBackend(value: unknown): value is VmBackend {
  const backend = value as Partial<VmBackend> | null;
  return (
    typeof backend === 'object' &&
    backend !== null &&
    typeof backend.name === 'string' &&
    typeof backend.capabilities === 'function' &&
    typeof backend.boot === 'function'
  );
}
/**
 * A function option: zod checks that it is a function, `F` gives its exact type (no `any`
 * reaches the option types). Unlike zod's function schema, it keeps the caller's own function, unwrapped.
 */
export const callback = <F extends (...args: never[]) => unknown>() =>
  z.custom<F>((v) => typeof v === 'function', 'expected a function');
const bytes = z.custom<Uint8Array | string>(
  (v) => typeof v === 'string' || v instanceof Uint8Array,
  'expected a string or a Buffer',
);
const guestPath = z
  .string()
  .min(1)
  .refine((p) => p.startsWith('/') && !p.includes('\0'), 'expected an absolute guest path');
const argv = z
  .array(z.string().refine((s) => !s.includes('\0'), 'must not contain NUL'))
  .min(1, 'expected at least one argument');
const envMap = z.record(
  z.string().regex(/^[^=\0]+$/, 'expected a variable name without "=" or NUL'),
  z.string().refine((s) => !s.includes('\0'), 'must not contain NUL'),
);
const mib = (min: number, max: number) => z.number().int().min(min).max(max);
const mountPoint = guestPath.refine(
  (p) => p !== '/' && !p.split('/').includes('..'),
  'expected an absolute guest path other than "/", without ".."',
);
const protectPath = z
  .string()
  .min(1)
  .refine(
    (p) => !p.startsWith('/') && !p.split('/').some((part) => part === '..' || part === '.') && !p.includes('\0'),
    'expected a path relative to hostPath, without "." or ".."',
  );
/** Registry host -> mirror URLs, e.g. { 'docker.io': ['http://127.0.0.1:5000'] } (checked in detail by engine/image/registry/mirrors.ts). */
export const registryMirrors = z
  .record(z.string().min(1).max(255), z.array(z.string().min(1).max(2048)).max(8))
  .refine((m) => Object.keys(m).length <= 32, 'at most 32 registries');
const protectName = z
  .string()
  .min(1)
  .max(255)
  .refine(
    (p) => !p.includes('/') && !p.includes('\0') && p !== '.' && p !== '..',
    'expected a file name or a glob such as "*.code-workspace" (no "/")',
  );

/** A host folder shared into the guest over virtio-fs (see engine/mount/README.md). */
export const mountSchema = z
  .object({
    hostPath: z
      .string({ required_error: 'hostPath is required' })
      .min(1)
      .refine((p) => !p.includes(',') && !p.includes('\0'), 'must not contain "," or NUL'),
    guestPath: mountPoint,
    symlinks: z.enum(['opaque', 'deny', 'follow']).default('opaque'),
    readOnly: z.boolean().default(false),
    /** Serve the folder through the filter view (default); false only for trusted folders. */
    filter: z.boolean().default(true),
    /** Names protected at any depth: the guest cannot create them and only reads existing ones. */
    protect: z
      .array(protectName)
      .max(48)
      .default([...DEFAULT_PROTECT]),
    /** Paths relative to hostPath kept read-only (a repository's core.hooksPath is added by itself). */
    protectPaths: z.array(protectPath).max(32).default([]),
    git: z.enum(['writable', 'strict']).default('writable'),
    /** The guest ids that become the folder's owner on the host (default 0:0): the workspace's user. */
    guestOwner: z
      .object({ uid: z.number().int().min(0).max(65535), gid: z.number().int().min(0).max(65535) })
      .strict()
      .optional(),
    /** Host changes raise inotify events in the guest (engine/watch/); the workspace folder has it on. */
    fileEvents: z.boolean().default(false),
  })
  .strict()
  .refine((m) => m.filter || m.symlinks !== 'follow', {
    message: "symlinks: 'follow' is served by the filter view: it needs filter: true",
    path: ['filter'],
  });

/** A persistent ext4 disk under $MICROVM_HOME/volumes, kept across runs and re-bakes. */
export const volumeSchema = z
  .object({
    name: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
        'expected a volume name of letters, digits, ".", "_" and "-" (no "/"), at most 64 characters',
      ),
    sizeMib: z
      .number()
      .int()
      .min(32, 'a volume needs at least 32 MiB')
      .max(1024 * 1024)
      .default(1024),
    mountPoint,
  })
  .strict();

/** A memory-backed file system at mountPoint (devcontainer.json's `type=tmpfs`). */
export const tmpfsSchema = z
  .object({
    mountPoint,
    sizeMib: z
      .number()
      .int()
      .min(1)
      .max(1024 * 1024)
      .optional(),
  })
  .strict();

const port = z.number().int().min(1).max(65535);

/** Another VM's TCP port, reached by the guest at address:port and relayed on the host from the unix socket `path` (engine/qemu/network.ts). */
export const serviceLinkSchema = z
  .object({
    address: z
      .string()
      .refine(
        isServiceLinkAddress,
        `expected a host address inside ${SERVICE_LINK_NET}, such as serviceLinkAddress(0) = 198.18.0.2`,
      ),
    port,
    path: z
      .string()
      .refine(
        isServiceLinkPath,
        `expected an absolute unix socket path of at most ${MAX_SERVICE_LINK_PATH} bytes, without ',' or '='`,
      ),
  })
  .strict();

/**
 * Image.build's options. The callbacks' types are the image's (its progress events, the VM a
 * warmup gets), which this file cannot name: image/ and vm/ import it. engine/image/image.ts
 * makes the schema with them.
 */
export const buildOptionsSchemaWith = <Progress, WarmupVm>() =>
  z
    .object({
      ref: z.string().min(1).optional(),
      /**
       * Aborting stops the build in whichever phase it is: the registry requests and layer
       * downloads, mke2fs, the bake VM. It fails with E_ABORTED and leaves no process, no
       * temporary file and no cache entry behind.
       */
      signal: abortSignal.optional(),
      name: z.string().min(1).optional(),
      memoryMib: mib(64, 1024 * 1024).default(256),
      vcpus: z.number().int().min(1).max(255).default(1),
      env: envMap.default({}),
      cmd: argv.optional(),
      bootTimeoutMs: z.number().int().positive().optional(),
      network: z.enum(['none', 'outbound', 'allowlist', 'learn']).default('outbound'),
      /**
       * Other VMs' TCP ports this VM reaches at 198.18.0.0/24, whatever its network. Given at all,
       * even empty, the VM has a NIC also with network 'none': then the links are all it reaches.
       */
      serviceLinks: z.array(serviceLinkSchema).max(MAX_SERVICE_LINKS).optional(),
      /** network 'allowlist': the host names the VM may reach through the egress proxy (`registry.npmjs.org`, `*.github.com`). */
      allow: z.array(z.string().min(1).max(253)).max(256).default([]),
      pullPolicy: z.enum(['always', 'missing', 'never']).default('missing'),
      /** The platform an image index resolves to: `linux/amd64`, `linux/arm64`, `linux/arm/v7` (default: this host's). */
      platform: z.string().max(64).refine(isPlatformText, 'expected OS/ARCH[/VARIANT], e.g. linux/arm64').optional(),
      /** Registry host -> mirror URLs tried first, in order (default: MICROVM_REGISTRY_MIRRORS). */
      registryMirrors: registryMirrors.optional(),
      extraFiles: z
        .array(
          z
            .object({
              hostPath: z.string().min(1),
              guestPath,
              mode: z.number().int().min(0).max(0o7777).optional(),
            })
            .strict(),
        )
        .max(256)
        .default([]),
      /** Cap on one layer, compressed as stored and decompressed as unpacked (default 16 GiB). */
      maxLayerBytes: z
        .number()
        .int()
        .positive()
        .max(Number.MAX_SAFE_INTEGER)
        .default(16 * 1024 * 1024 * 1024),
      onProgress: callback<(event: Progress) => void>().optional(),
      /** The user every process of the VM runs as (devcontainer.json containerUser), instead of the image's USER. */
      user: z.string().min(1).max(256).optional(),
      /** The hypervisor the image's VMs run on (default: QEMU, under KVM when the host offers it, else TCG). */
      backend: z.custom<VmBackend>(isVmBackend, 'expected a VmBackend (name, capabilities(), boot())').optional(),
      /** Bake a snapshot so that pools restore VMs instead of booting them (default true). */
      snapshot: z.boolean().default(true),
      snapshotsDir: z.string().min(1).optional(),
      warmupTag: z.string().default(''),
      /** Runs in the VM before the snapshot is taken (or after every boot, for images that boot fresh). */
      warmup: callback<(vm: WarmupVm) => Promise<void>>().optional(),
      guestPort: z.number().int().min(1).max(65535).optional(),
      listenerRequired: z.boolean().default(false),
      listenerTimeoutMs: z.number().int().positive().default(60_000),
      mounts: z.array(mountSchema).max(16).default([]),
      volumes: z.array(volumeSchema).max(16).default([]),
      tmpfs: z.array(tmpfsSchema).max(16).default([]),
      /**
       * A volume that keeps the root file system's changes across boots (a workspace's container:
       * what hooks install outside the shares and volumes stays). Absent: changes last until power-off.
       */
      rootVolume: volumeSchema.omit({ mountPoint: true }).optional(),
    })
    .strict()
    .refine((o) => !o.listenerRequired || o.guestPort !== undefined, {
      message: 'listenerRequired needs guestPort',
      path: ['listenerRequired'],
    })
    .superRefine(uniqueMountPoints)
    .superRefine(uniqueServiceLinks);

/** Two links of one address:port would leave the guard to pick one relay: it refuses them all. */
function uniqueServiceLinks(
  o: { serviceLinks?: Array<{ address: string; port: number }> },
  ctx: z.RefinementCtx,
): void {
  const seen = new Set<string>();
  for (const [i, link] of (o.serviceLinks ?? []).entries()) {
    const key = `${link.address}:${link.port}`;
    if (seen.has(key))
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${key} is linked twice`, path: ['serviceLinks', i] });
    seen.add(key);
  }
}

/** Two mounts or volumes on one guest path (or two volumes of one name) would hide each other. */
function uniqueMountPoints(
  o: {
    mounts: Array<{ guestPath: string }>;
    volumes: Array<{ name: string; mountPoint: string }>;
    tmpfs: Array<{ mountPoint: string }>;
    rootVolume?: { name: string };
  },
  ctx: z.RefinementCtx,
): void {
  const seen = new Set<string>();
  const points: Array<[string, Array<string | number>]> = [
    ...o.mounts.map((m, i): [string, Array<string | number>] => [m.guestPath, ['mounts', i, 'guestPath']]),
    ...o.volumes.map((v, i): [string, Array<string | number>] => [v.mountPoint, ['volumes', i, 'mountPoint']]),
    ...o.tmpfs.map((t, i): [string, Array<string | number>] => [t.mountPoint, ['tmpfs', i, 'mountPoint']]),
  ];
  for (const [point, path] of points) {
    const normal = point.replace(/\/+/g, '/').replace(/\/$/, '');
    if (seen.has(normal))
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `duplicate mount point ${point}`, path });
    seen.add(normal);
  }
  const names = new Set<string>();
  for (const [i, volume] of o.volumes.entries()) {
    if (names.has(volume.name))
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `duplicate volume name ${volume.name}`,
        path: ['volumes', i, 'name'],
      });
    names.add(volume.name);
  }
  if (o.rootVolume && names.has(o.rootVolume.name)) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `the root volume ${o.rootVolume.name} is also one of the volumes`,
      path: ['rootVolume', 'name'],
    });
  }
}

export const poolOptionsSchema = z
  .object({
    min: z.number().int().min(0).max(64).default(1),
    max: z.number().int().min(1).max(64).default(1),
    acquireTimeoutMs: z.number().int().min(0).default(60_000),
    idleTimeoutMs: z.number().int().min(0).default(0),
    restoreOnRelease: z.boolean().default(true),
    memoryMib: mib(64, 1024 * 1024).optional(),
    vcpus: z.number().int().min(1).max(255).optional(),
    restoreTimeoutMs: z.number().int().positive().optional(),
  })
  .strict()
  .refine((o) => o.min <= o.max, { message: 'min must not exceed max', path: ['min'] });

const stagedFile = z
  .object({ path: guestPath, data: bytes, mode: z.number().int().min(0).max(0o7777).optional() })
  .strict();
const stageFileList = z.array(stagedFile).max(1024);
const stageFileRecord = z.record(guestPath, bytes).refine((r) => Object.keys(r).length <= 1024, 'at most 1024 files');
type StagedFile = z.output<typeof stagedFile>;

/**
 * Both forms become the list. The form is chosen by the value's shape before validation, so
 * a bad entry is reported at its own path (`stageFiles./app/x.js`, `stageFiles.0.path`)
 * rather than as a failed union.
 */
const stageFiles = z.unknown().transform((value, ctx): StagedFile[] => {
  const list = Array.isArray(value);
  const result = (list ? stageFileList : stageFileRecord).safeParse(value);
  if (!result.success) {
    for (const issue of result.error.issues) ctx.addIssue(issue as z.IssueData);
    return z.NEVER;
  }
  if (list) return result.data as StagedFile[];
  return Object.entries(result.data as Record<string, Uint8Array | string>).map(([path, data]) => ({ path, data }));
}) as unknown as z.ZodType<StagedFile[], z.ZodTypeDef, StagedFile[] | Record<string, Uint8Array | string>>;

export const execOptionsSchema = z
  .object({
    argv,
    /** Aborting kills the process (SIGKILL to its group) and the call fails with E_ABORTED. */
    signal: abortSignal.optional(),
    env: envMap.default({}),
    /** Names taken out of the environment, the image's included, before `env` applies (devcontainer.json's `"VAR": null`). */
    unsetEnv: z.array(z.string().min(1).max(256)).max(256).default([]),
    cwd: guestPath.optional(),
    timeoutMs: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(60_000),
    /** Files written before the command runs: a list with modes, or the seed's record `{ '/app/x.js': data }` (stageFilesMode). */
    stageFiles: stageFiles.default([]),
    stageFilesMode: z.number().int().min(0).max(0o7777).default(0o644),
    chain: z.array(argv).max(16).default([]),
    tty: z.boolean().default(false),
    winsize: z
      .object({ rows: z.number().int().min(1).max(0xffff), cols: z.number().int().min(1).max(0xffff) })
      .strict()
      .optional(),
    maxBuffer: z
      .number()
      .int()
      .positive()
      .default(64 * 1024 * 1024),
    encoding: z.enum(['utf8', 'buffer']).default('utf8'),
    /** Most tasks (processes and threads) the command and its descendants may have at once in the guest (default 4096). */
    pidsMax: z.number().int().min(1).max(MAX_PIDS_MAX).optional(),
    /** Run as these ids instead of the image's user (resolve a name with vm.userInfo()). */
    user: z
      .object({
        uid: z.number().int().min(0).max(0xfffffffe),
        gid: z.number().int().min(0).max(0xfffffffe),
        /** Supplementary groups (vm.userInfo() lists the user's from /etc/group). */
        groups: z.array(z.number().int().min(0).max(0xfffffffe)).max(64).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** pool.acquire: aborting stops the wait (E_ABORTED); a VM started for it stays in the pool. */
export const acquireOptionsSchema = z
  .object({
    signal: abortSignal.optional(),
  })
  .strict();

/** `pool.acquire()`'s options: a signal whose abort takes the caller out of the queue (E_ABORTED). */
export type AcquireOptions = z.input<typeof acquireOptionsSchema>;
/** `image.pool()`'s options: how many VMs to keep ready (`min`) and allow at once (`max`), their size, waits, idle eviction and restore on release. */
export type PoolOptions = z.input<typeof poolOptionsSchema>;
/** `vm.exec()`'s and `vm.spawn()`'s options: argv, environment, working directory, files staged first, a chain of commands, pty, timeout, signal, and (exec only) the output limit and encoding. */
export type ExecOptions = z.input<typeof execOptionsSchema>;

/** Parses options with a schema, turning the first problem into an E_BAD_OPTION error. */
export function parseOptions<S extends z.ZodTypeAny>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = firstIssue(result.error);
  const field = issue.path.join('.') || '(options)';
  const got = valueAt(value, issue.path);
  const detail = issue.code === 'unrecognized_keys' ? `unknown option(s) ${issue.keys.join(', ')}` : issue.message;
  throw new MicrovmError('E_BAD_OPTION', `invalid ${what} option ${field}: ${detail} (got ${describe(got)})`);
}

/** A failed parse's first problem; zod reports at least one, the fallback only keeps the type honest. */
export function firstIssue(error: z.ZodError): z.ZodIssue {
  return error.issues[0] ?? { code: 'custom', path: [], message: error.message };
}

/** The value at a zod issue's path, to quote it in an error. */
export function valueAt(value: unknown, path: ReadonlyArray<string | number>): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

function describe(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'function') return 'a function';
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
