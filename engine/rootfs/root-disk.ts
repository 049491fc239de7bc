import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { MicrovmError } from '../errors';
import { parseDigest } from '../image/digest';
import type { ResolvedImage } from '../image/types';
import { homePaths } from '../paths';
import { planMerge, type MergePlan, type PlanOptions } from './merge-plan';
import { mergedTar } from './merged-tar';
import { findMke2fs, runMke2fs } from './mkfs';
import { DEFAULT_TAR_LIMITS } from './tar-reader';
import { XattrPass } from './xattrs';

export interface RootDiskProgress {
  phase: 'merge' | 'mkfs' | 'done';
  bytes: number;
}

export interface RootDiskOptions {
  onProgress?: (event: RootDiskProgress) => void;
  /** Cap on each layer's decompressed size (default 16 GiB). */
  maxLayerBytes?: number;
}

/** Bumped whenever the disk layout changes, so old cache entries are not reused. */
const ROOTFS_FORMAT = 'microvm-rootfs-ext4-v2';
const MIB = 1024 * 1024;

/**
 * The ext4 root disk of an image, built from its layer chain and cached under
 * $MICROVM_HOME/rootfs by the chain of layer digests. A cache hit returns without reading layers.
 */
export async function ensureRootDisk(
  image: ResolvedImage,
  opts: RootDiskOptions = {},
): Promise<{ path: string; cached: boolean }> {
  const key = chainKey(image);
  const cacheDir = homePaths.rootfsCache();
  const finalPath = path.join(cacheDir, `${key}.ext4`);
  const hit = await fs.stat(finalPath).catch(() => null);
  if (hit?.isFile()) {
    opts.onProgress?.({ phase: 'done', bytes: hit.size });
    return { path: finalPath, cached: true };
  }
  await findMke2fs();
  await fs.mkdir(cacheDir, { recursive: true, mode: 0o700 }).catch((err: Error) => {
    throw new MicrovmError('E_STATE_DIR', `Cannot create ${cacheDir}: ${err.message}. Check MICROVM_HOME.`, { cause: err });
  });
  const planOptions: PlanOptions = {
    maxLayerBytes: opts.maxLayerBytes ?? 16 * 1024 * MIB,
    tarLimits: DEFAULT_TAR_LIMITS,
    onBytes: throttled((bytes) => opts.onProgress?.({ phase: 'merge', bytes })),
  };
  const plan = await planMerge(image.layers, planOptions);
  const tempPath = path.join(cacheDir, `.${key}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const xattrs = new XattrPass(image.source);
  try {
    await runMke2fs({
      imagePath: tempPath,
      sizeBytes: diskSize(plan),
      inodes: plan.inodeCount + 1024,
      tar: mergedTar(image.layers, plan, { ...planOptions, onBytes: undefined }, (p, x) => xattrs.add(p, x)),
      onBytes: throttled((bytes) => opts.onProgress?.({ phase: 'mkfs', bytes })),
    });
    await xattrs.apply(tempPath); // mke2fs keeps only security.capability.
    const handle = await fs.open(tempPath, 'r+');
    await handle.sync().finally(() => handle.close());
    await fs.rename(tempPath, finalPath);
  } catch (err) {
    await fs.rm(tempPath, { force: true });
    throw err;
  }
  opts.onProgress?.({ phase: 'done', bytes: (await fs.stat(finalPath)).size });
  return { path: finalPath, cached: false };
}

/** sha256 over the format version and the layer digests, bottom first. */
export function chainKey(image: ResolvedImage): string {
  const hash = createHash('sha256').update(`${ROOTFS_FORMAT}\n`);
  for (const layer of image.layers) {
    parseDigest(layer.digest, `layer of ${image.source}`);
    hash.update(`${layer.digest}\n`);
  }
  return hash.digest('hex');
}

/** 1.25x the content plus a block and an inode per entry, plus 64 MiB of headroom. The file is sparse. */
export function diskSize(plan: MergePlan): number {
  const perInode = 4096 + 256;
  const content = plan.contentBytes + plan.inodeCount * perInode;
  return Math.ceil((content * 1.25 + 64 * MIB) / MIB) * MIB;
}

function throttled(report: (bytes: number) => void): (bytes: number) => void {
  let last = -Infinity;
  return (bytes) => {
    if (bytes - last >= 4 * MIB) {
      last = bytes;
      report(bytes);
    }
  };
}
