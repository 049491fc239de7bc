import { Image, Vm } from '../../engine';
import { RawContext, rawEchoRoundTrips } from '../raw-qemu';
import { GroupResult, Series } from '../types';
import { Sizes } from './sizes';

/**
 * Round trips on one VM: `true` through vm.exec (protocol + fork/exec in the guest) and the
 * agent's PING (protocol only), against bare bytes echoed over the same virtio-serial port.
 */
export async function measureExec(
  image: Image,
  raw: RawContext,
  sizes: Sizes,
  log: (line: string) => void,
): Promise<GroupResult> {
  const echo = await rawEchoRoundTrips(raw, sizes.roundTrips, sizes.warmupCalls);
  log(`raw echo: ${echo.length} round trips`);
  const pool = image.pool({ min: 1, max: 1, acquireTimeoutMs: 0 });
  try {
    const vm = await pool.acquire();
    try {
      const exec = await timeCalls(sizes, () => execTrue(vm));
      log(`exec true: ${exec.length} round trips`);
      const ping = await timeCalls(sizes, () => vm.ping());
      log(`agent ping: ${ping.length} round trips`);
      const inGuest = await inGuestForkExecMs(vm);
      const baseline: Series = { name: 'raw virtio-serial echo', unit: 'ms', better: 'lower', values: echo };
      return {
        measurements: [
          { ours: { name: 'exec true round trip', unit: 'ms', better: 'lower', values: exec }, baseline },
          { ours: { name: 'agent ping round trip', unit: 'ms', better: 'lower', values: ping }, baseline },
        ],
        notes: [
          `Inside the guest, a shell loop of ${IN_GUEST_RUNS} \`/bin/true\` runs takes ${inGuest.toFixed(1)} ms per fork+exec+wait, ` +
            'without the agent or the host: that is the floor under the exec row on this accelerator.',
        ],
      };
    } finally {
      await vm.release();
    }
  } finally {
    await pool.shutdown();
  }
}

const IN_GUEST_RUNS = 50;

/** The guest's own cost of starting and reaping a process, timed by the guest clock. */
async function inGuestForkExecMs(vm: Vm): Promise<number> {
  const script = `a=$(date +%s%N); i=0; while [ $i -lt ${IN_GUEST_RUNS} ]; do /bin/true; i=$((i+1)); done; b=$(date +%s%N); echo $((b-a))`;
  const result = await vm.exec({ argv: ['sh', '-c', script] });
  const nanoseconds = Number(result.stdout.trim());
  if (result.exitCode !== 0 || !(nanoseconds > 0))
    throw new Error(`in-guest fork+exec loop failed: exit ${result.exitCode}, ${result.stdout}${result.stderr}`);
  return nanoseconds / 1e6 / IN_GUEST_RUNS;
}

export async function execTrue(vm: Vm): Promise<void> {
  const result = await vm.exec({ argv: ['true'] });
  if (result.exitCode !== 0) throw new Error(`'true' exited ${result.exitCode} in the guest: ${result.stderr}`);
}

export async function timeCalls(sizes: Sizes, call: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < sizes.warmupCalls; i++) await call();
  const samples: number[] = [];
  for (let i = 0; i < sizes.roundTrips; i++) {
    const started = performance.now();
    await call();
    samples.push(performance.now() - started);
  }
  return samples;
}
