import { onHostDisk } from '../disk-full';
import { throwIfAborted } from '../abort';
import { MicrovmError } from '../errors';
import { buildOptionsSchemaWith, parseOptions, PoolOptions, poolOptionsSchema } from '../options';
import type { z } from 'zod';
import { Pool } from '../pool/pool';
import { ensureRootDisk } from '../rootfs';
import { readDiskFile } from '../rootfs/read-file';
import * as path from 'node:path';
import type { BackendVm, BootSpec, ResumeSource, VmBackend } from '../backend/types';
import { qemuBackend } from '../backend/qemu';
import { defaultBackend } from '../backend/select';
import { homePaths } from '../paths';
import { Vm, type SnapshotOrigin } from '../vm/vm';
import { loadSnapshot } from '../snapshot/store';
import { prepareSnapshot, PreparedSnapshot } from '../snapshot/prepare';
import { SnapshotImage } from '../snapshot/meta';
import { reapStaleStateDirs } from '../vm/state-dir';
import { reapDeadWriters } from '../temp-files';
import { ContentStore } from '../image/content-store';
import { mergeEnv } from '../image/env';
import { imageKey, readExtraFiles, type ExtraFile } from '../image/extra-files';
import { reapAbandonedWrites } from '../image/prune';
import { checkMirrors } from '../image/registry/mirrors';
import type { PullProgress } from '../image/registry/pull';
import { parsePlatform } from '../image/platform';
import { resolveSource } from '../image/source';
import { ImageConfig } from '../image/types';
import { ProcessRequest } from '../agent/process';
import { hasNic, proxyEnv, usesEgressProxy, type NetworkMode, type ServiceLink } from '../qemu/network';
import { checkPatterns } from '../egress/policy';
import type { MountSpec, RootVolumeSpec, TmpfsSpec, VolumeSpec } from '../mount';
import { resolveMounts } from '../mount/resolve';
import { guestArchOf } from '../qemu/arch';
import type { GuestArch } from '../qemu/types';

/** What Image.build reports through `onProgress`, one phase at a time: resolve, pull, rootfs, bake, snapshot. */
export type BuildProgress =
  | { phase: 'resolve'; ref: string }
  /** What a killed process left behind (VM state directories, partial downloads and disks), now removed. */
  | { phase: 'cleanup'; removed: string[] }
  | PullProgress
  /** The cached root disk failed its check (truncated, corrupted) and is built again. */
  | { phase: 'rebuild'; reason: string }
  | { phase: 'rootfs'; step: 'merge' | 'mkfs' | 'done'; bytes: number }
  | { phase: 'ready'; cached: boolean; ms: number }
  | { phase: 'bake'; reason: string }
  | { phase: 'snapshot'; dir: string; baked: boolean };

/** Image.build's options, validated at the boundary (engine/options.ts): progress events are BuildProgress, the warmup gets the VM. */
export const buildOptionsSchema = buildOptionsSchemaWith<BuildProgress, Vm>();
/**
 * Image.build's options: the image reference, pull policy and mirrors, memory and vCPUs, the workload's
 * environment and command, network, mounts and volumes, extra files, the snapshot and its warm-up,
 * progress, the backend and signal. Unknown keys are refused with E_BAD_OPTION.
 */
export type BuildOptions = z.input<typeof buildOptionsSchema>;

interface ImageSettings {
  memoryMib: number;
  vcpus: number;
  bootTimeoutMs?: number;
  cmd?: string[];
  network: NetworkMode;
  /** Proxy modes: what the egress proxy allows (not part of the bake key: the proxy decides at run time). */
  allow?: readonly string[];
  /** Other VMs' ports (not part of the bake key: the guard decides at run time; only the NIC they add is). */
  serviceLinks?: ServiceLink[];
  mounts: MountSpec[];
  volumes: VolumeSpec[];
  tmpfs: TmpfsSpec[];
  rootVolume?: RootVolumeSpec;
  /** Images with mounts, volumes, tmpfs or a root volume boot fresh and run the warmup on every boot (see engine/mount/README.md). */
  warmupEachBoot?: (vm: Vm) => Promise<void>;
  /** The hypervisor this image's VMs run on. */
  backend: VmBackend;
}

const BUILD_STEP = 'Image.build';

/** How long the bake's still running VM waits for a pool before it is stopped. */
const HANDOFF_IDLE_MS = 30_000;

/**
 * A bootable image: a root disk built from an OCI image, its runtime config, and the VM
 * settings. Build once, then take VMs from pools.
 */
