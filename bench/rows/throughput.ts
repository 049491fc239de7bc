import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Image, Vm } from '../../engine';
import { summarize } from '../stats';
import { GroupResult, RowMeasurement } from '../types';
import { FILE_BYTES, Sizes } from './sizes';

/**
 * Guest stdout through vm.exec against the same command as a host child process, and
 * vm.writeFile / vm.readFile of a 4 MiB buffer against host fs.writeFile / fs.readFile.
 */
export async function measureThroughput(image: Image, sizes: Sizes, log: (line: string) => void): Promise<GroupResult> {
  const argv = ['head', '-c', String(sizes.throughputBytes), '/dev/zero'];
  const pool = image.pool({ min: 1, max: 1, acquireTimeoutMs: 0 });
  const ours: number[] = [];
  const baseline: number[] = [];
  let files: RowMeasurement[] = [];
  try {
    const vm = await pool.acquire();
    try {
      await guestSeconds(vm, argv, sizes.throughputBytes);
      await hostSeconds(argv, sizes.throughputBytes);
      for (let i = 0; i < sizes.throughputRuns; i++) {
        ours.push(megabytesPerSecond(sizes.throughputBytes, await guestSeconds(vm, argv, sizes.throughputBytes)));
        baseline.push(megabytesPerSecond(sizes.throughputBytes, await hostSeconds(argv, sizes.throughputBytes)));
        log(
          `throughput ${i + 1}/${sizes.throughputRuns}: guest ${ours[i]?.toFixed(0)} MB/s, host ${baseline[i]?.toFixed(0)} MB/s`,
        );
      }
      files = await measureFileCalls(vm, sizes, log);
    } finally {
      await vm.release();
    }
  } finally {
    await pool.shutdown();
  }
  return {
    measurements: [
      {
        ours: { name: 'exec throughput', unit: 'MB/s', better: 'higher', values: ours },
        baseline: { name: 'host process spawn throughput', unit: 'MB/s', better: 'higher', values: baseline },
      },
      ...files,
    ],
    notes: [
      `Throughput moves ${sizes.throughputBytes / 1024 / 1024} MiB of \`head -c\` output per run (MB = 10^6 bytes), collected into one Buffer on both sides.`,
      `File write/read throughput: ${sizes.fileRuns} vm.writeFile then vm.readFile calls of a ${FILE_BYTES / 1024 / 1024} MiB random buffer (the agent's per-call limit) to /tmp in the guest (tmpfs), ` +
        'each beside host fs.promises.writeFile / readFile of the same buffer in a host temp dir (page cache, no fsync); the guest side includes the agent protocol over virtio-serial. Two warm-up pairs are not counted.',
    ],
  };
}

const FILE_WARMUPS = 2;

/** vm.writeFile / vm.readFile of one 4 MiB buffer, alternating with the host's fs calls on the same buffer. */
async function measureFileCalls(vm: Vm, sizes: Sizes, log: (line: string) => void): Promise<RowMeasurement[]> {
  const data = randomBytes(FILE_BYTES);
  const guestPath = '/tmp/bench-file-throughput';
  const hostDir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-file-'));
  const hostPath = path.join(hostDir, 'blob');
  const write: number[] = [];
  const read: number[] = [];
  const hostWrite: number[] = [];
  const hostRead: number[] = [];
  const timed = async (call: () => Promise<unknown>) => {
    const started = performance.now();
    await call();
    return megabytesPerSecond(FILE_BYTES, (performance.now() - started) / 1000);
  };
  try {
    for (let i = 0; i < FILE_WARMUPS + sizes.fileRuns; i++) {
      const sample: [number, number, number, number] = [
        await timed(() => vm.writeFile(guestPath, data)),
        await timed(() => fs.promises.writeFile(hostPath, data)),
        await timed(async () => {
          if (!(await vm.readFile(guestPath)).equals(data))
            throw new Error('vm.readFile returned other bytes than were written');
        }),
        await timed(async () => {
          if (!(await fs.promises.readFile(hostPath)).equals(data))
            throw new Error('host readFile returned other bytes');
        }),
      ];
      if (i < FILE_WARMUPS) continue;
      write.push(sample[0]);
      hostWrite.push(sample[1]);
      read.push(sample[2]);
      hostRead.push(sample[3]);
    }
    log(
      `file write/read: ${sizes.fileRuns} x ${FILE_BYTES / 1024 / 1024} MiB, p50 write ${summarize(write).p50.toFixed(0)} MB/s (host ${summarize(hostWrite).p50.toFixed(0)}), read ${summarize(read).p50.toFixed(0)} MB/s (host ${summarize(hostRead).p50.toFixed(0)})`,
    );
  } finally {
    fs.rmSync(hostDir, { recursive: true, force: true });
    await vm.exec({ argv: ['rm', '-f', guestPath] }).catch(() => undefined);
  }
  return [
    {
      ours: { name: 'file write throughput', unit: 'MB/s', better: 'higher', values: write },
      baseline: { name: 'host fs.writeFile', unit: 'MB/s', better: 'higher', values: hostWrite },
    },
    {
      ours: { name: 'file read throughput', unit: 'MB/s', better: 'higher', values: read },
      baseline: { name: 'host fs.readFile', unit: 'MB/s', better: 'higher', values: hostRead },
    },
  ];
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
    const [command = 'false', ...args] = argv;
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (data: Buffer) => chunks.push(data));
    child.once('error', reject);
    child.once('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const received = Buffer.concat(chunks).length;
      if (code !== 0 || received !== bytes)
        reject(new Error(`host ${argv.join(' ')}: exit ${code}, ${received} of ${bytes} bytes`));
      else resolve(seconds);
    });
  });
}
