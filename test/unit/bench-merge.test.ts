import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderMarkdown } from '../../bench/markdown';
import { keepEarlierRows } from '../../bench/merge';
import type { BaselineResult, BenchResults, RowResult } from '../../bench/types';

const summary = { samples: 1, min: 1, p50: 1, p90: 1, p99: 1, max: 1 };
const row = (name: string, baseline: string, group?: string): RowResult => ({
  name,
  unit: 'ms',
  better: 'lower',
  ...summary,
  baseline,
  baselineP50: 1,
  ratio: 1,
  values: [1],
  ...(group ? { group } : {}),
});
const base = (name: string): BaselineResult => ({ name, unit: 'ms', ...summary, values: [1] });

function report(
  date: string,
  groups: string[],
  rows: RowResult[],
  baselines: BaselineResult[],
  notes: string[],
): BenchResults {
  return {
    formatVersion: 1,
    date,
    quick: false,
    groups,
    machine: { cpuModel: 'cpu', cores: 2, memoryMib: 1024, kernel: 'k', os: 'os', node: 'v20', loadAverage: [1, 1, 1] },
    accelerator: { accel: 'tcg', isolation: 'emulated', reason: 'r' },
    qemu: { path: 'q', version: '7.2' },
    guestKernel: 'g',
    git: { commit: `${date}-commit`, dirty: false },
    rows,
    baselines,
    notes,
  };
}

test('bench: a run of some groups keeps the earlier rows of the others, with their baselines, date and notes', () => {
  // Written before rows carried their group: exec and forward rows, untagged.
  const earlier = report(
    '2026-11-29',
    ['exec', 'forward'],
    [row('exec true round trip', 'echo'), row('forward throughput', 'loopback')],
    [base('echo'), base('loopback')],
    ['exec note'],
  );
  const compose = report(
    '2026-12-07',
    ['compose'],
    [row('compose open', 'single open', 'compose')],
    [base('single open')],
    ['compose note'],
  );
  const merged = keepEarlierRows(compose, earlier);
  assert.deepEqual(
    merged.rows.map((r) => [r.name, r.measured]),
    [
      ['exec true round trip', '2026-11-29'],
      ['forward throughput', '2026-11-29'],
      ['compose open', undefined],
    ],
  );
  assert.deepEqual(
    merged.baselines.map((b) => b.name),
    ['echo', 'loopback', 'single open'],
  );
  assert.deepEqual(merged.notes, ['compose note']);
  assert.deepEqual(
    merged.carried?.map((c) => [c.date, c.groups, c.rows, c.notes]),
    [['2026-11-29', ['exec', 'forward'], ['exec true round trip', 'forward throughput'], ['exec note']]],
  );
  const markdown = renderMarkdown(merged, 'latest.svg');
  assert.match(markdown, /\| exec true round trip ¹ \|/);
  assert.match(markdown, /\| compose open \|/);
  assert.match(markdown, /¹ Kept from the run of 2026-11-29, groups exec, forward, commit 2026-11-2/);

  // Running forward again replaces its untagged row by name and keeps exec's (still from 11-29) and compose's (from 12-07).
  const forward = report(
    '2026-12-08',
    ['forward'],
    [row('forward throughput', 'loopback', 'forward')],
    [base('loopback')],
    ['forward note'],
  );
  const again = keepEarlierRows(forward, merged);
  assert.deepEqual(
    again.rows.map((r) => [r.name, r.measured]),
    [
      ['exec true round trip', '2026-11-29'],
      ['compose open', '2026-12-07'],
      ['forward throughput', undefined],
    ],
  );
  assert.deepEqual(
    again.baselines.map((b) => b.name),
    ['echo', 'single open', 'loopback'],
  );
  assert.deepEqual(
    again.carried?.map((c) => [c.date, c.groups, c.rows]),
    [
      ['2026-12-07', ['compose'], ['compose open']],
      ['2026-11-29', ['exec'], ['exec true round trip']],
    ],
  );

  // A run of every group the earlier report ran replaces all of its rows; no earlier report changes nothing.
  const full = report(
    '2026-12-09',
    ['exec', 'forward'],
    [row('exec true round trip', 'echo', 'exec')],
    [base('echo')],
    [],
  );
  assert.equal(keepEarlierRows(full, earlier), full);
  assert.equal(keepEarlierRows(full, undefined), full);
});