export class Image {
  private constructor(
    readonly ref: string,
    readonly name: string,
    readonly manifestDigest: string,
    readonly config: ImageConfig,
    readonly rootDisk: string,
    /** Host files (read at build time) that every VM of this image gets at start. */
    readonly extraFiles: readonly ExtraFile[],
    /** Changes whenever the layers, config, settings or an extra file's contents change. */
    readonly cacheKey: string,
    private readonly settings: ImageSettings,
  ) {}

  /**
   * Resolves `ref` (a registry reference, an OCI layout directory, an OCI archive, a docker
   * save tarball, or nothing for the embedded default image) and builds its root disk, or
   * reuses the cached one. With pullPolicy 'missing' (the default) a stored image is used
   * without any network access. Aborting `signal` stops whichever phase runs (pull, root
   * disk, bake) with E_ABORTED; what it leaves is what a build never started would.
   */
  static async build(options: BuildOptions = {}): Promise<Image> {
    const opts = parseOptions(buildOptionsSchema, options, 'Image.build');
    const { signal } = opts;
    throwIfAborted(signal, BUILD_STEP);
    const started = Date.now();
    const progress = (event: BuildProgress) => opts.onProgress?.(event);
    const store = new ContentStore();
    const snapshotsDir = opts.snapshotsDir ?? homePaths.snapshots();
    const removed = [...reapStaleStateDirs(), ...reapAbandonedWrites(store), ...reapDeadWriters(snapshotsDir)];
    if (removed.length > 0) progress({ phase: 'cleanup', removed });
    progress({ phase: 'resolve', ref: opts.ref ?? 'default' });
    const resolved = await onHostDisk(store.root, `storing image ${opts.ref ?? 'default'}`, () =>
      resolveSource(opts.ref, {
        pullPolicy: opts.pullPolicy,
        maxLayerBytes: opts.maxLayerBytes,
        store,
        onPull: progress,
        mirrors: opts.registryMirrors && checkMirrors(opts.registryMirrors, 'Image.build option registryMirrors'),
        signal,
        platform: opts.platform === undefined ? undefined : parsePlatform(opts.platform, 'Image.build option platform'),
      }),
    );
    throwIfAborted(signal, BUILD_STEP);
    const arch = guestArchOf(resolved.config.architecture, `image ${opts.ref ?? 'default'}`);
    const disk = await onHostDisk(homePaths.rootfsCache(), `building the root disk of ${opts.ref ?? 'default'}`, () =>
      ensureRootDisk(resolved, {
        maxLayerBytes: opts.maxLayerBytes,
        onProgress: (e) => progress({ phase: 'rootfs', step: e.phase, bytes: e.bytes }),
        onRebuild: (reason) => progress({ phase: 'rebuild', reason }),
        signal,
      }),
    );
    throwIfAborted(signal, BUILD_STEP);
    const extraFiles = await readExtraFiles(opts.extraFiles);
    progress({ phase: 'ready', cached: disk.cached, ms: Date.now() - started });
    const allow = checkPatterns(opts.allow, 'Image.build option allow');
    // Proxy modes: every process finds the proxy in its environment (the options' env may override).
    const env = usesEgressProxy(opts.network) ? { ...proxyEnv(), ...opts.env } : opts.env;
    const config: ImageConfig = {
      ...resolved.config,
      env: mergeEnv(resolved.config.env, env),
      ...(opts.user ? { user: opts.user } : {}),
    };
    const mounts = resolveMounts(opts.mounts);
    const storage =
      mounts.length > 0 || opts.volumes.length > 0 || opts.tmpfs.length > 0 || opts.rootVolume !== undefined;
    const settings: ImageSettings = {
      memoryMib: opts.memoryMib,
      vcpus: opts.vcpus,
      bootTimeoutMs: opts.bootTimeoutMs,
      cmd: opts.cmd,
      network: opts.network,
      allow,
      mounts,
      volumes: opts.volumes,
      tmpfs: opts.tmpfs,
      rootVolume: opts.rootVolume,
      serviceLinks: opts.serviceLinks,
      warmupEachBoot: storage ? opts.warmup : undefined,
      backend: opts.backend ?? defaultBackend(),
    };
    // A snapshot or suspended state holds the NIC's device state: one taken with a NIC only fits a VM with one.
    // The default backend adds nothing, so that snapshots baked before backends existed stay valid.
    const keyed = {
      ...settings,
      backend: settings.backend === qemuBackend ? undefined : settings.backend.name,
      allow: undefined,
      serviceLinks: undefined,
      linkNic: linkNic(settings) || undefined,
    };
    const key = imageKey({
      rootDisk: disk.path,
      configDigest: resolved.configDigest,
      settings: { ...keyed, env: config.env, user: config.user },
      extraFiles,
    });
    const ref = opts.ref ?? 'default';
    const image = new Image(
      ref,
      opts.name ?? ref,
      resolved.manifestDigest,
      config,
      disk.path,
      extraFiles,
      key,
      settings,
    );
    // QEMU 7.2 cannot migrate vhost-user-fs, and a snapshot's page cache would go stale
    // against a volume that changed since: such images boot fresh (engine/mount/README.md).
    // A backend that cannot snapshot boots every VM fresh.
    if (opts.snapshot && !storage && (await settings.backend.capabilities(arch)).snapshot) {
      image.snapshot = await prepareSnapshot({
        image: image.record(),
        rootDiskSha256: disk.sha256,
        optionsDigest: key,
        snapshotsDir,
        warmupTag: opts.warmupTag,
        warmup: opts.warmup,
        guestPort: opts.guestPort,
        listenerRequired: opts.listenerRequired,
        listenerTimeoutMs: opts.listenerTimeoutMs,
        boot: (bootSignal) =>
          image.bootWithExtraFiles({ ...image.bootSpec(settings.memoryMib, settings.vcpus), signal: bootSignal }),
        signal,
        onBake: (reason) => progress({ phase: 'bake', reason }),
      });
      progress({ phase: 'snapshot', dir: image.snapshot.dir, baked: image.snapshot.handoff !== undefined });
      image.expireHandoff();
    }
    return image;
  }

