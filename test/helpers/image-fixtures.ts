import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { encodeHeader, endOfArchive, paddingFor } from '../../engine/tar/writer';
import { newHeader, toBytePath, type TarHeader } from '../../engine/tar/types';

/** Test images built in memory: tar layers from entry lists, OCI manifests, configs. */
export type Entry = Partial<Omit<TarHeader, 'path' | 'linkpath'>> & {
  path: string;
  linkpath?: string;
  type?: TarHeader['type'];
  data?: Buffer | string;
};

export function tarOf(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const header = newHeader({
      ...e,
      type: e.type ?? 'file',
      path: toBytePath(e.path),
      size: data.length,
      linkpath: toBytePath(e.linkpath ?? ''),
    });
    delete (header as Partial<Entry>).data;
    parts.push(encodeHeader(header), data, Buffer.alloc(paddingFor(data.length)));
  }
  parts.push(endOfArchive());
  return Buffer.concat(parts);
}

export const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface Blob {
  mediaType: string;
  digest: string;
  size: number;
  data: Buffer;
}

export function blobOf(data: Buffer, mediaType: string): Blob {
  return { mediaType, digest: sha256(data), size: data.length, data };
}

export const gzipLayer = (tar: Buffer): Blob => blobOf(gzipSync(tar), 'application/vnd.oci.image.layer.v1.tar+gzip');

export interface TestImage {
  manifest: Blob;
  config: Blob;
  layers: Blob[];
}

/** The platform fields of an image config (and of an index entry). */
export interface FixturePlatform {
  os: string;
  architecture: string;
  variant?: string;
}

export function imageOf(
  layers: Blob[],
  config: Record<string, unknown> = {},
  platform: FixturePlatform = { architecture: 'amd64', os: 'linux' },
): TestImage {
  const configBlob = blobOf(
    Buffer.from(JSON.stringify({ ...platform, config, rootfs: { type: 'layers', diff_ids: [] } })),
    'application/vnd.oci.image.config.v1+json',
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: describe(configBlob),
    layers: layers.map(describe),
  };
  return { manifest: blobOf(Buffer.from(JSON.stringify(manifest)), manifest.mediaType), config: configBlob, layers };
}

export function indexOf(entries: Array<{ manifest: Blob; platform?: FixturePlatform }>): Blob {
  const doc = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: entries.map((e) => ({ ...describe(e.manifest), platform: e.platform })),
  };
  return blobOf(Buffer.from(JSON.stringify(doc)), doc.mediaType);
}

export function describe(blob: Blob): { mediaType: string; digest: string; size: number } {
  return { mediaType: blob.mediaType, digest: blob.digest, size: blob.size };
}
