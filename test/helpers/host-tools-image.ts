import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { homePaths } from '../../engine/paths';
import { debianBaseLayer } from './debian-base';
import { blobOf, imageOf, indexOf, type Blob } from './image-fixtures';

const ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'];

/**
 * An OCI layout of the default Debian base plus the host's own Node and npm (Debian
 * bookworm's nodejs/npm on both sides, so the same glibc): a guest that can `npm install`.
 * Built once per MICROVM_HOME; returns the layout directory for Image.build({ ref }).
 */
export function nodeImageLayout(): string {
  const libs = ['/usr/lib/x86_64-linux-gnu/libstdc++.so.6', '/usr/lib/x86_64-linux-gnu/libgcc_s.so.1'];
  return hostToolsLayout('node', [process.execPath, '/usr/bin/npm', '/usr/lib/node_modules/npm', ...libs]);
}

/** The default base plus the host's git (bookworm's, with its helpers and templates). */
export function gitImageLayout(): string {
  return hostToolsLayout('git', [
    '/usr/bin/git',
    '/usr/lib/git-core',
    '/usr/share/git-core',
    ...sharedLibraries('/usr/bin/git'),
  ]);
}

/** The default base plus the host's Node and inotifywait (apt inotify-tools): file watchers in the guest. */
export function watchToolsImageLayout(): string {
  const libs = ['/usr/lib/x86_64-linux-gnu/libstdc++.so.6', '/usr/lib/x86_64-linux-gnu/libgcc_s.so.1'];
  return hostToolsLayout('watch-tools', [
    process.execPath,
    ...libs,
    '/usr/bin/inotifywait',
    ...sharedLibraries('/usr/bin/inotifywait'),
  ]);
}

/** The shared libraries an executable needs, as `ldd` lists them on this host. */
function sharedLibraries(executable: string): string[] {
  return execFileSync('ldd', [executable], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /=>\s*(\/\S+)/.exec(line)?.[1])
    .filter((lib): lib is string => lib !== undefined);
}

/**
 * A layout named `name` under MICROVM_HOME: the default base plus a layer of these host
 * files (symlinks kept, and their targets added). Built once; later calls return it.
 */
function hostToolsLayout(name: string, paths: string[]): string {
  const dir = path.join(homePaths.store(), '..', 'test-images', name);
  if (fs.existsSync(path.join(dir, 'index.json'))) return dir;
  // Each path under its real directory (/lib is a link to /usr/lib), and a link's target beside it.
  const files = paths
    .flatMap((p) => [path.join(fs.realpathSync(path.dirname(p)), path.basename(p)), fs.realpathSync(p)])
    .map((f) => f.slice(1));
  const tar = execFileSync('tar', ['-c', '-C', '/', '--owner=0', '--group=0', '--numeric-owner', ...new Set(files)], {
    maxBuffer: 512 * 1024 * 1024,
  });
  const layer = blobOf(tar, 'application/vnd.oci.image.layer.v1.tar');
  const image = imageOf([debianBaseLayer(), layer], { Env: ENV });
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