  /** Loads an image from a snapshot directory written by a bake or by vm.snapshot(dir). */
  static async fromSnapshot(dir: string): Promise<Image> {
    const loaded = await loadSnapshot(path.resolve(dir), undefined);
    if (!loaded.ok) throw new MicrovmError('E_SNAPSHOT_INVALID', `${dir} is not a usable snapshot: ${loaded.reason}`);
    const record = loaded.meta.image;
    // Taken with a NIC for service links: restored with one, whose links are none (their relays were that run's).
    const settings: ImageSettings = {
      memoryMib: record.memoryMib,
      vcpus: record.vcpus,
      network: record.network,
      serviceLinks: record.linkNic ? [] : undefined,
      mounts: [],
      volumes: [],
      tmpfs: [],
      // Snapshot directories hold QEMU's migration stream.
      backend: qemuBackend,
    };
    const image = new Image(
      record.ref,
      record.name,
      record.manifestDigest,
      record.config,
      record.rootDisk,
      [],
      loaded.meta.files.state.sha256,
      settings,
    );
    image.snapshot = { dir: path.resolve(dir), source: loaded.source };
    return image;
  }

  /**
   * The snapshot pools restore from; absent when built with `snapshot: false`.
   * @internal
   */
  snapshot: PreparedSnapshot | undefined;

  /** The image's manifest digest (`sha256:...`), as the seed API names it. */
  get digest(): string {
    return this.manifestDigest;
  }

  /** Guest memory of this image's VMs unless a pool asks for another size. */
  get memoryMib(): number {
    return this.settings.memoryMib;
  }

  /** Guest vCPUs of this image's VMs unless a pool asks for another count. */
  get vcpus(): number {
    return this.settings.vcpus;
  }

  /**
   * The snapshot directory pools restore from (Image.fromSnapshot takes it), or undefined when
   * the image boots fresh (`snapshot: false`, or mounts and volumes).
   */
  get snapshotPath(): string | undefined {
    return this.snapshot?.dir;
  }

  /** A small file of the image (its /etc/passwd, say), read from its root disk without booting; undefined when absent. */
  readFile(file: string): Promise<string | undefined> {
    return readDiskFile(this.rootDisk, file);
  }

  /** What a snapshot records about this image, so that Image.fromSnapshot can rebuild it. */
  record(): SnapshotImage {
    return {
      ref: this.ref,
      name: this.name,
      manifestDigest: this.manifestDigest,
      rootDisk: this.rootDisk,
      config: this.config,
      memoryMib: this.settings.memoryMib,
      vcpus: this.settings.vcpus,
      network: this.settings.network,
      ...(linkNic(this.settings) ? { linkNic: true as const } : {}),
    };
  }

  /** The workload runs only when Image.build was given `cmd`, after the image's entrypoint. */
  private workload(): ProcessRequest | undefined {
    if (!this.settings.cmd) return undefined;
    return {
      argv: [...this.config.entrypoint, ...this.settings.cmd],
      env: this.config.env,
      cwd: this.config.workingDir || '/',
      timeoutMs: 0,
      stageFiles: [],
      chain: [],
    };
  }

  /**
   * The bake's VM waits for the first pool of this image; an Image no pool is made of (one
   * built only to read its files, say) must not keep it running, nor its process alive.
   */
  private expireHandoff(): void {
    const snapshot = this.snapshot;
    if (!snapshot?.handoff) return;
    const timer = setTimeout(() => {
      const unused = snapshot.handoff;
      snapshot.handoff = undefined;
      void unused?.stop();
    }, HANDOFF_IDLE_MS);
    timer.unref();
  }

