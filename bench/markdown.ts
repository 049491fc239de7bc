import { BenchResults } from './types';

/** The human-readable report: the host on top, one table line per row, then the baselines. */
export function renderMarkdown(results: BenchResults, svgFile: string): string {
  const m = results.machine;
  const a = results.accelerator;
  const lines = [
    '# Benchmarks',
    '',
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${(m.memoryMib / 1024).toFixed(1)} GiB, Linux ${m.kernel} (${m.os}), Node ${m.node}, load average ${m.loadAverage.map((l) => l.toFixed(2)).join(' ')} at start`,
    `Accelerator: **${a.accel}** (${a.isolation}; ${a.reason}), QEMU ${results.qemu.version}, guest kernel ${results.guestKernel}`,
    `Run: ${results.date}${results.quick ? ', --quick' : ''}, groups ${results.groups.join(', ')}${results.git ? `, commit ${results.git.commit.slice(0, 10)}${results.git.dirty ? ' (engine/native modified)' : ''}` : ''}`,
    '',
    '| row | p50 | p90 / p99 | baseline (p50) | ratio | unit |',
    '|---|---:|---:|---|---:|---|',
    ...results.rows.map(
      (r) =>
        `| ${r.name}${marker(results, r.measured)} | ${fmt(r.p50)} | ${fmt(r.p90)} / ${fmt(r.p99)} | ${r.baseline} (${fmt(r.baselineP50)}) | ${r.unit === 'KiB' ? `${(r.ratio * 100).toFixed(1)}%` : `${r.ratio >= 0.01 ? r.ratio.toFixed(2) : r.ratio.toPrecision(2)}x`} | ${r.unit} |`,
    ),
    '',
    '| baseline | samples | p50 | p90 / p99 | unit |',
    '|---|---:|---:|---:|---|',
    ...results.baselines.map(
      (b) => `| ${b.name} | ${b.samples} | ${fmt(b.p50)} | ${fmt(b.p90)} / ${fmt(b.p99)} | ${b.unit} |`,
    ),
    '',
    'Ratio = our p50 / the p50 of the baseline samples taken beside that row (alternating with it) in the same run; the baseline table pools every sample of a baseline. Percentiles are nearest-rank over the sorted samples',
    `(counts per row in latest.json, with every raw sample). Warm-up calls are not counted.`,
    '',
    `![latency distributions](${svgFile})`,
    '',
    ...(results.notes.length > 0 ? ['Notes:', '', ...results.notes.map((n) => `- ${n}`), ''] : []),
    ...(results.carried ?? []).flatMap((run, i) => [
      `${SUPERSCRIPTS[i] ?? `(${i + 1})`} Kept from the run of ${run.date}${run.quick ? ' (--quick)' : ''}, groups ${run.groups.join(', ')}` +
        `${run.git ? `, commit ${run.git.commit.slice(0, 10)}${run.git.dirty ? ' (engine/native modified)' : ''}` : ''}, load average ${run.loadAverage.map((l) => l.toFixed(2)).join(' ')} at its start` +
        ` (this run did not run those groups). Its notes:`,
      '',
      ...run.notes.map((n) => `- ${n}`),
      '',
    ]),
  ];
  return lines.join('\n');
}

const SUPERSCRIPTS = ['¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];

/** A row kept from an earlier run is marked with the number of that run's footnote. */
function marker(results: BenchResults, measured: string | undefined): string {
  if (!measured) return '';
  const i = (results.carried ?? []).findIndex((run) => run.date === measured);
  return ` ${SUPERSCRIPTS[i] ?? `(${i + 1})`}`;
}

/** Three significant figures at most, no exponent: 0.215, 4.12, 2710. */
export function fmt(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  if (value >= 1) return value.toFixed(2);
  if (value >= 0.01) return value.toFixed(3);
  return value.toPrecision(2);
}
