import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { microvmHome } from '../../engine/paths';
import { blobOf, describe, gzipLayer, tarOf, type Entry, type TestImage } from './image-fixtures';
import { mmdebstrapLayer, type DebianBase } from './debian-images';

/**
 * An arm64 image from Debian's arm64 packages (bash, busybox-static and inotify-tools, with their
 * libraries), for the aarch64 guest tests. mmdebstrap's `extract` variant unpacks the packages without
 * running their maintainer scripts, so no arm64 binary runs on the host (no qemu-user or
 * binfmt needed); a second layer adds what those scripts and the default image would have:
 * /etc/passwd and /etc/group, /bin/sh, and busybox applet links. Kept under
 * $MICROVM_HOME/test-images: only the first run pays for it (about 15 s).
 */
const SUITE = 'bookworm';
const RECIPE = [
  '--arch=arm64',
  '--variant=extract',
  '--include=bash,busybox-static,inotify-tools',
  '--skip=output/dev',
  '--dpkgopt=path-exclude=/usr/share/man/*',
  '--dpkgopt=path-exclude=/usr/share/info/*',
  '--dpkgopt=path-exclude=/usr/share/locale/*',
  '--dpkgopt=path-exclude=/usr/share/doc/*',
  '--dpkgopt=path-include=/usr/share/doc/*/copyright',
  '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*',
];

/** Applets the tests (arm64.test.ts and the suites MICROVM_TEST_ARCH=aarch64 runs) use, linked in /usr/local/bin as the default image links every one. */
const APPLETS = [
  'awk',
  'base64',
  'basename',
  'cat',
  'chmod',
  'cmp',
  'cp',
  'cut',
  'date',
  'dd',
  'df',
  'diff',
  'dirname',
  'du',
  'echo',
  'env',
  'expr',
  'false',
  'find',
  'grep',
  'head',
  'hexdump',
  'hostname',
  'httpd',
  'id',
  'ip',
  'kill',
  'ln',
  'ls',
  'md5sum',
  'mkdir',
  'mount',
  'mv',
  'nc',
  'nslookup',
  'od',
  'printf',
  'ps',
  'readlink',
  'rm',
  'rmdir',
  'sed',
  'seq',
  'sha256sum',
  'sleep',
  'sort',
  'stat',
  'stty',
  'sync',
  'tail',
  'tee',
  'test',
  'timeout',
  'touch',
  'tr',
  'true',
  'truncate',
  'tty',
  'uname',
  'uniq',
  'wc',
  'which',
  'whoami',
  'xargs',
];

function debianArm64Base(): DebianBase {
  const recipe = createHash('sha256')
    .update(JSON.stringify([SUITE, RECIPE]))
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(microvmHome(), 'test-images', `debian-${SUITE}-arm64-extract-${recipe}`);
  return mmdebstrapLayer(dir, SUITE, RECIPE);
}

/** What the packages' maintainer scripts (and the default image's setup) would have added. */
function systemLayer(): DebianBase {
  const entries: Entry[] = [
    { path: 'etc/passwd', data: 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' },
    { path: 'etc/group', data: 'root:x:0:\nnogroup:x:65534:\n' },
    { path: 'bin/sh', type: 'symlink', linkpath: 'bash' },
    { path: 'usr/local/bin/', type: 'dir' },
    ...['srv/', 'dev/', 'proc/', 'sys/', 'run/'].map((p): Entry => ({ path: p, type: 'dir' })),
    ...APPLETS.map((a): Entry => ({ path: `usr/local/bin/${a}`, type: 'symlink', linkpath: '/bin/busybox' })),
  ];
  const tar = tarOf(entries);
  return { layer: gzipLayer(tar), diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}` };
}

/** A single-platform linux/arm64 image (a manifest, not an index): its config names the architecture. */
export function debianArm64Image(): TestImage {
  const base = debianArm64Base();
  const system = systemLayer();
  const config = blobOf(
    Buffer.from(
      JSON.stringify({
        architecture: 'arm64',
        os: 'linux',
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['bash'] },
        rootfs: { type: 'layers', diff_ids: [base.diffId, system.diffId] },
        history: [{ created_by: `mmdebstrap --arch=arm64 ${SUITE} (test image)` }, { created_by: 'system files' }],
      }),
    ),
    'application/vnd.oci.image.config.v1+json',
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: describe(config),
    layers: [describe(base.layer), describe(system.layer)],
  };
  return {
    manifest: blobOf(Buffer.from(JSON.stringify(manifest)), manifest.mediaType),
    config,
    layers: [base.layer, system.layer],
  };
}