  /** A pool of VMs of this image; it starts booting `min` VMs at once. */
  pool(options: PoolOptions = {}): Pool<Image> {
    const opts = parseOptions(poolOptionsSchema, options, 'pool');
    const spec = {
      ...this.bootSpec(opts.memoryMib ?? this.settings.memoryMib, opts.vcpus ?? this.settings.vcpus),
      restoreTimeoutMs: opts.restoreTimeoutMs,
    };
    const snapshot = this.snapshot;
    const fitsSnapshot =
      snapshot !== undefined && spec.memoryMib === this.settings.memoryMib && spec.vcpus === this.settings.vcpus;
    const handoff = snapshot?.handoff;
    if (snapshot) snapshot.handoff = undefined;
    if (!fitsSnapshot) {
      void handoff?.stop();
      return new Pool(() => this.bootWithExtraFiles(spec), this.config, opts, undefined, this.snapshotOrigin());
    }
    return new Pool(
      () => this.settings.backend.boot(spec, snapshot.source),
      this.config,
      opts,
      handoff,
      this.snapshotOrigin(),
    );
  }

  /** What vm.snapshot() of this image's VMs records, and how it loads the result as an Image. */
  private snapshotOrigin(): SnapshotOrigin<Image> {
    return { image: this.record(), load: (dir) => Image.fromSnapshot(dir) };
  }

  /**
   * A workspace VM of this image on the q35 machine, its shares hot-plugged so that it can be
   * suspended (Vm.suspend): booted fresh, or resumed from a suspended state. Not pooled.
   */
  async workspaceVm(resume?: ResumeSource): Promise<Vm> {
    const { backend } = this.settings;
    if (!(await backend.capabilities(this.arch)).hotPlug) {
      throw new MicrovmError(
        'E_BAD_OPTION',
        `the ${backend.name} backend cannot hot-plug devices into ${this.arch} guests, so their workspace VMs cannot be suspended; open the workspace without warm reopen`,
      );
    }
    const spec: BootSpec = { ...this.bootSpec(this.settings.memoryMib, this.settings.vcpus), machine: 'q35' };
    const machine = resume ? await backend.boot(spec, resume) : await this.bootWithExtraFiles(spec);
    return new Vm(machine, this.config, (m) => m.stop());
  }

  /** The guest architecture this image's VMs run as (its config's `architecture`). */
  get arch(): GuestArch {
    return guestArchOf(this.config.architecture, `image ${this.ref}`);
  }

  private bootSpec(memoryMib: number, vcpus: number): BootSpec {
    return {
      rootDisk: this.rootDisk,
      ...(this.arch === 'x86_64' ? {} : { arch: this.arch }),
      memoryMib,
      vcpus,
      bootTimeoutMs: this.settings.bootTimeoutMs,
      workload: this.workload(),
      user: this.config.user,
      network: this.settings.network,
      serviceLinks: this.settings.serviceLinks,
      ...(usesEgressProxy(this.settings.network)
        ? { egress: { mode: this.settings.network as 'allowlist' | 'learn', allow: this.settings.allow ?? [] } }
        : {}),
      mounts: this.settings.mounts,
      volumes: this.settings.volumes,
      tmpfs: this.settings.tmpfs,
      rootVolume: this.settings.rootVolume,
    };
  }

  /**
   * Extra files are written through the agent once the VM answers. The workload (cmd) is
   * started by the boot before that, so it must not rely on them being present at its start.
   */
  private async bootWithExtraFiles(spec: BootSpec): Promise<BackendVm> {
    const machine = await this.settings.backend.boot(spec);
    try {
      for (const file of this.extraFiles) await machine.agent.writeFile(file.guestPath, file.data, file.mode);
    } catch (err) {
      await machine.stop().catch(() => undefined);
      throw new MicrovmError('E_AGENT_REFUSED', `cannot stage extra files in the VM: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const warmup = this.settings.warmupEachBoot;
    if (!warmup) return machine;
    try {
      const vm = new Vm(machine, this.config, async () => undefined);
      await warmup(vm);
      await vm.release();
    } catch (err) {
      await machine.stop().catch(() => undefined);
      throw new MicrovmError('E_WARMUP_FAILED', `the warmup callback failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return machine;
  }
}

/** The VM has a NIC only because of its service links (network 'none'). */
function linkNic(settings: Pick<ImageSettings, 'network' | 'serviceLinks'>): boolean {
  return hasNic(settings.network, settings.serviceLinks) && !hasNic(settings.network);
}
