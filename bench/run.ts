/**
 * `npm run bench`: measures the engine against baselines taken in the same run and writes
 * latest.json (every raw sample), latest.md and latest.svg. See bench/README.md.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { engineInfo, Image } from '../engine';
import { BenchArgs, parseBenchArgs, RowGroup } from './args';
import { gitState, hostMachine } from './machine-info';
import { renderMarkdown } from './markdown';
import { keepEarlierRows, readEarlier } from './merge';
import { ourQemuProcesses } from './processes';
import { RawContext, rawContext } from './raw-qemu';
import { notesFor, tabulate } from './results';
import { measureArm64 } from './rows/arm64';
import { measureBake } from './rows/bake';
import { measureBoot } from './rows/boot';
import { measureBuild } from './rows/build';
import { measureCompose } from './rows/compose';
import { measureEvents } from './rows/events';
import { measureExec } from './rows/exec';
import { measureExpress } from './rows/express';
import { measureFiles } from './rows/files';
import { measurePull } from './rows/pull';
import { measureForward } from './rows/forward';
import { measureMemory } from './rows/memory';
import { measureNetguard } from './rows/netguard';
import { measureEgress } from './rows/egress';
import { measurePool } from './rows/pool';
import { measureReattach } from './rows/reattach';
import { Sizes, sizesFor } from './rows/sizes';
import { measureThroughput } from './rows/throughput';
import { measureWarm } from './rows/warm';
import { renderSvg } from './svg';
import { BenchResults, GroupResult, RowMeasurement } from './types';

const REPO_DIR = path.resolve(__dirname, '..');
const FILES = { json: 'latest.json', markdown: 'latest.md', svg: 'latest.svg' } as const;

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

type GroupRunner = (image: Image, raw: RawContext, sizes: Sizes) => Promise<GroupResult>;

const GROUPS: Record<RowGroup, GroupRunner> = {
  bake: (_image, raw, sizes) => measureBake(raw, sizes, log),
  pool: (image, raw, sizes) => measurePool(image, raw, sizes, log),
  boot: (_image, raw, sizes) => measureBoot(raw, sizes, log),
  exec: (image, raw, sizes) => measureExec(image, raw, sizes, log),
  throughput: (image, _raw, sizes) => measureThroughput(image, sizes, log),
  memory: (_image, _raw, sizes) => measureMemory(sizes, log),
  forward: (image, _raw, sizes) => measureForward(image, sizes, log),
  files: (_image, _raw, sizes) => measureFiles(sizes, log),
  pull: (_image, _raw, sizes) => measurePull(sizes.pulls, log),
  netguard: (_image, _raw, sizes) => measureNetguard(sizes, log),
  egress: (_image, _raw, sizes) => measureEgress(sizes, log),
  build: (_image, _raw, sizes) => measureBuild(sizes.builds, log),
  warm: (_image, _raw, sizes) => measureWarm(sizes, log),
  events: (_image, _raw, sizes) => measureEvents(sizes, log),
  reattach: (_image, _raw, sizes) => measureReattach(sizes.reattach, log),
  express: (_image, _raw, sizes) => measureExpress(sizes.expressRuns, log),
  compose: (_image, _raw, sizes) => measureCompose(sizes, log),
  arm64: (_image, _raw, sizes) => measureArm64(sizes, log),
};

async function main(args: BenchArgs): Promise<void> {
  const machine = hostMachine();
  const info = await engineInfo();
  const raw = await rawContext();
  const buildStarted = performance.now();
  let baked = false;
  const image = await Image.build({
    onProgress: (e) => {
      if (e.phase === 'bake') baked = true;
    },
  });
  const buildMs = performance.now() - buildStarted;
  log(`${info.accel} (${info.accelReason}), QEMU ${info.qemu.version}, Image.build ${buildMs.toFixed(0)} ms`);

  const sizes = sizesFor(args.quick);
  const measurements: RowMeasurement[] = [];
  const groupNotes: string[] = [];
  try {
    for (const group of args.rows) {
      log(`running ${group}`);
      const started = performance.now();
      const result = await GROUPS[group](image, raw, sizes);
      log(`${group} took ${((performance.now() - started) / 1000).toFixed(0)} s`);
      measurements.push(...result.measurements.map((m) => ({ ...m, group })));
      groupNotes.push(...result.notes);
    }
  } finally {
    // A bake's living VM that no group's pool took.
    await image.snapshot?.handoff?.stop();
    assertNoQemuLeft();
  }

  const { rows, baselines } = tabulate(measurements);
  const accelerator = {
    accel: info.accel,
    isolation: info.isolation,
    reason: info.accelReason.replace(/\s+/g, ' '),
    ...(info.warning ? { warning: info.warning } : {}),
  };
  const fresh: BenchResults = {
    formatVersion: 1,
    date: new Date().toISOString(),
    quick: args.quick,
    groups: args.rows,
    machine,
    accelerator,
    qemu: { path: info.qemu.path, version: info.qemu.version },
    guestKernel: info.kernel,
    git: gitState(REPO_DIR),
    rows,
    baselines,
    notes: notesFor({ rows, accelerator }, [
      `Image.build of the default image (root disk cached, ${baked ? 'snapshot baked anew' : 'snapshot cache hit'}) took ${buildMs.toFixed(0)} ms before the rows ran.`,
      ...groupNotes,
    ]),
  };
  // Rows of the groups this run did not run stay, marked with when they were measured.
  const results = keepEarlierRows(fresh, readEarlier(path.join(args.outDir, FILES.json)));
  fs.mkdirSync(args.outDir, { recursive: true });
  const markdown = renderMarkdown(results, FILES.svg);
  fs.writeFileSync(path.join(args.outDir, FILES.json), `${JSON.stringify(results, null, 1)}\n`);
  fs.writeFileSync(path.join(args.outDir, FILES.markdown), markdown);
  fs.writeFileSync(path.join(args.outDir, FILES.svg), renderSvg(results));
  process.stdout.write(markdown);
  log(
    `wrote ${Object.values(FILES)
      .map((f) => path.join(args.outDir, f))
      .join(', ')}`,
  );
}

/** Every VM must be shut down by now; a QEMU still running is a bug worth failing on. */
function assertNoQemuLeft(): void {
  const left = ourQemuProcesses();
  if (left.length === 0) return;
  for (const { pid } of left) process.kill(pid, 'SIGKILL');
  throw new Error(
    `QEMU processes were left running after the benchmark (killed now): ${left.map((p) => `${p.comm}[${p.pid}]`).join(', ')}`,
  );
}

let args: BenchArgs;
try {
  args = parseBenchArgs(process.argv.slice(2), path.join(__dirname, 'results'));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(2);
}
main(args).then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench: failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
