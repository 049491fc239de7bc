import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { blobOf, tarOf, type TestImage } from './image-fixtures';
import { pushImage } from './registry-push';

/**
 * Dev container features as their publishers ship them (spec digest §4.6): the feature's
 * folder as one tar layer (`./`-prefixed entries, as the reference CLI packs them; gzip on
 * request), media type application/vnd.devcontainers.layer.v1+tar, a `{}` config of media type
 * application/vnd.devcontainers, and devcontainer-feature.json in the `dev.containers.metadata`
 * manifest annotation (left out on request, so the layer must be read).
 */
export type FeatureFiles = Record<string, string>;

export function featureArtifact(files: FeatureFiles, opts: { gzip?: boolean; annotate?: boolean } = {}): TestImage {
  const tar = tarOf([
    { path: './', type: 'dir' },
    ...Object.entries(files).map(([name, data]) => ({
      path: `./${name}`,
      data,
      mode: name.endsWith('.sh') ? 0o755 : 0o644,
    })),
  ]);
  const layer = blobOf(opts.gzip ? gzipSync(tar) : tar, 'application/vnd.devcontainers.layer.v1+tar');
  const config = blobOf(Buffer.from('{}'), 'application/vnd.devcontainers');
  const json = JSON.parse(files['devcontainer-feature.json']!) as { id: string };
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: [
      {
        mediaType: layer.mediaType,
        digest: layer.digest,
        size: layer.size,
        annotations: { 'org.opencontainers.image.title': `devcontainer-feature-${json.id}.tgz` },
      },
    ],
    ...(opts.annotate === false
      ? {}
      : { annotations: { 'dev.containers.metadata': files['devcontainer-feature.json'] } }),
  };
  return { manifest: blobOf(Buffer.from(JSON.stringify(manifest)), manifest.mediaType), config, layers: [layer] };
}

/** Pushes a feature under each tag (as publishers push X, X.Y, X.Y.Z and latest). */
export async function pushFeature(
  base: string,
  repository: string,
  tags: string[],
  artifact: TestImage,
): Promise<void> {
  for (const tag of tags) await pushImage(base, repository, tag, artifact);
}

/** A feature's files in a folder (a local feature). */
export function writeFeature(dir: string, files: FeatureFiles): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, data] of Object.entries(files))
    fs.writeFileSync(path.join(dir, name), data, { mode: name.endsWith('.sh') ? 0o755 : 0o644 });
}

/** devcontainer-feature.json plus an install.sh. */
export function feature(json: Record<string, unknown>, install: string): FeatureFiles {
  return {
    'devcontainer-feature.json': JSON.stringify(json, null, 2),
    'install.sh': `#!/bin/sh\nset -e\n${install}\n`,
  };
}
