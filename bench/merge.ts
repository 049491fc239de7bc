import * as fs from 'node:fs';
import { BenchResults, CarriedRun, RowResult } from './types';

/**
 * A run of some row groups (`--rows compose`) into a directory that holds an earlier report
 * keeps that report's rows of the groups it did not run, each marked with the date it was
 * measured, with their baselines and the notes of the run that measured them. A row of the
 * groups it ran is replaced: by group, or for rows written before rows carried their group,
 * by name (and all of them when this run covers every group the earlier one ran).
 */
export function keepEarlierRows(current: BenchResults, earlier: BenchResults | undefined): BenchResults {
  if (!earlier || earlier.formatVersion !== 1) return current;
  const ran = new Set(current.groups);
  const names = new Set(current.rows.map((r) => r.name));
  const earlierCovered = earlier.groups.every((g) => ran.has(g));
  const kept = earlier.rows.filter((row) =>
    row.group ? !ran.has(row.group) : !earlierCovered && !names.has(row.name),
  );
  if (kept.length === 0) return current;

  const runOf = (row: RowResult) => row.measured ?? earlier.date;
  const carried: CarriedRun[] = [];
  for (const run of [
    { ...runEntry(earlier), rows: [] as string[] },
    ...(earlier.carried ?? []).map((c) => ({ ...c, rows: [] as string[] })),
  ]) {
    run.rows = kept.filter((row) => runOf(row) === run.date).map((row) => row.name);
    run.groups = run.groups.filter((g) => !ran.has(g));
    if (run.rows.length > 0 && !carried.some((c) => c.date === run.date)) carried.push(run);
  }
  const baselineNames = new Set(current.baselines.map((b) => b.name));
  const keptBaselines = earlier.baselines.filter(
    (b) => !baselineNames.has(b.name) && kept.some((row) => row.baseline === b.name),
  );
  return {
    ...current,
    rows: [...kept.map((row) => ({ ...row, measured: runOf(row) })), ...current.rows],
    baselines: [...keptBaselines, ...current.baselines],
    carried,
  };
}

function runEntry(results: BenchResults): CarriedRun {
  return {
    date: results.date,
    quick: results.quick,
    groups: results.groups,
    git: results.git,
    loadAverage: results.machine.loadAverage,
    rows: [],
    notes: results.notes,
  };
}

/** The report already in `file`, or undefined when there is none or it cannot be read as one. */
export function readEarlier(file: string): BenchResults | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchResults;
    return Array.isArray(parsed.rows) && Array.isArray(parsed.groups) ? parsed : undefined;
  } catch {
    return undefined;
  }
}
