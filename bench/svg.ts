import { fmt } from './markdown';
import { BenchResults } from './types';

/** One chart: empirical CDFs of several series on a shared x axis. */
interface Panel {
  title: string;
  log: boolean;
  series: Array<{ name: string; values: number[] }>;
}

const WIDTH = 960;
const PANEL_HEIGHT = 300;
const MARGIN = { left: 60, right: 290, top: 36, bottom: 44 };
const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e'];
/** Points drawn per series: quantiles, so a 1000-sample series stays a small file. */
const MAX_POINTS = 200;

/** A hand-written SVG of the latency CDFs: round trips (log x), restores and boots (linear x). */
export function renderSvg(results: BenchResults): string {
  const panels = latencyPanels(results);
  const height = Math.max(1, panels.length) * PANEL_HEIGHT;
  const body =
    panels.length > 0
      ? panels.map((panel, i) => renderPanel(panel, i * PANEL_HEIGHT)).join('\n')
      : `<text x="${WIDTH / 2}" y="${height / 2}" text-anchor="middle">no latency rows in this run</text>`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="white"/>`,
    body,
    '</svg>',
    '',
  ].join('\n');
}

function latencyPanels(results: BenchResults): Panel[] {
  const find = (name: string) => {
    const found = results.rows.find((r) => r.name === name) ?? results.baselines.find((b) => b.name === name);
    return found ? [{ name: `${found.name} (p50 ${fmt(found.p50)} ms)`, values: found.values }] : [];
  };
  const panels: Panel[] = [
    {
      title: 'Round trip latency, CDF (ms, log scale)',
      log: true,
      series: [...find('exec true round trip'), ...find('agent ping round trip'), ...find('raw virtio-serial echo')],
    },
    {
      title: 'Restore latency, CDF (ms)',
      log: false,
      series: [...find('acquire with restore'), ...find('raw QEMU restore')],
    },
    {
      title: 'Boot latency, CDF (ms)',
      log: false,
      series: [...find('spawn from disk'), ...find('cold bake'), ...find('raw QEMU boot')],
    },
  ];
  return panels.filter((p) => p.series.length > 0);
}

function renderPanel(panel: Panel, top: number): string {
  const all = panel.series.flatMap((s) => s.values);
  const axis = panel.log ? logAxis(Math.min(...all), Math.max(...all)) : linearAxis(Math.min(...all), Math.max(...all));
  const plot = {
    x: MARGIN.left,
    y: top + MARGIN.top,
    w: WIDTH - MARGIN.left - MARGIN.right,
    h: PANEL_HEIGHT - MARGIN.top - MARGIN.bottom,
  };
  const px = (v: number) => round1(plot.x + axis.position(v) * plot.w);
  const py = (p: number) => round1(plot.y + (1 - p) * plot.h);
  const parts = [`<text x="${plot.x}" y="${top + 20}" font-weight="bold">${escapeXml(panel.title)}</text>`];
  for (const p of [0, 0.25, 0.5, 0.75, 0.9, 1]) {
    parts.push(
      `<line x1="${plot.x}" x2="${plot.x + plot.w}" y1="${py(p)}" y2="${py(p)}" stroke="#ddd"/>`,
      `<text x="${plot.x - 6}" y="${py(p) + 4}" text-anchor="end">${p}</text>`,
    );
  }
  for (const tick of axis.ticks) {
    parts.push(
      `<line x1="${px(tick)}" x2="${px(tick)}" y1="${plot.y}" y2="${plot.y + plot.h}" stroke="#eee"/>`,
      `<text x="${px(tick)}" y="${plot.y + plot.h + 16}" text-anchor="middle">${Number(tick.toPrecision(3))}</text>`,
    );
  }
  parts.push(
    `<rect x="${plot.x}" y="${plot.y}" width="${plot.w}" height="${plot.h}" fill="none" stroke="#444"/>`,
    `<text x="${plot.x + plot.w / 2}" y="${plot.y + plot.h + 34}" text-anchor="middle">ms</text>`,
  );
  panel.series.forEach((series, i) => {
    const color = COLORS[i % COLORS.length];
    const points = cdfPoints(series.values)
      .map(([v, p]) => `${px(v)},${py(p)}`)
      .join(' ');
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${points}"/>`);
    const ly = plot.y + 10 + i * 20;
    const lx = plot.x + plot.w + 14;
    parts.push(
      `<line x1="${lx}" x2="${lx + 18}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${lx + 24}" y="${ly + 4}">${escapeXml(series.name)}</text>`,
    );
  });
  return parts.join('\n');
}

/** (value, fraction at or below it) as a step function, at most MAX_POINTS steps. */
export function cdfPoints(values: readonly number[]): Array<[number, number]> {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const steps = Math.min(n, MAX_POINTS);
  const [lowest] = sorted;
  if (lowest === undefined) return [];
  const points: Array<[number, number]> = [[lowest, 0]];
  let fraction = 0;
  for (let k = 1; k <= steps; k++) {
    const index = Math.ceil((k / steps) * n) - 1;
    const value = sorted[index]!; // index is in 0..n-1
    points.push([value, fraction], [value, (index + 1) / n]);
    fraction = (index + 1) / n;
  }
  return points;
}

interface Axis {
  ticks: number[];
  /** 0..1 across the plot. */
  position(value: number): number;
}

/** Log axis from the 1-2-5 step at or below min to the one at or above max. */
function logAxis(min: number, max: number): Axis {
  const candidates: number[] = [];
  for (let e = Math.floor(Math.log10(Math.max(min, 1e-6))); e <= Math.ceil(Math.log10(Math.max(max, 1e-6))); e++) {
    for (const m of [1, 2, 5]) candidates.push(Number((m * 10 ** e).toPrecision(1)));
  }
  // The loop runs at least once, so there are candidates.
  const first = candidates.filter((t) => t <= min).pop() ?? candidates[0]!;
  const last = candidates.find((t) => t >= max && t > first) ?? candidates.at(-1)!;
  const ticks = candidates.filter((t) => t >= first && t <= last);
  const lo = Math.log10(first);
  const hi = Math.log10(last);
  return { ticks, position: (v) => (Math.log10(Math.min(Math.max(v, first), last)) - lo) / (hi - lo) };
}

function linearAxis(min: number, max: number): Axis {
  const span = Math.max(max - min, 1);
  const rawStep = span / 6;
  const magnitude = 10 ** Math.floor(Math.log10(rawStep));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rawStep) ?? 10 * magnitude;
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let t = lo; t <= hi + step / 2; t += step) ticks.push(t);
  return { ticks, position: (v) => (v - lo) / (hi - lo || 1) };
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
