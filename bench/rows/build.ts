import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildImage, BUILDER_VOLUME, removeVolume } from '../../engine';
import { engineHome } from '../engine-home';
import { debianImage, debianMinbase } from '../../test/helpers/debian-images';
import type { TestImage } from '../../test/helpers/image-fixtures';
import { pushImage } from '../../test/helpers/registry-push';
import { startRegistry } from '../../test/helpers/registry-server';
import { GroupResult } from '../types';

/** A small two-stage Dockerfile without network steps, so both sides do the same work offline. */
const DOCKERFILE = `ARG BASE=debian:bookworm
FROM \${BASE} AS tools
RUN seq 1 200000 | gzip > /numbers.gz
FROM \${BASE}
RUN useradd -m -u 1000 dev
COPY --from=tools /numbers.gz /opt/numbers.gz
USER dev
WORKDIR /home/dev
COPY --chown=dev:dev app/ /home/dev/app/
`;

const REGISTRIES_CONF = 'unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n';

/**
 * Dockerfile builds: the engine's builder microVM against buildah run directly on the host
 * (chroot isolation, overlay storage in a fresh root, the same Dockerfile, context and base
 * image), in the same run. Cold: an empty builder cache volume and no stored result (the base
 * image is in the host's content store; the host's buildah gets it from an OCI layout) and,
 * on the host, empty storage; both end with the image exported (ours: imported into the
 * content store). Cache hit: nothing changed (ours: the result lookup; the host: `buildah bud`
 * with every step cached). Late-step rebuild: one file the last COPY reads changed.
 */
