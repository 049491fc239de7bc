/**
 * `mounts` entries and `workspaceMount`, in Docker's `--mount` syntax (comma-separated
 * `key=value` fields, CSV-quoted when a value holds a comma) or the spec's object form.
 * Parsing only: what each becomes in a VM (a share, a volume, a tmpfs, or nothing) is
 * decided in plan.ts, where the workspace folder is known.
 */
export type MountType = 'bind' | 'volume' | 'tmpfs';

export interface ParsedMount {
  type: MountType;
  /** Host path (bind) or volume name (volume); absent for anonymous volumes and tmpfs. */
  source?: string;
  target: string;
  readOnly: boolean;
  /** tmpfs-size in MiB, when given. */
  sizeMib?: number;
  /** Options understood by Docker but meaningless here (consistency, bind-propagation, ...). */
  ignored: string[];
}

const IGNORED_KEYS = new Set([
  'consistency',
  'bind-propagation',
  'bind-nonrecursive',
  'volume-nocopy',
  'volume-label',
  'volume-driver',
  'volume-opt',
  'tmpfs-mode',
  'external',
]);

/** Splits `a=1,"b=x,y",c` on commas outside double quotes (CSV, as Docker reads --mount). */
export function splitFields(text: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      if (quoted && text[i + 1] === '"') {
        field += '"';
        i++;
      } else {
        quoted = !quoted;
      }
    } else if (c === ',' && !quoted) {
      fields.push(field);
      field = '';
    } else {
      field += c;
    }
  }
  fields.push(field);
  return fields.map((f) => f.trim()).filter((f) => f !== '');
}

/** A mount from its string or object form; the message says what is wrong, naming the field. */
export function parseMount(value: unknown): ParsedMount | { error: string } {
  if (typeof value === 'string')
    return fromFields(
      splitFields(value).map((field) => {
        const at = field.indexOf('=');
        return at < 0 ? ([field, ''] as const) : ([field.slice(0, at).trim(), field.slice(at + 1).trim()] as const);
      }),
    );
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return fromFields(
      Object.entries(value as Record<string, unknown>).map(
        ([k, v]) => [k, typeof v === 'boolean' ? String(v) : typeof v === 'string' ? v : JSON.stringify(v)] as const,
      ),
    );
  }
  return {
    error:
      'expected a mount string such as "source=cache,target=/cache,type=volume" or an object {type, source, target}',
  };
}

function fromFields(fields: ReadonlyArray<readonly [string, string]>): ParsedMount | { error: string } {
  let type: string = 'volume';
  let source: string | undefined;
  let target: string | undefined;
  let readOnly = false;
  let sizeMib: number | undefined;
  const ignored: string[] = [];
  for (const [rawKey, value] of fields) {
    const key = rawKey.toLowerCase();
    if (key === 'type') type = value.toLowerCase();
    else if (key === 'source' || key === 'src') source = value || undefined;
    else if (key === 'target' || key === 'dst' || key === 'destination') target = value;
    else if (key === 'readonly' || key === 'ro') readOnly = value === '' || /^(true|1)$/i.test(value);
    else if (key === 'tmpfs-size') sizeMib = sizeInMib(value);
    else if (IGNORED_KEYS.has(key)) ignored.push(rawKey);
    else return { error: `unknown mount option ${JSON.stringify(rawKey)}` };
  }
  if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs')
    return { error: `mount type ${JSON.stringify(type)} is not bind, volume or tmpfs` };
  if (!target) return { error: 'the mount has no target (target=/path in the container)' };
  if (!target.startsWith('/')) return { error: `the mount target ${JSON.stringify(target)} is not an absolute path` };
  if (type === 'bind' && !source) return { error: 'a bind mount needs a source (the host path)' };
  return {
    type,
    ...(source !== undefined && type !== 'tmpfs' ? { source } : {}),
    target: target.replace(/\/+$/, '') || '/',
    readOnly,
    ...(sizeMib ? { sizeMib } : {}),
    ignored,
  };
}

/** `64m`, `1g`, `65536` (bytes), as Docker's tmpfs-size takes them. */
function sizeInMib(value: string): number | undefined {
  const match = /^(\d+)([kmg]?)b?$/i.exec(value);
  if (!match) return undefined;
  const factor = { '': 1 / (1024 * 1024), k: 1 / 1024, m: 1, g: 1024 }[
    (match[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g'
  ];
  return Math.max(1, Math.ceil(Number(match[1]) * factor));
}
