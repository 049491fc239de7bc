import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { microvmHome } from '../../engine/paths';
import { blobOf, type Blob, type TestImage } from './image-fixtures';

/**
 * Debian base images for build tests, made here from Debian packages with mmdebstrap (as the
 * builder image is) and kept under $MICROVM_HOME/test-images, so only the first run pays for
 * it (about a minute). `minbase` has apt and dpkg: a Dockerfile can `apt-get install` from
 * Debian's mirror, which the builder VM reaches over its NAT.
 */
export interface DebianBase {
  /** The gzip layer. */
  layer: Blob;
  /** sha256 of the uncompressed layer (the config's diff_id). */
  diffId: string;
}

const SUITE = 'bookworm';
const RECIPE = [
  '--variant=minbase',
  '--dpkgopt=path-exclude=/usr/share/man/*',
  '--dpkgopt=path-exclude=/usr/share/info/*',
  '--dpkgopt=path-exclude=/usr/share/locale/*',
  '--dpkgopt=path-exclude=/usr/share/doc/*',
  '--dpkgopt=path-include=/usr/share/doc/*/copyright',
  '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*',
];

/** Debian minbase, plus `include` packages (e.g. `nodejs` for a stand-in of Docker Hub's node image). */
export function debianMinbase(include: string[] = []): DebianBase {
  const recipe = createHash('sha256')
    .update(JSON.stringify([SUITE, RECIPE, ...(include.length > 0 ? [include] : [])]))
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(
    microvmHome(),
    'test-images',
    `debian-${SUITE}-minbase${include.length > 0 ? '-plus' : ''}-${recipe}`,
  );
  return mmdebstrapLayer(dir, SUITE, [...RECIPE, ...(include.length > 0 ? [`--include=${include.join(',')}`] : [])]);
}

/**
 * The layer mmdebstrap makes of Debian `suite` with `options`, built once into `dir` (in a temp
 * dir renamed into place, so an interrupted build leaves nothing half-made) and read from there after.
 */
export function mmdebstrapLayer(dir: string, suite: string, options: string[]): DebianBase {
  const layerFile = path.join(dir, 'layer.tar.gz');
  const diffIdFile = path.join(dir, 'diff-id');
  if (!fs.existsSync(diffIdFile)) {
    const work = `${dir}.tmp-${process.pid}`;
    fs.rmSync(work, { recursive: true, force: true });
    fs.mkdirSync(work, { recursive: true });
    try {
      const tar = path.join(work, 'layer.tar');
      execFileSync('mmdebstrap', [...options, suite, tar, 'http://deb.debian.org/debian'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, SOURCE_DATE_EPOCH: '0' },
      });
      const bytes = fs.readFileSync(tar);
      fs.writeFileSync(path.join(work, 'layer.tar.gz'), gzipSync(bytes, { level: 6 }));
      fs.writeFileSync(path.join(work, 'diff-id'), `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
      fs.rmSync(tar);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(work, dir);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
  return {
    layer: blobOf(fs.readFileSync(layerFile), 'application/vnd.oci.image.layer.v1.tar+gzip'),
    diffId: fs.readFileSync(diffIdFile, 'utf8'),
  };
}

/** An image of one Debian layer with a config like Docker Hub's debian (PATH, bash, no working directory); `expose` as EXPOSE would. */
export function debianImage(base: DebianBase, expose: string[] = []): TestImage {
  const config = blobOf(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {
          Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
          Cmd: ['bash'],
          ...(expose.length > 0 ? { ExposedPorts: Object.fromEntries(expose.map((p) => [p, {}])) } : {}),
        },
        rootfs: { type: 'layers', diff_ids: [base.diffId] },
        history: [{ created_by: `mmdebstrap ${SUITE} minbase (test image)` }],
      }),
    ),
    'application/vnd.oci.image.config.v1+json',
  );
  const describe = (b: Blob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: describe(config),
    layers: [describe(base.layer)],
  };
  return { manifest: blobOf(Buffer.from(JSON.stringify(manifest)), manifest.mediaType), config, layers: [base.layer] };
}
