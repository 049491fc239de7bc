import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Image } from '../../engine';
import { SLOW } from '../helpers/slow';

/** Load: 16 callers share a pool of at most 8 restored VMs for 500 cycles (150 in CI: test/helpers/slow.ts); nothing leaks. */
const CALLERS = 16;
const CYCLES = SLOW.skip ? 150 : 500;
const WARM_UP = 48;

/** QEMU processes this process started (tsx's esbuild service is a child too, and stays). */
function childPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((entry) => {
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
        const isChild = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid;
        return isChild && fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('qemu-system');
      } catch {
        return false;
      }
    })
    .map(Number);
}

const openFds = () => fs.readdirSync('/proc/self/fd').length;

test(`pool max 8: ${CYCLES} acquire/exec/release cycles from ${CALLERS} callers all succeed, and fds, children and RSS return to their warm level`, async () => {
  const image = await Image.build({});
  await image.snapshot?.handoff?.stop();
  const pool = image.pool({ min: 8, max: 8, acquireTimeoutMs: 0 });
  let started = 0;
  let failures = 0;
  const cycle = async (): Promise<void> => {
    const vm = await pool.acquire();
    try {
      const result = await vm.exec({ argv: ['echo', 'ok'] });
      if (result.stdout !== 'ok\n') failures++;
    } finally {
      await vm.release();
    }
  };
  const run = async (count: number) => {
    const limit = started + count;
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        while (started < limit) {
          started++;
          await cycle();
        }
      }),
    );
  };
  await run(WARM_UP);
  await waitForIdle(pool);
  global.gc?.();
  const warm = { fds: openFds(), children: childPids().length, rss: process.memoryUsage().rss };
  await run(CYCLES - WARM_UP);
  await waitForIdle(pool);
  global.gc?.();
  const end = { fds: openFds(), children: childPids().length, rss: process.memoryUsage().rss };
  assert.equal(failures, 0);
  assert.equal(started, CYCLES);
  assert.equal(warm.children, 8, 'the pool holds min VMs when warm');
  assert.equal(end.children, warm.children, 'QEMU processes: the pool holds the same number');
  assert.ok(end.fds <= warm.fds + 2, `open fds grew from ${warm.fds} to ${end.fds}`);
  assert.ok(end.rss - warm.rss < 48 * 1024 * 1024, `host RSS grew ${(end.rss - warm.rss) >> 20} MiB`);
  await pool.shutdown();
  assert.ok(await waitUntil(() => childPids().length === 0, 5000), 'no QEMU is left after shutdown');
});

async function waitForIdle(pool: { stats(): { idle: number; inUse: number; min: number } }): Promise<void> {
  assert.ok(
    await waitUntil(() => pool.stats().inUse === 0 && pool.stats().idle === pool.stats().min, 60_000),
    'the pool refills to min',
  );
}

async function waitUntil(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return check();
}
