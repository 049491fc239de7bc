import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Image } from '../../engine';
import { debianArm64Image } from '../../test/helpers/debian-arm64';
import { pushImage } from '../../test/helpers/registry-push';
import { startRegistry } from '../../test/helpers/registry-server';
import { rawBootMs, rawContext, rawEchoRoundTrips } from '../raw-qemu';
import { rawRestore } from '../raw-restore';
import { GroupResult, Series } from '../types';
import { engineBootMs } from './boot';
import { execTrue, timeCalls } from './exec';
import { acquireRestoreMs, templateRestoreTarget } from './pool';
import { Sizes } from './sizes';

/**
 * aarch64 guests (qemu-system-aarch64 -M virt; TCG on an x86_64 host): the boot, restore and
 * exec rows of the x86_64 groups for an image of Debian's arm64 packages (the VM tests'
 * test/helpers/debian-arm64.ts, pushed to a loopback registry and pulled), each beside the
 * same raw QEMU baseline run with the aarch64 kernel, initramfs and qemu-system-aarch64. The
 * ratio to that baseline is what compares with the x86_64 rows.
 */
export async function measureArm64(sizes: Sizes, log: (line: string) => void): Promise<GroupResult> {
  const raw = await rawContext('aarch64');
  const { snapshotted, fresh } = await arm64Images();
  log(`aarch64 under ${raw.accel}, ${raw.qemu.path} ${raw.qemu.version}`);

  await engineBootMs(fresh);
  await rawBootMs(raw);
  const boots: number[] = [];
  const rawBoots: number[] = [];
  for (let i = 0; i < sizes.boots; i++) {
    boots.push(await engineBootMs(fresh));
    rawBoots.push(await rawBootMs(raw));
    log(`arm64 boot ${i + 1}/${sizes.boots}: engine ${boots[i]?.toFixed(0)} ms, raw ${rawBoots[i]?.toFixed(0)} ms`);
  }

  const target = await templateRestoreTarget(snapshotted, 'arm64 restore rows');
  const restores: number[] = [];
  const rawRestores: number[] = [];
  const restorePool = snapshotted.pool({ min: 0, max: 1, acquireTimeoutMs: 0 });
  try {
    await acquireRestoreMs(restorePool);
    await rawRestore(raw, target);
    for (let i = 0; i < sizes.restores; i++) {
      restores.push(await acquireRestoreMs(restorePool));
      rawRestores.push((await rawRestore(raw, target)).agentMs);
      log(
        `arm64 restore ${i + 1}/${sizes.restores}: acquire ${restores[i]?.toFixed(0)} ms, raw ${rawRestores[i]?.toFixed(0)} ms`,
      );
    }
  } finally {
    await restorePool.shutdown();
  }

  const echo = await rawEchoRoundTrips(raw, sizes.roundTrips, sizes.warmupCalls);
  const execPool = snapshotted.pool({ min: 1, max: 1, acquireTimeoutMs: 0 });
  let execs: number[];
  try {
    const vm = await execPool.acquire();
    try {
      execs = await timeCalls(sizes, () => execTrue(vm));
    } finally {
      await vm.release();
    }
  } finally {
    await execPool.shutdown();
  }
  log(`arm64 exec true: ${execs.length} round trips, raw echo ${echo.length}`);

  const series = (name: string, values: number[]): Series => ({ name, unit: 'ms', better: 'lower', values });
  return {
    measurements: [
      { ours: series('arm64 spawn from disk', boots), baseline: series('raw aarch64 QEMU boot', rawBoots) },
      {
        ours: series('arm64 acquire with restore', restores),
        baseline: series('raw aarch64 QEMU restore', rawRestores),
      },
      { ours: series('arm64 exec true round trip', execs), baseline: series('raw aarch64 virtio-serial echo', echo) },
    ],
    notes: [
      `arm64 rows: an image of Debian's arm64 packages (bash, busybox-static) run as an aarch64 guest on qemu-system-aarch64 -M virt under ${raw.accel} (-cpu max,pauth-impdef=on under TCG), devices on PCI; the baselines are the x86_64 groups' raw QEMU boot, restore and virtio-serial echo run with the aarch64 kernel, initramfs and QEMU.`,
    ],
  };
}

/** The arm64 image, pulled once from a loopback registry: with its baked snapshot, and without. */
async function arm64Images(): Promise<{ snapshotted: Image; fresh: Image }> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-arm64-'));
  const registry = await startRegistry(tmp);
  try {
    await pushImage(registry.base, 'bench/debian-arm64', '1', debianArm64Image());
    const ref = `${registry.host}/bench/debian-arm64:1`;
    const snapshotted = await Image.build({ ref, pullPolicy: 'always' });
    const fresh = await Image.build({ ref, snapshot: false });
    return { snapshotted, fresh };
  } finally {
    await registry.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
