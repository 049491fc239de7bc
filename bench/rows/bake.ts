import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Image } from '../../engine';
import { RawContext, rawBootMs } from '../raw-qemu';
import { GroupResult } from '../types';
import { spawnTrueMs } from './pool';
import { Sizes } from './sizes';

/**
 * Image.build of the default image with a snapshot: cold (a fresh snapshotsDir, so it boots,
 * saves the VM state and copies the guest RAM file) against a raw QEMU boot of the same
 * kernel and initramfs, and cache-hit (the snapshot is there and is checked) against a host
 * `child_process.spawn` of `true`. The pairs alternate so that host load hits both alike.
 */
export async function measureBake(raw: RawContext, sizes: Sizes, log: (line: string) => void): Promise<GroupResult> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-bake-'));
  try {
    await rawBootMs(raw);
    const cold: number[] = [];
    const boots: number[] = [];
    let lastDir = '';
    for (let i = 0; i < sizes.coldBakes; i++) {
      if (lastDir) fs.rmSync(lastDir, { recursive: true, force: true });
      lastDir = path.join(root, `cold-${i}`);
      cold.push(await buildMs(lastDir, true));
      boots.push(await rawBootMs(raw));
      log(`cold bake ${i + 1}/${sizes.coldBakes}: ${cold[i]?.toFixed(0)} ms, raw boot ${boots[i]?.toFixed(0)} ms`);
    }
    const hits: number[] = [];
    const spawns: number[] = [];
    for (let i = 0; i < 3; i++) {
      await buildMs(lastDir, false);
      await spawnTrueMs();
    }
    for (let i = 0; i < sizes.cacheHitBakes; i++) {
      hits.push(await buildMs(lastDir, false));
      spawns.push(await spawnTrueMs());
    }
    log(`cache-hit bake: ${hits.length} builds`);
    const [snapshotDir] = fs.readdirSync(lastDir);
    if (snapshotDir === undefined) throw new Error(`bench: the bake left nothing in ${lastDir}`);
    const stateBytes = fs.statSync(path.join(lastDir, snapshotDir, 'state')).size;
    return {
      measurements: [
        {
          ours: { name: 'cold bake', unit: 'ms', better: 'lower', values: cold },
          baseline: { name: 'raw QEMU boot', unit: 'ms', better: 'lower', values: boots },
        },
        {
          ours: { name: 'cache-hit bake', unit: 'ms', better: 'lower', values: hits },
          baseline: { name: 'host spawn of true', unit: 'ms', better: 'lower', values: spawns },
        },
      ],
      notes: [
        `A cold bake boots the default image (root disk already cached), saves the device state (${(stateBytes / 1024).toFixed(0)} KiB with x-ignore-shared) and copies and hashes the guest RAM file; a cache-hit bake re-reads the snapshot metadata, hashes the state file and stats the RAM file.`,
      ],
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** One Image.build into `snapshotsDir`; the bake's living VM (if any) is stopped after timing. */
async function buildMs(snapshotsDir: string, expectBake: boolean): Promise<number> {
  let baked = false;
  const started = performance.now();
  const image = await Image.build({
    snapshotsDir,
    onProgress: (e) => {
      if (e.phase === 'bake') baked = true;
    },
  });
  const elapsed = performance.now() - started;
  await image.snapshot?.handoff?.stop();
  if (baked !== expectBake)
    throw new Error(`Image.build ${expectBake ? 'did not bake' : 'baked again'} in ${snapshotsDir}`);
  return elapsed;
}
