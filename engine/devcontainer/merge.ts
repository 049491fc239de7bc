import { parseMount } from './mounts';

/**
 * The spec's merge of image metadata entries (the `devcontainer.metadata` label of the image,
 * then one per feature in install order) with devcontainer.json, last: the shape the
 * reference CLI prints as `mergedConfiguration`. Entries are plain JSON objects.
 */
const HOOKS = [
  'onCreateCommand',
  'updateContentCommand',
  'postCreateCommand',
  'postStartCommand',
  'postAttachCommand',
] as const;
const LAST_WINS = [
  'waitFor',
  'remoteUser',
  'containerUser',
  'userEnvProbe',
  'otherPortsAttributes',
  'shutdownAction',
] as const;
const LAST_BOOLEAN_WINS = ['overrideCommand', 'updateRemoteUserUID'] as const;
const UNIONS = ['capAdd', 'securityOpt'] as const;

type Entry = Record<string, unknown>;

export function mergeConfiguration(config: Entry, metadata: Entry[] = []): Entry {
  const entries = [...metadata, config];
  const reversed = [...entries].reverse();
  const merged: Entry = { ...config };
  for (const key of ['customizations', 'entrypoint', ...HOOKS, 'shutdownAction']) delete merged[key];
  merged.init = entries.some((e) => e.init === true);
  merged.privileged = entries.some((e) => e.privileged === true);
  for (const key of UNIONS) {
    const all = [...new Set(entries.flatMap((e) => (Array.isArray(e[key]) ? (e[key] as unknown[]) : [])))];
    if (all.length > 0) merged[key] = all;
    else delete merged[key];
  }
  const entrypoints = entries.map((e) => e.entrypoint).filter(Boolean);
  if (entrypoints.length > 0) merged.entrypoints = entrypoints;
  for (const hook of HOOKS)
    merged[`${hook}s`] = entries
      .map((e) => e[hook])
      .filter((c) => c !== undefined && c !== '' && !(Array.isArray(c) && c.length === 0));
  for (const key of LAST_WINS) {
    const value = reversed.find((e) => e[key])?.[key];
    if (value !== undefined) merged[key] = value;
  }
  for (const key of LAST_BOOLEAN_WINS) {
    const value = reversed.find((e) => typeof e[key] === 'boolean')?.[key];
    if (value !== undefined) merged[key] = value;
  }
  for (const key of ['remoteEnv', 'containerEnv', 'portsAttributes']) {
    const value = Object.assign({}, ...entries.map((e) => (isObject(e[key]) ? e[key] : {})));
    if (Object.keys(value).length > 0) merged[key] = value;
  }
  const mounts = mergeMounts(entries);
  if (mounts.length > 0) merged.mounts = mounts;
  const ports = mergeForwardPorts(entries);
  if (ports.length > 0) merged.forwardPorts = ports;
  merged.customizations = mergeCustomizations(entries);
  return merged;
}

/** In order, one per target: a later mount at the same target replaces the earlier one. */
function mergeMounts(entries: Entry[]): unknown[] {
  const all = entries.flatMap((e) => (Array.isArray(e.mounts) ? (e.mounts as unknown[]) : []));
  const targetOf = (m: unknown) => {
    const parsed = parseMount(m);
    return 'error' in parsed ? JSON.stringify(m) : parsed.target;
  };
  return all.filter((m, i) => !all.slice(i + 1).some((later) => targetOf(later) === targetOf(m)));
}

/** Union, first occurrence kept; `N` and `"localhost:N"` are the same port. */
function mergeForwardPorts(entries: Entry[]): unknown[] {
  const seen = new Set<string>();
  const out: unknown[] = [];
  for (const port of entries.flatMap((e) => (Array.isArray(e.forwardPorts) ? (e.forwardPorts as unknown[]) : []))) {
    const key = typeof port === 'number' ? `localhost:${port}` : String(port);
    if (seen.has(key)) continue;
    seen.add(key);
    const local = /^localhost:(\d+)$/.exec(key);
    out.push(local ? Number(local[1]) : port);
  }
  return out;
}

/** Per tool key, the entries' values in order: `{vscode: [{...}, {...}]}`. */
function mergeCustomizations(entries: Entry[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const entry of entries) {
    if (!isObject(entry.customizations)) continue;
    for (const [tool, value] of Object.entries(entry.customizations)) (out[tool] ??= []).push(value);
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
