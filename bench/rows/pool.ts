import { spawn } from 'node:child_process';
import { Image, Pool } from '../../engine';
import { RawContext } from '../raw-qemu';
import { rawRestore, RawRestoreTarget } from '../raw-restore';
import { summarize } from '../stats';
import { GroupResult } from '../types';
import { Sizes } from './sizes';

/**
 * pool.acquire() when a VM is idle (no QEMU work at all) against a host spawn of `true`,
 * and acquire when nothing is idle (min 0: restore from the snapshot, handshake, RESTORED
 * call) against a raw QEMU restore of the same snapshot timed to the first agent byte.
 */
export async function measurePool(
  image: Image,
  raw: RawContext,
  sizes: Sizes,
  log: (line: string) => void,
): Promise<GroupResult> {
  const target = await templateRestoreTarget(image, 'pool rows');

  const idle = await acquireIdleMs(image, sizes);
  log(`acquire idle: ${idle.values.length} acquires`);

  const restorePool = image.pool({ min: 0, max: 1, acquireTimeoutMs: 0 });
  const ours: number[] = [];
  const baseline: number[] = [];
  const running: number[] = [];
  try {
    await acquireRestoreMs(restorePool);
    await rawRestore(raw, target);
    for (let i = 0; i < sizes.restores; i++) {
      ours.push(await acquireRestoreMs(restorePool));
      const rawTiming = await rawRestore(raw, target);
      baseline.push(rawTiming.agentMs);
      running.push(rawTiming.runningMs);
      log(
        `restore ${i + 1}/${sizes.restores}: acquire ${ours[i]?.toFixed(0)} ms, raw ${baseline[i]?.toFixed(0)} ms (running at ${running[i]?.toFixed(0)} ms)`,
      );
    }
  } finally {
    await restorePool.shutdown();
  }
  const resume = summarize(running);
  return {
    measurements: [
      {
        ours: { name: 'acquire idle', unit: 'ms', better: 'lower', values: idle.values },
        baseline: { name: 'host spawn of true', unit: 'ms', better: 'lower', values: idle.spawns },
      },
      {
        ours: { name: 'acquire with restore', unit: 'ms', better: 'lower', values: ours },
        baseline: { name: 'raw QEMU restore', unit: 'ms', better: 'lower', values: baseline },
      },
    ],
    notes: [
      'acquire idle times pool.acquire() on a pool (min 1, restoreOnRelease false) whose VM is idle; the VM is released between calls.',
      `raw QEMU restore: QEMU started by hand with the engine's argv for the same snapshot (guest RAM file mapped share=off, -incoming unix:), QMP capabilities + x-ignore-shared written at once, the state file streamed over a Unix socket, then a raw HELLO frame on the agent socket (resent every 5 ms) at QMP's RESUME event; timed from spawn to the first byte of the agent's reply. QMP reported RESUME (status running) at p50 ${resume.p50.toFixed(0)} ms. acquire with restore is timed from acquire() to the VM in hand: restore and HELLO handshake. The RESTORED call (fresh RNG seed and clock) is pipelined behind the handshake, so its guest time (about 12 ms under TCG) lands on the caller's first request, which the agent answers after it.`,
    ],
  };
}

async function acquireIdleMs(image: Image, sizes: Sizes): Promise<{ values: number[]; spawns: number[] }> {
  const pool = image.pool({ min: 1, max: 1, acquireTimeoutMs: 0, restoreOnRelease: false });
  try {
    await waitIdle(pool, 1);
    for (let i = 0; i < sizes.warmupCalls; i++) await (await pool.acquire()).release();
    const values: number[] = [];
    const spawns: number[] = [];
    for (let i = 0; i < sizes.idleAcquires; i++) {
      if (pool.stats().idle !== 1)
        throw new Error(`bench: the pool has ${pool.stats().idle} idle VMs before acquire ${i}`);
      const started = performance.now();
      const vm = await pool.acquire();
      values.push(performance.now() - started);
      await vm.release();
      if (i % 10 === 0) spawns.push(await spawnTrueMs());
    }
    return { values, spawns };
  } finally {
    await pool.shutdown();
  }
}

export async function acquireRestoreMs(pool: Pool): Promise<number> {
  if (pool.stats().alive !== 0) throw new Error('bench: the restore pool should be empty before each acquire');
  const started = performance.now();
  const vm = await pool.acquire();
  const elapsed = performance.now() - started;
  await vm.release();
  return elapsed;
}

/** Polls until `count` VMs are idle in `pool` (restores run in the background). */
export async function waitIdle(pool: Pool, count: number, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pool.stats().idle < count) {
    if (Date.now() > deadline)
      throw new Error(`bench: only ${pool.stats().idle} of ${count} pooled VMs became idle within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function spawnTrueMs(): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('true', { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(performance.now() - started) : reject(new Error(`true exited ${code}`)),
    );
  });
}

/**
 * What a raw QEMU restore of `image`'s template snapshot needs (`rows` names the bench rows
 * that asked, in the error when there is none), with the bake's VM, which the image's first
 * pool gets when it was just baked, taken out of the way so later acquires restore.
 */
export async function templateRestoreTarget(image: Image, rows: string): Promise<RawRestoreTarget> {
  const snapshot = image.snapshot;
  if (!snapshot || snapshot.source.kind !== 'template' || !snapshot.source.memFile) {
    throw new Error(`bench: the ${rows} need an image with a template snapshot (Image.build with snapshot: true)`);
  }
  const record = image.record();
  const first = image.pool({ min: 0, max: 1, acquireTimeoutMs: 0 });
  try {
    await (await first.acquire()).release();
  } finally {
    await first.shutdown();
  }
  return {
    memFile: snapshot.source.memFile,
    stateFile: snapshot.source.stateFile,
    rootDisk: record.rootDisk,
    memoryMib: record.memoryMib,
    vcpus: record.vcpus,
    network: record.network,
  };
}
