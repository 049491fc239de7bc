/** Compose durations: `1m30s`, `10s`, `500ms`, `1h`; a bare number is refused, as docker compose does. */
const UNITS = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (text === '' || text === '0') return text === '0' ? 0 : undefined;
  let total = 0;
  let rest = text;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * UNITS[m[2] as keyof typeof UNITS];
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

/** Byte sizes: `512m`, `1g`, `1024k`, `512mb`, a bare number of bytes. In MiB, rounded up. */
export function parseSizeMib(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.ceil(value / (1024 * 1024));
  if (typeof value !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(value.trim());
  if (!m) return undefined;
  const factor = { '': 1 / (1024 * 1024), k: 1 / 1024, m: 1, g: 1024, t: 1024 * 1024 }[
    (m[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g' | 't'
  ];
  return Math.ceil(Number(m[1]) * factor);
}
