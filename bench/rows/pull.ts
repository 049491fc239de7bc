import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Image } from '../../engine';
import { debianBaseLayer } from '../../test/helpers/debian-base';
import { gzipLayer, imageOf, tarOf } from '../../test/helpers/image-fixtures';
import { pushImage } from '../../test/helpers/registry-push';
import { startRegistry } from '../../test/helpers/registry-server';
import { GroupResult } from '../types';

/** MB of incompressible data added to the Debian base layer, for an image of about 50 MB. */
const FILLER_MB = 40;

/**
 * Cold pull + root disk build of a ~50 MB image from Debian's docker-registry on loopback,
 * each time into an empty MICROVM_HOME, beside `skopeo copy` of the same image from the same
 * registry to an OCI layout; then the cache-hit Image.build of that image.
 */
export async function measurePull(samples: number, log: (line: string) => void): Promise<GroupResult> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-pull-'));
  const registry = await startRegistry(path.join(root, 'registry'));
  const savedHome = process.env.MICROVM_HOME;
  try {
    const filler = gzipLayer(tarOf([{ path: 'opt/filler.bin', data: randomBytes(FILLER_MB * 1024 * 1024) }]));
    const image = imageOf([debianBaseLayer(), filler], { Env: ['PATH=/usr/bin:/bin'] });
    await pushImage(registry.base, 'bench/app', '1', image);
    const ref = `${registry.host}/bench/app:1`;
    const sizeMb = [...image.layers, image.config].reduce((sum, b) => sum + b.data.length, 0) / 1e6;
    const ours: number[] = [];
    const skopeo: number[] = [];
    for (let i = 0; i < samples; i++) {
      process.env.MICROVM_HOME = path.join(root, `home-${i}`);
      let started = performance.now();
      await Image.build({ ref, snapshot: false });
      ours.push(performance.now() - started);
      const target = path.join(root, `skopeo-${i}`);
      started = performance.now();
      execFileSync(
        'skopeo',
        [
          'copy',
          '--quiet',
          '--src-tls-verify=false',
          `docker://${registry.directHost}/bench/app:1`,
          `oci:${target}:latest`,
        ],
        { stdio: 'ignore' },
      );
      skopeo.push(performance.now() - started);
      log(`cold pull ${i + 1}/${samples}: ${ours[i]?.toFixed(0)} ms, skopeo copy ${skopeo[i]?.toFixed(0)} ms`);
    }
    const hits: number[] = [];
    const noops: number[] = [];
    for (let i = 0; i < samples * 10; i++) {
      let started = performance.now();
      await Image.build({ ref, snapshot: false });
      hits.push(performance.now() - started);
      started = performance.now();
      fs.statSync(process.env.MICROVM_HOME as string);
      noops.push(performance.now() - started);
    }
    return {
      measurements: [
        {
          ours: { name: 'cold pull + disk build', unit: 'ms', better: 'lower', values: ours },
          baseline: { name: 'skopeo copy (no disk build)', unit: 'ms', better: 'lower', values: skopeo },
        },
        {
          ours: {
            name: 'cache-hit Image.build (registry image, no snapshot)',
            unit: 'ms',
            better: 'lower',
            values: hits,
          },
          baseline: { name: 'host stat of MICROVM_HOME', unit: 'ms', better: 'lower', values: noops },
        },
      ],
      notes: [
        `Cold pull: a ${sizeMb.toFixed(0)} MB image (the Debian base layer and ${FILLER_MB} MB of incompressible data) from Debian's docker-registry on 127.0.0.1, into an empty MICROVM_HOME each time; ours includes building the ext4 root disk, skopeo only copies blobs. The cache-hit target is 20 ms.`,
      ],
    };
  } finally {
    if (savedHome === undefined) delete process.env.MICROVM_HOME;
    else process.env.MICROVM_HOME = savedHome;
    await registry.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}
