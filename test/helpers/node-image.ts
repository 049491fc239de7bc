import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { homePaths } from '../../engine/paths';
import { debianBaseLayer } from './debian-base';
import { blobOf, imageOf, indexOf, type Blob } from './image-fixtures';

/**
 * An OCI layout of the default Debian base plus the host's own Node and npm (Debian
 * bookworm's nodejs/npm on both sides, so the same glibc): a guest that can `npm install`.
 * Built once per MICROVM_HOME; returns the layout directory for Image.build({ ref }).
 */
export function nodeImageLayout(): string {
  const dir = path.join(homePaths.store(), '..', 'test-images', 'node');
  if (fs.existsSync(path.join(dir, 'index.json'))) return dir;
  const nodeLib = fs.realpathSync('/usr/lib/node_modules/npm');
  const libs = ['/usr/lib/x86_64-linux-gnu/libstdc++.so.6', '/usr/lib/x86_64-linux-gnu/libgcc_s.so.1']
    .flatMap((lib) => [lib, fs.realpathSync(lib)]);
  const files = [fs.realpathSync(process.execPath), '/usr/bin/npm', nodeLib, ...libs]
    .map((f) => f.slice(1));
  const tar = execFileSync('tar', ['-c', '-C', '/', '--owner=0', '--group=0', '--numeric-owner', ...new Set(files)], { maxBuffer: 512 * 1024 * 1024 });
  const layer = blobOf(tar, 'application/vnd.oci.image.layer.v1.tar');
  const image = imageOf([debianBaseLayer(), layer], { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'] });
  const index = indexOf([{ manifest: image.manifest, platform: { os: 'linux', architecture: 'amd64' } }]);
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(path.join(tmp, 'blobs', 'sha256'), { recursive: true });
  const write = (blob: Blob) => fs.writeFileSync(path.join(tmp, 'blobs', 'sha256', blob.digest.slice(7)), blob.data);
  [image.config, image.manifest, ...image.layers].forEach(write);
  fs.writeFileSync(path.join(tmp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(tmp, 'index.json'), index.data);
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.renameSync(tmp, dir);
  return dir;
}
