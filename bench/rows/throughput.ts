import { spawn } from 'node:child_process';
import { Image, Vm } from '../../engine';
import { GroupResult } from '../types';
import { Sizes } from './sizes';

/** Guest stdout through vm.exec against the same command as a host child process. */
export async function measureThroughput(image: Image, sizes: Sizes, log: (line: string) => void): Promise<GroupResult> {
  const argv = ['head', '-c', String(sizes.throughputBytes), '/dev/zero'];
  const pool = image.pool({ min: 1, max: 1, acquireTimeoutMs: 0 });
  const ours: number[] = [];
  const baseline: number[] = [];
  try {
    const vm = await pool.acquire();
    try {
      await guestSeconds(vm, argv, sizes.throughputBytes);
      await hostSeconds(argv, sizes.throughputBytes);
      for (let i = 0; i < sizes.throughputRuns; i++) {
        ours.push(megabytesPerSecond(sizes.throughputBytes, await guestSeconds(vm, argv, sizes.throughputBytes)));
        baseline.push(megabytesPerSecond(sizes.throughputBytes, await hostSeconds(argv, sizes.throughputBytes)));
        log(`throughput ${i + 1}/${sizes.throughputRuns}: guest ${ours[i].toFixed(0)} MB/s, host ${baseline[i].toFixed(0)} MB/s`);
      }
    } finally {
      await vm.release();
    }
  } finally {
    await pool.shutdown();
  }
  return {
    measurements: [{
      ours: { name: 'exec throughput', unit: 'MB/s', better: 'higher', values: ours },
      baseline: { name: 'host process spawn throughput', unit: 'MB/s', better: 'higher', values: baseline },
    }],
    notes: [`Throughput moves ${sizes.throughputBytes / 1024 / 1024} MiB of \`head -c\` output per run (MB = 10^6 bytes), collected into one Buffer on both sides.`],
  };
}

/** MB = 10^6 bytes. */
function megabytesPerSecond(bytes: number, seconds: number): number {
  return bytes / 1e6 / seconds;
}

async function guestSeconds(vm: Vm, argv: string[], bytes: number): Promise<number> {
  const started = performance.now();
  const result = await vm.exec({ argv, encoding: 'buffer', maxBuffer: bytes + 1024 * 1024, timeoutMs: 300_000 });
  const seconds = (performance.now() - started) / 1000;
  if (result.exitCode !== 0 || result.stdout.length !== bytes) {
    throw new Error(`guest ${argv.join(' ')}: exit ${result.exitCode}, ${result.stdout.length} of ${bytes} bytes`);
  }
  return seconds;
}

/** The host side collects stdout into memory too, as vm.exec does. */
function hostSeconds(argv: string[], bytes: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (data: Buffer) => chunks.push(data));
    child.once('error', reject);
    child.once('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const received = Buffer.concat(chunks).length;
      if (code !== 0 || received !== bytes) reject(new Error(`host ${argv.join(' ')}: exit ${code}, ${received} of ${bytes} bytes`));
      else resolve(seconds);
    });
  });
}
