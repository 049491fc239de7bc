/** The runtime settings of an image, taken from its config blob (`config` object). */
export interface ImageConfig {
  env: string[];
  entrypoint: string[];
  cmd: string[];
  workingDir: string;
  user: string;
  /** The image's EXPOSE'd TCP ports (config.ExposedPorts), when it declares any. */
  exposedPorts?: number[];
  /** The config's `architecture` (OCI names: amd64, arm64), when it names one: the guest runs as it. */
  architecture?: string;
}

/** One layer of the chain, bottom first. `path` is the blob file; its bytes are not yet verified. */
export interface LayerBlob {
  digest: string;
  mediaType: string;
  size: number;
  path: string;
}

export interface ResolvedImage {
  source: string;
  manifestDigest: string;
  configDigest: string;
  config: ImageConfig;
  layers: LayerBlob[];
}

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

export type LayerCompression = 'none' | 'gzip' | 'zstd';

/** Layer media types we can unpack, and how each is compressed. */
export const LAYER_MEDIA_TYPES: Readonly<Record<string, LayerCompression>> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar.zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
};

export const INDEX_MEDIA_TYPES: readonly string[] = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList];
export const MANIFEST_MEDIA_TYPES: readonly string[] = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest];
export const CONFIG_MEDIA_TYPES: readonly string[] = [MEDIA_TYPES.ociConfig, MEDIA_TYPES.dockerConfig];

/** Manifests, indexes and configs larger than this are refused before they are read. */
export const MAX_JSON_DOCUMENT_BYTES = 4 * 1024 * 1024;