export async function measureBuild(
  samples: { cold: number; hits: number; rebuilds: number },
  log: (line: string) => void,
): Promise<GroupResult> {
  // Lower case: buildah names an image pulled from a layout after the layout's path.
  const root = path.join(os.tmpdir(), `microvm-bench-build-${process.pid}`);
  fs.mkdirSync(root);
  const registry = await startRegistry(path.join(root, 'registry'));
  const savedMirrors = process.env.MICROVM_REGISTRY_MIRRORS;
  try {
    const image = debianImage(debianMinbase());
    await pushImage(registry.base, 'library/debian', 'bookworm', image);
    process.env.MICROVM_REGISTRY_MIRRORS = `docker.io=${registry.base}`;
    const layout = writeLayout(path.join(root, 'base-layout'), image);
    const ctx = path.join(root, 'ctx');
    fs.mkdirSync(path.join(ctx, 'app'), { recursive: true });
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), DOCKERFILE);
    const edit = (i: number) => fs.writeFileSync(path.join(ctx, 'app', 'data.txt'), `edit ${i}\n`);
    edit(0);
    const host = hostBuildah(path.join(root, 'host'), ctx);
    const ours = async () => {
      const started = performance.now();
      const result = await buildImage({ context: ctx });
      return { ms: performance.now() - started, cached: result.cached };
    };

    const cold: number[] = [];
    const hostCold: number[] = [];
    for (let i = 0; i < samples.cold; i++) {
      await removeVolume(BUILDER_VOLUME);
      fs.rmSync(engineHome.builds(), { recursive: true, force: true });
      cold.push((await ours()).ms);
      hostCold.push(host.cold(layout));
      log(`cold build ${i + 1}/${samples.cold}: ${cold[i]?.toFixed(0)} ms, host buildah ${hostCold[i]?.toFixed(0)} ms`);
    }
    const hits: number[] = [];
    const hostHits: number[] = [];
    await ours();
    for (let i = 0; i < samples.hits; i++) {
      const hit = await ours();
      if (!hit.cached) throw new Error('bench: the unchanged rebuild was not a cache hit');
      hits.push(hit.ms);
      hostHits.push(host.build(false));
    }
    log(`cache-hit build: ${hits.length} lookups`);
    const rebuilds: number[] = [];
    const hostRebuilds: number[] = [];
    for (let i = 0; i < samples.rebuilds; i++) {
      edit(i + 1);
      rebuilds.push((await ours()).ms);
      hostRebuilds.push(host.build(true));
      log(
        `late-step rebuild ${i + 1}/${samples.rebuilds}: ${rebuilds[i]?.toFixed(0)} ms, host buildah ${hostRebuilds[i]?.toFixed(0)} ms`,
      );
    }
    return {
      measurements: [
        {
          ours: { name: 'cold Dockerfile build (builder VM)', unit: 'ms', better: 'lower', values: cold },
          baseline: {
            name: 'host buildah: pull + bud + push, empty storage',
            unit: 'ms',
            better: 'lower',
            values: hostCold,
          },
        },
        {
          ours: { name: 'cache-hit Dockerfile build (lookup)', unit: 'ms', better: 'lower', values: hits },
          baseline: { name: 'host buildah bud, every step cached', unit: 'ms', better: 'lower', values: hostHits },
        },
        {
          ours: { name: 'rebuild after a late-step edit', unit: 'ms', better: 'lower', values: rebuilds },
          baseline: {
            name: 'host buildah bud + push after the same edit',
            unit: 'ms',
            better: 'lower',
            values: hostRebuilds,
          },
        },
      ],
      notes: [builderSizes(), ...notesOn(image)],
    };
  } finally {
    if (savedMirrors === undefined) delete process.env.MICROVM_REGISTRY_MIRRORS;
    else process.env.MICROVM_REGISTRY_MIRRORS = savedMirrors;
    await registry.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** buildah on the host with its own storage under `dir`: the baseline, as root with chroot isolation. */
function hostBuildah(dir: string, ctx: string) {
  const conf = path.join(dir, 'registries.conf');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(conf, REGISTRIES_CONF);
  const storage = [
    '--root',
    path.join(dir, 'storage'),
    '--runroot',
    path.join(dir, 'run'),
    '--storage-driver',
    'overlay',
  ];
  const env = {
    ...process.env,
    BUILDAH_ISOLATION: 'chroot',
    CONTAINERS_REGISTRIES_CONF: conf,
    TMPDIR: path.join(dir, 'tmp'),
  };
  const buildah = (args: string[]) =>
    execFileSync('buildah', [...storage, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
      .toString()
      .trim();
  const timed = (work: () => void) => {
    const started = performance.now();
    work();
    return performance.now() - started;
  };
  const bud = () =>
    buildah(['bud', '--isolation', 'chroot', '--pull=never', '--layers', '--format', 'oci', '-t', 'bench-out', ctx]);
  const push = () => {
    fs.rmSync(path.join(dir, 'out.tar'), { force: true });
    buildah(['push', '--quiet', 'bench-out', `oci-archive:${path.join(dir, 'out.tar')}`]);
  };
  return {
    cold(layout: string): number {
      fs.rmSync(path.join(dir, 'storage'), { recursive: true, force: true });
      fs.mkdirSync(env.TMPDIR, { recursive: true });
      return timed(() => {
        const id = buildah(['pull', '--quiet', `oci:${layout}:base`]);
        buildah(['tag', id, 'docker.io/library/debian:bookworm']);
        bud();
        push();
      });
    },
    build(withPush: boolean): number {
      return timed(() => {
        bud();
        if (withPush) push();
      });
    },
  };
}

function writeLayout(dir: string, image: TestImage): string {
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const blob of [image.manifest, image.config, ...image.layers])
    fs.writeFileSync(path.join(dir, 'blobs', 'sha256', blob.digest.slice(7)), blob.data);
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const descriptor = {
    mediaType: image.manifest.mediaType,
    digest: image.manifest.digest,
    size: image.manifest.size,
    annotations: { 'org.opencontainers.image.ref.name': 'base' },
  };
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [descriptor] }));
  return dir;
}

/** The builder image's size as setup made it (compressed layer and tar) and its root disk. */
function builderSizes(): string {
  const blobs = path.join(engineHome.builderImage(), 'blobs', 'sha256');
  const layer =
    fs
      .readdirSync(blobs)
      .map((n) => fs.statSync(path.join(blobs, n)).size)
      .sort((a, b) => b - a)[0] ?? 0;
  const volume = path.join(engineHome.volumes(), `${BUILDER_VOLUME}.ext4`);
  const used = fs.existsSync(volume) ? fs.statSync(volume).blocks * 512 : 0;
  return `Builder image (buildah 1.28 from Debian bookworm, made by setup with mmdebstrap): ${(layer / 1e6).toFixed(1)} MB gzip layer; the builder cache volume holds ${(used / 1e6).toFixed(0)} MB after these builds.`;
}

function notesOn(image: TestImage): string[] {
  const base = image.layers.reduce((sum, l) => sum + l.size, 0) / 1e6;
  return [
    `Build rows: the same two-stage Dockerfile (a RUN, useradd, COPY --from, USER, a last COPY of the context) on a ${base.toFixed(0)} MB Debian bookworm minbase (mmdebstrap), built by the builder microVM (1536 MiB, 2 vCPUs) and by buildah on the host. Under TCG every guest step is emulated: the cold ratio is mostly loading the base into the builder's storage and its boot; the late-step ratio is the builder's boot, the context transfer and the export of the new layer.`,
  ];
}
