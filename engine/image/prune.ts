import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { homePaths } from '../paths';
import { chainKey, diskRecordPath } from '../rootfs';
import { reapDeadWriters } from '../temp-files';
import { ContentStore } from './content-store';
import { listRecords, type ImageRecord } from './image-records';
import { readOciLayout } from './oci-layout';
import { resolvedFromStore, type StoredImage } from './stored-image';

export interface StoredImageInfo {
  record: ImageRecord;
  image: StoredImage | null;
  /** The root disk, when it is built. */
  rootDisk: string | null;
  bytes: number;
}

/** Every image the store has a record of, with its root disk when built. */
export async function listStoredImages(store = new ContentStore()): Promise<StoredImageInfo[]> {
  const infos: StoredImageInfo[] = [];
  for (const record of await listRecords(store)) {
    const image = await resolvedFromStore(store, record.ref, record.manifest).catch(() => null);
    const disk = image ? path.join(homePaths.rootfsCache(), `${chainKey(image)}.ext4`) : null;
    const diskStat = disk ? await fs.stat(disk).catch(() => null) : null;
    infos.push({
      record,
      image,
      rootDisk: diskStat ? disk : null,
      bytes: image ? image.layers.reduce((n, l) => n + l.size, 0) : 0,
    });
  }
  return infos;
}

/** Removes what killed pulls and disk builds left (partial blobs, records, disks); returns the paths. */
export function reapAbandonedWrites(store: ContentStore): string[] {
  return [...store.reapAbandoned(), ...reapDeadWriters(homePaths.rootfsCache())];
}

export interface PruneResult {
  blobs: number;
  disks: number;
  temp: number;
  bytes: number;
}

/**
 * Removes what no stored image uses: blobs outside every recorded image, root disks of no
 * recorded image (the default image's disk is kept; disks of other local layout directories
 * are rebuilt on their next use), and the partial downloads and disks of killed writers.
 */
export async function prune(store = new ContentStore()): Promise<PruneResult> {
  const result: PruneResult = { blobs: 0, disks: 0, temp: reapAbandonedWrites(store).length, bytes: 0 };
  const keepBlobs = new Set<string>();
  const keepDisks = new Set<string>();
  for (const { record, image } of await listStoredImages(store)) {
    if (!image) continue;
    keepBlobs.add(record.manifest.digest).add(image.configDigest);
    for (const layer of image.layers) keepBlobs.add(layer.digest);
    keepDisks.add(`${chainKey(image)}.ext4`);
  }
  const defaultImage = await readOciLayout(homePaths.defaultImage()).catch(() => null);
  if (defaultImage) keepDisks.add(`${chainKey(defaultImage)}.ext4`);
  for (const digest of await store.listBlobs()) {
    if (keepBlobs.has(digest)) continue;
    result.bytes += (await fs.stat(store.blobPath(digest)).catch(() => ({ size: 0 }))).size;
    await store.removeBlob(digest);
    result.blobs++;
  }
  const disksDir = homePaths.rootfsCache();
  for (const name of await fs.readdir(disksDir).catch(() => [] as string[])) {
    if (!/^[a-f0-9]{64}\.ext4$/.test(name) || keepDisks.has(name)) continue;
    const file = path.join(disksDir, name);
    result.bytes += (await fs.stat(file).catch(() => ({ blocks: 0 }))).blocks * 512;
    await fs.rm(file, { force: true });
    await fs.rm(diskRecordPath(file), { force: true });
    result.disks++;
  }
  return result;
}
