import * as path from 'node:path';

/** Row groups the harness can run; `--rows` takes these ids. */
export const ROW_GROUPS = [
  'bake',
  'pool',
  'boot',
  'exec',
  'throughput',
  'memory',
  'forward',
  'files',
  'pull',
  'netguard',
  'egress',
  'build',
  'warm',
  'events',
  'reattach',
  'express',
  'compose',
  'arm64',
] as const;
export type RowGroup = (typeof ROW_GROUPS)[number];

export interface BenchArgs {
  quick: boolean;
  rows: RowGroup[];
  outDir: string;
}

export const USAGE = `usage: npm run bench -- [--quick] [--rows ${ROW_GROUPS.join(',')}] [--out DIR]
  --quick   fewer samples (the whole run well under 5 minutes)
  --rows    row groups to run, comma-separated (default: all); the report keeps the
            rows of the other groups from the one already in the output directory
  --out     directory for latest.json, latest.md, latest.svg (default: bench/results)`;

/** Parses the harness's command line; throws with the usage text on anything unknown. */
export function parseBenchArgs(argv: readonly string[], defaultOut: string): BenchArgs {
  const args: BenchArgs = { quick: false, rows: [...ROW_GROUPS], outDir: defaultOut };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const next = argv[++i];
      if (next === undefined || next.startsWith('--')) throw new Error(`${arg} needs a value\n${USAGE}`);
      return next;
    };
    if (arg === '--quick') args.quick = true;
    else if (arg === '--rows') args.rows = parseRows(value());
    else if (arg === '--out') args.outDir = path.resolve(value());
    else throw new Error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
  }
  return args;
}

function parseRows(text: string): RowGroup[] {
  const wanted = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = wanted.filter((w) => !(ROW_GROUPS as readonly string[]).includes(w));
  if (unknown.length > 0 || wanted.length === 0) {
    throw new Error(
      `--rows: unknown row group(s) ${unknown.join(', ') || '(none given)'}; choose from ${ROW_GROUPS.join(', ')}\n${USAGE}`,
    );
  }
  return ROW_GROUPS.filter((g) => wanted.includes(g));
}
