import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { abortedOr, throwIfAborted } from '../abort';
import { MicrovmError } from '../errors';
import { parseDigest } from '../image/digest';
import type { ResolvedImage } from '../image/types';
import { homePaths } from '../paths';
import { tempPath } from '../temp-files';
import { checkDisk, writeDiskRecord } from './disk-record';
import { planMerge, type MergePlan, type PlanOptions } from './merge-plan';
import { mergedTar } from './merged-tar';
import { findMke2fs, runMke2fs } from './mkfs';
import { DEFAULT_TAR_LIMITS } from '../tar/reader';
import { XattrPass } from './xattrs';

export interface RootDiskProgress {
  phase: 'merge' | 'mkfs' | 'done';
  bytes: number;
}

export interface RootDiskOptions {
  onProgress?: (event: RootDiskProgress) => void;
  /** Told why the cached disk cannot be used (truncated, corrupted) before it is built again. */
  onRebuild?: (reason: string) => void;
  /** Cap on each layer's decompressed size (default 16 GiB). */
  maxLayerBytes?: number;
  /** Aborting stops reading layers and kills mke2fs; the partial disk is removed (E_ABORTED). */
  signal?: AbortSignal;
}

/** Bumped whenever the disk layout changes, so old cache entries are not reused. */
const ROOTFS_FORMAT = 'microvm-rootfs-ext4-v2';
const MIB = 1024 * 1024;
const ROOTFS_STEP = 'building the root disk';

export interface RootDisk {
  path: string;
  cached: boolean;
  /** The disk's sha256, recorded when it was built. */
  sha256: string;
}

/**
 * The ext4 root disk of an image, built from its layer chain and cached under
 * $MICROVM_HOME/rootfs by the chain of layer digests. A cache hit returns without reading
 * layers, after checking the disk against its record (engine/rootfs/disk-record.ts).
 */
export async function ensureRootDisk(image: ResolvedImage, opts: RootDiskOptions = {}): Promise<RootDisk> {
  const key = chainKey(image);
  const cacheDir = homePaths.rootfsCache();
  const finalPath = path.join(cacheDir, `${key}.ext4`);
  const hit = await checkDisk(finalPath);
  if (hit.ok) {
    opts.onProgress?.({ phase: 'done', bytes: (await fs.stat(finalPath)).size });
    return { path: finalPath, cached: true, sha256: hit.sha256 };
  }
  if (!hit.missing)
    opts.onRebuild?.(`the cached root disk ${finalPath} cannot be used: ${hit.reason}; building it again`);
  throwIfAborted(opts.signal, ROOTFS_STEP);
  await findMke2fs();
  await fs.mkdir(cacheDir, { recursive: true, mode: 0o700 }).catch((err: Error) => {
    throw new MicrovmError('E_STATE_DIR', `cannot create ${cacheDir}: ${err.message}; check MICROVM_HOME`, {
      cause: err,
    });
  });
  const planOptions: PlanOptions = {
    maxLayerBytes: opts.maxLayerBytes ?? 16 * 1024 * MIB,
    tarLimits: DEFAULT_TAR_LIMITS,
    onBytes: throttled((bytes) => opts.onProgress?.({ phase: 'merge', bytes })),
    signal: opts.signal,
  };
  const plan = await planMerge(image.layers, planOptions);
  const temp = tempPath(cacheDir);
  const xattrs = new XattrPass(image.source);
  let sha256: string;
  try {
    await runMke2fs({
      imagePath: temp,
      sizeBytes: diskSize(plan),
      inodes: plan.inodeCount + 1024,
      tar: mergedTar(image.layers, plan, { ...planOptions, onBytes: undefined }, (p, x) => xattrs.add(p, x)),
      onBytes: throttled((bytes) => opts.onProgress?.({ phase: 'mkfs', bytes })),
      signal: opts.signal,
    });
    throwIfAborted(opts.signal, ROOTFS_STEP);
    await xattrs.apply(temp, opts.signal); // mke2fs keeps only security.capability.
    const handle = await fs.open(temp, 'r+');
    await handle.sync().finally(() => handle.close());
    // The record first: a kill before the rename leaves a record no disk matches, never the reverse.
    sha256 = (await writeDiskRecord(temp, finalPath)).sha256;
    await fs.rename(temp, finalPath);
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw abortedOr(err, opts.signal, ROOTFS_STEP);
  }
  opts.onProgress?.({ phase: 'done', bytes: (await fs.stat(finalPath)).size });
  return { path: finalPath, cached: false, sha256 };
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
