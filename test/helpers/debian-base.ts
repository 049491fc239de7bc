import * as fs from 'node:fs';
import * as path from 'node:path';
import { homePaths } from '../../engine/paths';
import { blobOf, type Blob } from './image-fixtures';

/**
 * The layer of the embedded default image (built by scripts/setup from Debian packages:
 * bash, coreutils, busybox, libc), used as the base of test images so the guest has a shell.
 */
export function debianBaseLayer(): Blob {
  const layout = homePaths.defaultImage();
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
  const blobFile = (digest: string) => path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const manifest = JSON.parse(fs.readFileSync(blobFile(index.manifests[0].digest), 'utf8'));
  const layer = manifest.layers[0];
  return blobOf(fs.readFileSync(blobFile(layer.digest)), layer.mediaType);
}
