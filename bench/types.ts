import { Summary } from './stats';

/** Raw samples of one measured series, in `unit`. */
export interface Series {
  name: string;
  unit: 'ms' | 'MB/s' | 'KiB';
  /** Which direction is good: latency wants lower, throughput higher. */
  better: 'lower' | 'higher';
  values: number[];
}

/** A row of the report: our series against the baseline measured in the same run. */
export interface RowMeasurement {
  ours: Series;
  baseline: Series;
  /** The row group that measured it (set by the harness). */
  group?: string;
}

/** What a row group hands back: its rows, and observations for the report's notes. */
export interface GroupResult {
  measurements: RowMeasurement[];
  notes: string[];
}

export interface RowResult extends Summary {
  name: string;
  unit: Series['unit'];
  better: Series['better'];
  baseline: string;
  baselineP50: number;
  /** ours p50 / baseline p50. */
  ratio: number;
  values: number[];
  /** Its row group (absent in reports written before rows carried their group). */
  group?: string;
  /** Set on a row kept from an earlier run that did not run its group again: when that was. */
  measured?: string;
}

export interface BaselineResult extends Summary {
  name: string;
  unit: Series['unit'];
  values: number[];
}

export interface BenchResults {
  formatVersion: 1;
  date: string;
  quick: boolean;
  groups: string[];
  machine: {
    cpuModel: string;
    cores: number;
    memoryMib: number;
    kernel: string;
    os: string;
    node: string;
    loadAverage: number[];
  };
  accelerator: { accel: string; isolation: string; reason: string; warning?: string };
  qemu: { path: string; version: string };
  guestKernel: string;
  git: { commit: string; dirty: boolean } | null;
  rows: RowResult[];
  baselines: BaselineResult[];
  notes: string[];
  /** Earlier runs whose rows this report keeps (a run of some groups keeps the others' rows), newest first. */
  carried?: CarriedRun[];
}

export interface CarriedRun {
  date: string;
  quick: boolean;
  groups: string[];
  git: BenchResults['git'];
  loadAverage: number[];
  /** The rows of that run this report still shows, and that run's notes. */
  rows: string[];
  notes: string[];
}
