import { OVERRIDE, RESET } from './yaml-file';

/**
 * Merges compose files the way `docker compose -f a.yml -f b.yml` does: mappings merge key
 * by key, later scalars win; `environment`, `labels`, `build.args` and `depends_on` merge by
 * key (list forms first become maps); `ports`, `expose`, `env_file`, `tmpfs`, `profiles`
 * and the like append; `volumes` merge by their target; `command`, `entrypoint` and
 * `healthcheck.test` replace. `!reset` removes a key, `!override` replaces without merging.
 */
type Data = Record<string, unknown>;

const BY_KEY = new Set(['environment', 'labels', 'args', 'depends_on', 'extra_hosts', 'sysctls', 'annotations']);
const APPENDED = new Set([
  'ports',
  'expose',
  'env_file',
  'tmpfs',
  'profiles',
  'dns',
  'dns_search',
  'cap_add',
  'cap_drop',
  'security_opt',
  'external_links',
  'links',
  'group_add',
]);
const BY_TARGET = new Set(['volumes', 'devices']);
const REPLACED = new Set(['command', 'entrypoint', 'test']);

export function mergeComposeFiles(files: Data[]): Data {
  return files.reduce<Data>((merged, file) => mergeMaps(merged, file, []), {});
}

function mergeMaps(base: Data, over: Data, at: string[]): Data {
  const out: Data = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === RESET) {
      delete out[key];
      continue;
    }
    const overridden = unwrapOverride(value);
    if (overridden !== undefined) {
      out[key] = overridden;
      continue;
    }
    out[key] = key in out ? mergeValue(key, out[key], value, [...at, key]) : stripMarkers(value);
  }
  return out;
}

function mergeValue(key: string, base: unknown, over: unknown, at: string[]): unknown {
  // Inside services.<name>, keys have their own rules; elsewhere (top-level volumes, networks) maps merge.
  const inService = at.length >= 3 && at[0] === 'services';
  if (inService && REPLACED.has(key)) return stripMarkers(over);
  if (inService && BY_KEY.has(key)) return mergeMaps(asMap(base), asMap(over), at);
  if (inService && APPENDED.has(key) && Array.isArray(base) && Array.isArray(over))
    return [...base, ...(stripMarkers(over) as unknown[])];
  if (inService && BY_TARGET.has(key) && Array.isArray(base) && Array.isArray(over))
    return mergeByTarget(base, stripMarkers(over) as unknown[]);
  if (inService && key === 'build' && (typeof base === 'string' || typeof over === 'string')) {
    return mergeMaps(buildMap(base), buildMap(over), at);
  }
  if (isMap(base) && isMap(over)) return mergeMaps(base, over, at);
  return stripMarkers(over);
}

/** `KEY=VALUE` lists (environment, labels, args) and name lists (depends_on) as maps. */
export function asMap(value: unknown): Data {
  if (isMap(value)) return value;
  if (!Array.isArray(value)) return {};
  const out: Data = {};
  for (const item of value) {
    if (typeof item !== 'string') continue;
    const eq = item.indexOf('=');
    if (eq < 0) out[item] = null;
    else out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

function buildMap(value: unknown): Data {
  return typeof value === 'string' ? { context: value } : isMap(value) ? value : {};
}

/** Volumes and devices: a later entry for the same target replaces the earlier one in place. */
function mergeByTarget(base: unknown[], over: unknown[]): unknown[] {
  const out = [...base];
  for (const entry of over) {
    const target = targetOf(entry);
    const index = target === undefined ? -1 : out.findIndex((e) => targetOf(e) === target);
    if (index >= 0) out[index] = entry;
    else out.push(entry);
  }
  return out;
}

function targetOf(entry: unknown): string | undefined {
  if (typeof entry === 'string') {
    const parts = entry.split(':');
    return parts.length === 1 ? parts[0] : parts[1];
  }
  if (isMap(entry) && typeof entry.target === 'string') return entry.target;
  return undefined;
}

function unwrapOverride(value: unknown): unknown {
  return isMap(value) && OVERRIDE in value ? stripMarkers(value[OVERRIDE]) : undefined;
}

/** A value taken as it is: nested `!override` wrappers unwrapped, `!reset` entries dropped. */
function stripMarkers(value: unknown): unknown {
  if (Array.isArray(value)) return value.filter((v) => v !== RESET).map(stripMarkers);
  if (!isMap(value)) return value;
  const overridden = unwrapOverride(value);
  if (overridden !== undefined) return overridden;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== RESET)
      .map(([k, v]) => [k, stripMarkers(v)]),
  );
}

export function isMap(value: unknown): value is Data {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
