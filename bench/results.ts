import { round, summarize } from './stats';
import { BaselineResult, BenchResults, RowMeasurement, RowResult, Series } from './types';

/** Turns measurements into report rows; a baseline shared by rows is listed once. */
export function tabulate(measurements: RowMeasurement[]): { rows: RowResult[]; baselines: BaselineResult[] } {
  const baselines = new Map<string, BaselineResult>();
  const rows = measurements.map(({ ours, baseline }) => {
    const base = baselines.get(baseline.name) ?? baselineResult(baseline);
    baselines.set(baseline.name, base);
    const summary = roundedSummary(ours.values);
    return {
      name: ours.name,
      unit: ours.unit,
      better: ours.better,
      ...summary,
      baseline: baseline.name,
      baselineP50: base.p50,
      ratio: round(summary.p50 / base.p50),
      values: ours.values.map(round),
    };
  });
  return { rows, baselines: [...baselines.values()] };
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

/** Plain-language observations that the numbers alone do not say. */
export function notesFor(results: Pick<BenchResults, 'rows' | 'accelerator'>, extra: string[]): string[] {
  const notes: string[] = [];
  const byName = (name: string) => results.rows.find((r) => r.name === name);
  const exec = byName('exec true round trip');
  const ping = byName('agent ping round trip');
  if (exec) {
    const verdict = exec.ratio <= EXEC_TARGET_RATIO ? 'meets' : 'misses';
    notes.push(`exec true round trip is ${exec.ratio.toFixed(1)}x the raw virtio-serial echo at p50: it ${verdict} the ${EXEC_TARGET_RATIO}x target.`
      + (ping ? ` The agent PING, which carries the same protocol without fork/exec, is ${ping.ratio.toFixed(1)}x: the rest is creating and reaping a process in the guest` : '')
      + (results.accelerator.accel === 'tcg' ? ', which TCG emulates (page-table set-up, exec and exit run as translated code).' : '.'));
  }
  notes.push(...extra);
  if (results.accelerator.accel === 'tcg') {
    notes.push('Measured under TCG (no usable KVM here): guest CPU work runs 2-8x slower than native, so boot and exec rows overstate what a KVM host sees; baselines run under the same accelerator.');
  }
  const throughput = byName('exec throughput');
  if (throughput) {
    notes.push('Throughput rows are higher-is-better: a ratio under 1 means slower than the host process.');
  }
  return notes;
}
