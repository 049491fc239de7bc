import * as fs from 'node:fs';
import * as path from 'node:path';
import { MicrovmError } from '../errors';
import { BuildOptions, buildOptionsSchema, parseOptions, PoolOptions, poolOptionsSchema } from '../options';
import { homePaths } from '../paths';
import { Pool } from '../pool/pool';
import { ensureRootDisk } from '../rootfs';
import { Machine } from '../vm/machine';
import { reapStaleStateDirs } from '../vm/state-dir';
import { readOciLayout } from './oci-layout';
import { ImageConfig } from './types';
import { ProcessRequest } from '../agent/process';
import { mergeEnv } from './env';

export type BuildProgress =
  | { phase: 'resolve'; ref: string }
  | { phase: 'rootfs'; step: 'merge' | 'mkfs' | 'done'; bytes: number }
  | { phase: 'ready'; cached: boolean; ms: number };

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
    private readonly settings: { memoryMib: number; vcpus: number; bootTimeoutMs?: number; cmd?: string[] },
  ) {}

  /**
   * Resolves `ref` (default: the embedded default image) and builds its root disk, or
   * reuses the cached one. Local OCI image layout directories are supported.
   */
  static async build(options: BuildOptions = {}): Promise<Image> {
    const opts = parseOptions(buildOptionsSchema, options, 'Image.build');
    const started = Date.now();
    const progress = (event: BuildProgress) => opts.onProgress?.(event);
    reapStaleStateDirs();
    const layoutDir = resolveLayoutDir(opts.ref);
    progress({ phase: 'resolve', ref: opts.ref ?? 'default' });
    const resolved = await readOciLayout(layoutDir);
    const disk = await ensureRootDisk(resolved, {
      onProgress: (e) => progress({ phase: 'rootfs', step: e.phase, bytes: e.bytes }),
    });
    progress({ phase: 'ready', cached: disk.cached, ms: Date.now() - started });
    const config: ImageConfig = {
      ...resolved.config,
      env: mergeEnv(resolved.config.env, opts.env),
    };
    return new Image(opts.ref ?? 'default', opts.name ?? opts.ref ?? 'default', resolved.manifestDigest, config, disk.path, {
      memoryMib: opts.memoryMib,
      vcpus: opts.vcpus,
      bootTimeoutMs: opts.bootTimeoutMs,
      cmd: opts.cmd,
    });
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

  /** A pool of VMs of this image; it starts booting `min` VMs at once. */
  pool(options: PoolOptions = {}): Pool {
    const opts = parseOptions(poolOptionsSchema, options, 'pool');
    const spec = {
      rootDisk: this.rootDisk,
      memoryMib: opts.memoryMib ?? this.settings.memoryMib,
      vcpus: opts.vcpus ?? this.settings.vcpus,
      bootTimeoutMs: this.settings.bootTimeoutMs,
      workload: this.workload(),
    };
    return new Pool(() => Machine.boot(spec), this.config, opts);
  }
}

function resolveLayoutDir(ref: string | undefined): string {
  if (ref === undefined) {
    const dir = homePaths.defaultImage();
    if (!fs.existsSync(path.join(dir, 'index.json'))) {
      throw new MicrovmError('E_SETUP_MISSING', `the embedded default image is not built (${dir}); run \`npm run setup\``);
    }
    return dir;
  }
  const looksLikePath = ref.startsWith('/') || ref.startsWith('./') || ref.startsWith('../') || ref.startsWith('~');
  if (looksLikePath) {
    const dir = path.resolve(ref.replace(/^~(?=\/)/, process.env.HOME ?? '~'));
    if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
      throw new MicrovmError('E_IMAGE_NOT_FOUND', `image ${JSON.stringify(ref)} is not a directory; give the path of an OCI image layout (a directory with oci-layout and index.json)`);
    }
    return dir;
  }
  throw new MicrovmError('E_IMAGE_UNSUPPORTED',
    `image ${JSON.stringify(ref)} looks like a registry reference; this version runs local OCI image layout directories (give a path starting with / or ./) and the embedded default image (omit the image)`);
}
