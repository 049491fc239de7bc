import { Image } from '../../engine';
import { RawContext, rawBootMs } from '../raw-qemu';
import { GroupResult } from '../types';
import { Sizes } from './sizes';

/**
 * Fresh boots through a pool of an image built with `snapshot: false` (acquire resolves at
 * the agent's first HELLO reply) against raw QEMU booting the same kernel and initramfs to
 * the probe marker. The two alternate, so drift in host load hits both alike. One untimed
 * boot of each warms the page cache.
 */
export async function measureBoot(raw: RawContext, sizes: Sizes, log: (line: string) => void): Promise<GroupResult> {
  const image = await Image.build({ snapshot: false });
  await engineBootMs(image);
  await rawBootMs(raw);
  const ours: number[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < sizes.boots; i++) {
    ours.push(await engineBootMs(image));
    baseline.push(await rawBootMs(raw));
    log(`spawn from disk ${i + 1}/${sizes.boots}: engine ${ours[i]?.toFixed(0)} ms, raw ${baseline[i]?.toFixed(0)} ms`);
  }
  return {
    measurements: [
      {
        ours: { name: 'spawn from disk', unit: 'ms', better: 'lower', values: ours },
        baseline: { name: 'raw QEMU boot', unit: 'ms', better: 'lower', values: baseline },
      },
    ],
    notes: [],
  };
}

export async function engineBootMs(image: Image): Promise<number> {
  const started = performance.now();
  const pool = image.pool({ min: 0, max: 1, acquireTimeoutMs: 0 });
  try {
    const vm = await pool.acquire();
    const elapsed = performance.now() - started;
    await vm.release();
    return elapsed;
  } finally {
    await pool.shutdown();
  }
}
