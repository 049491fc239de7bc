import { round, summarize } from './stats';
import { BaselineResult, BenchResults, RowMeasurement, RowResult, Series } from './types';

/**
 * Turns measurements into report rows. Each row's ratio is against the baseline samples
 * taken beside it (the pairs alternate in time); a baseline that several rows share by name
 * (raw QEMU boot beside cold bake and spawn from disk) is listed once with all its samples.
 */
export function tabulate(measurements: RowMeasurement[]): { rows: RowResult[]; baselines: BaselineResult[] } {
  const merged = new Map<string, Series>();
  const counted = new Set<Series>();
  for (const { baseline } of measurements) {
    if (counted.has(baseline)) continue;
    counted.add(baseline);
    const known = merged.get(baseline.name);
    merged.set(baseline.name, known ? { ...known, values: [...known.values, ...baseline.values] } : baseline);
  }
  const rows = measurements.map(({ ours, baseline, group }) => {
    const summary = roundedSummary(ours.values);
    const baselineP50 = roundedSummary(baseline.values).p50;
    return {
      name: ours.name,
      unit: ours.unit,
      better: ours.better,
      ...summary,
      baseline: baseline.name,
      baselineP50,
      ratio: round(summary.p50 / baselineP50),
      values: ours.values.map(round),
      ...(group ? { group } : {}),
    };
  });
  return { rows, baselines: [...merged.values()].map(baselineResult) };
}

function baselineResult(series: Series): BaselineResult {
  return { name: series.name, unit: series.unit, ...roundedSummary(series.values), values: series.values.map(round) };
}

function roundedSummary(values: number[]) {
  const summary = summarize(values);
  return {
    samples: summary.samples,
    min: round(summary.min),
    p50: round(summary.p50),
    p90: round(summary.p90),
    p99: round(summary.p99),
    max: round(summary.max),
  };
}

/** The exec-vs-echo target from the issue. */
export const EXEC_TARGET_RATIO = 1.5;

/** Issue 4's targets: acquire from an idle pool, acquire with restore against raw, private memory. */
export const ACQUIRE_IDLE_TARGET_MS = 1;
export const RESTORE_TARGET_RATIO = 1.2;
export const MEMORY_TARGET_FRACTION = 0.1;

/** Plain-language observations that the numbers alone do not say. */
export function notesFor(results: Pick<BenchResults, 'rows' | 'accelerator'>, extra: string[]): string[] {
  const notes: string[] = [];
  const byName = (name: string) => results.rows.find((r) => r.name === name);
  const exec = byName('exec true round trip');
  const ping = byName('agent ping round trip');
  if (exec) {
    const verdict = exec.ratio <= EXEC_TARGET_RATIO ? 'meets' : 'misses';
    notes.push(
      `exec true round trip is ${exec.ratio.toFixed(1)}x the raw virtio-serial echo at p50: it ${verdict} the ${EXEC_TARGET_RATIO}x target.` +
        (ping
          ? ` The agent PING, which carries the same protocol without fork/exec, is ${ping.ratio.toFixed(1)}x: the rest is creating and reaping a process in the guest`
          : '') +
        (results.accelerator.accel === 'tcg'
          ? ', which TCG emulates (page-table set-up, exec and exit run as translated code).'
          : '.'),
    );
  }
  const idle = byName('acquire idle');
  if (idle) {
    notes.push(
      `acquire idle: p50 ${idle.p50.toPrecision(3)} ms, p99 ${idle.p99.toPrecision(3)} ms: it ${idle.p50 <= ACQUIRE_IDLE_TARGET_MS ? 'meets' : 'misses'} the ≤ ${ACQUIRE_IDLE_TARGET_MS} ms target` +
        ` (its baseline, a host spawn of \`true\`, only gives a scale).`,
    );
  }
  const restore = byName('acquire with restore');
  if (restore) {
    notes.push(
      `acquire with restore is ${restore.ratio.toFixed(2)}x the raw QEMU restore at p50 (${restore.p50.toFixed(0)} vs ${restore.baselineP50.toFixed(0)} ms): it ${restore.ratio <= RESTORE_TARGET_RATIO ? 'meets' : 'misses'} the ≤ ${RESTORE_TARGET_RATIO}x target.`,
    );
  }
  const memoryRows = results.rows.filter((r) => r.unit === 'KiB' && r.name.startsWith('idle memory per VM'));
  if (memoryRows.length > 0) {
    const verdicts = memoryRows.map(
      (r) => `${r.name} ${(r.ratio * 100).toFixed(1)}% (${r.ratio <= MEMORY_TARGET_FRACTION ? 'meets' : 'misses'})`,
    );
    notes.push(
      `Memory rows: the ratio is the fraction of the guest RAM size; target ≤ ${MEMORY_TARGET_FRACTION * 100}% of guest RAM per idle VM: ${verdicts.join('; ')}.`,
    );
  }
  notes.push(...extra);
  if (results.accelerator.accel === 'tcg') {
    notes.push(
      'Measured under TCG (no usable KVM here): guest CPU work runs 2-8x slower than native, so boot and exec rows overstate what a KVM host sees; baselines run under the same accelerator.',
    );
  }
  const throughput = byName('exec throughput');
  if (throughput) {
    notes.push('Throughput rows are higher-is-better: a ratio under 1 means slower than the host process.');
  }
  return notes;
}
