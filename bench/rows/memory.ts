import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { engineInfo, Image, Pool } from '../../engine';
import { engineHome } from '../engine-home';
import { MAPPING_KINDS, ProcessMemory, processMemory } from '../smaps';
import { GroupResult, RowMeasurement } from '../types';
import { waitIdle } from './pool';
import { Sizes } from './sizes';

/** Idle VMs get this long after their restore before their memory is read. */
const SETTLE_MS = 2000;

/**
 * Private (USS) and proportional (PSS) memory of each idle pooled VM's QEMU, for a pool of
 * 1 and of N, against the guest RAM size. Restored VMs map the snapshot's RAM file
 * privately, so only pages the guest writes after the restore are copied.
 */
export async function measureMemory(sizes: Sizes, log: (line: string) => void): Promise<GroupResult> {
  // A snapshot of its own, so that no other process (a test run, another bench) maps the
  // same RAM file and makes its page cache look shared.
  const snapshotsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-memory-'));
  try {
    return await measureMemoryIn(await Image.build({ snapshotsDir }), sizes, log);
  } finally {
    fs.rmSync(snapshotsDir, { recursive: true, force: true });
  }
}

async function measureMemoryIn(image: Image, sizes: Sizes, log: (line: string) => void): Promise<GroupResult> {
  const guestKib = image.record().memoryMib * 1024;
  const memFile = image.snapshot?.source.memFile;
  if (!memFile) throw new Error('bench: the memory rows need an image with a template snapshot');
  // The first pool of a freshly baked image adopts the bake's VM, which is a fresh boot: skip it.
  const first = image.pool({ min: 0, max: 1, acquireTimeoutMs: 0 });
  await first.shutdown();

  const kernelKib = Math.round(fs.statSync(await engineHome.kernel()).size / 1024);
  const { accel } = await engineInfo();
  const measurements: RowMeasurement[] = [];
  const notes: string[] = [];
  const perVm = { name: 'guest RAM per VM', unit: 'KiB' as const, better: 'lower' as const, values: [guestKib] };
  for (const count of [1, sizes.memoryVms]) {
    const readings = await idlePoolMemory(image, count, memFile);
    const label = count === 1 ? '1 VM' : `${count} VMs`;
    log(`memory, ${label}: USS ${readings.map((r) => r.uss).join(', ')} KiB`);
    measurements.push(
      {
        ours: {
          name: `idle memory per VM, USS (${label})`,
          unit: 'KiB',
          better: 'lower',
          values: readings.map((r) => r.uss),
        },
        baseline: perVm,
      },
      {
        ours: {
          name: `idle memory per VM, PSS (${label})`,
          unit: 'KiB',
          better: 'lower',
          values: readings.map((r) => r.pss),
        },
        baseline: perVm,
      },
    );
    if (count > 1) {
      measurements.push({
        ours: {
          name: `pool of ${count} idle VMs total`,
          unit: 'KiB',
          better: 'lower',
          values: [sum(readings.map((r) => r.pss))],
        },
        baseline: { name: `guest RAM of ${count} VMs`, unit: 'KiB', better: 'lower', values: [count * guestKib] },
      });
    }
    const average = (pick: (r: ProcessMemory) => number) => Math.round(sum(readings.map(pick)) / readings.length);
    notes.push(
      `Idle memory split (${label}, mean per QEMU, private KiB from /proc/PID/smaps): ` +
        MAPPING_KINDS.map((k) => `${k} ${average((r) => r.privateBy[k])}`).join(', ') +
        `; guest RAM file pages resident in all ${average((r) => r.guestRamFilePages)} KiB; RSS ${average((r) => r.rss)} KiB; ` +
        `largest single anonymous block ${average((r) => r.largestAnonymous)} KiB (the guest kernel file is ${kernelKib} KiB).`,
    );
    if (count === sizes.memoryVms) {
      const uss = average((r) => r.uss);
      const cow = average((r) => r.privateBy['guest RAM copied on write']);
      notes.push(
        `Under ${accel.toUpperCase()} the private memory of an idle restored VM is mostly QEMU itself, not guest RAM: of ${uss} KiB USS (${label}), ` +
          `the guest RAM copied on write is ${cow} KiB (${((cow / uss) * 100).toFixed(1)}%), the TCG translation cache ${average((r) => r.privateBy['TCG translation cache'])} KiB, ` +
          `QEMU's binary and libraries ${average((r) => r.privateBy['QEMU binary and libraries'])} KiB and its heap and other anonymous memory ${average((r) => r.privateBy['QEMU heap and other anonymous'])} KiB. ` +
          `The largest anonymous block, ${average((r) => r.largestAnonymous)} KiB, is the size of the guest kernel file less its setup header: QEMU's copy of the -kernel image ` +
          "(x86 Linux boot through fw_cfg), which a restored guest never reads again. The snapshot's RAM file pages are page cache shared by every clone.",
      );
    }
  }
  notes.push(
    'With 1 VM, the snapshot RAM file pages it has touched count as private in smaps (no other process maps them), so its USS includes them; ' +
      'they are page cache of the snapshot file, reclaimable, and become shared as soon as a second clone maps them.',
  );
  notes.push(
    `Memory is measured on VMs restored from a snapshot baked for this group in a private directory, read ${SETTLE_MS / 1000} s after the pool reports its VMs idle. USS = Private_Clean + Private_Dirty and PSS from /proc/PID/smaps_rollup of each QEMU process; ` +
      'the pool total is the sum of PSS (shared pages counted once across the pool). Ratios are against the guest RAM size.',
  );
  return { measurements, notes };
}

async function idlePoolMemory(image: Image, count: number, memFile: string): Promise<ProcessMemory[]> {
  const pool: Pool = image.pool({ min: count, max: count, acquireTimeoutMs: 0 });
  try {
    await waitIdle(pool, count);
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const pids = pool.stats().idlePids;
    if (pids.length !== count) throw new Error(`bench: expected ${count} idle VMs, found ${pids.length}`);
    return pids.map((pid) => processMemory(pid, memFile));
  } finally {
    await pool.shutdown();
  }
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
