import * as path from 'node:path';
import { quote } from '../devcontainer/problems';
import type { Lookup } from './interpolate';
import { readFolderFile, shownPath } from './files';
import { isMap, mergeComposeFiles } from './merge';
import type { ComposeProblems } from './problems';
import { yamlPath } from './problems';
import { readComposeYaml } from './yaml-file';

type Data = Record<string, unknown>;

/** A chain of extends longer than this is reported instead of followed. */
const MAX_DEPTH = 8;

export interface ExtendsContext {
  folder: string;
  problems: ComposeProblems;
  lookup: Lookup;
}

/**
 * Compose's service `extends` (`{service, file}`, or a service name): the service becomes its
 * base (followed to the base's own base) merged with what it writes itself, by the `-f` merge
 * rules. A base in another file is read by dockerComposeFile's rules (inside the folder only),
 * and its relative paths (build context, env_file, bind sources) start at that file's folder,
 * as in docker compose. `fileOf` names the file (absolute) that defines each service.
 */
export function resolveExtends(services: Data, fileOf: (name: string) => string, ctx: ExtendsContext): void {
  const files = new Map<string, Data | undefined>();
  for (const name of Object.keys(services)) {
    if (!isMap(services[name]) || services[name].extends === undefined) continue;
    const resolved = follow(name, services, fileOf(name), [], ctx, files);
    if (resolved) services[name] = resolved;
  }
}

function follow(
  name: string,
  pool: Data,
  file: string,
  chain: readonly string[],
  ctx: ExtendsContext,
  files: Map<string, Data | undefined>,
): Data | undefined {
  const raw = pool[name];
  if (!isMap(raw)) return undefined;
  if (raw.extends === undefined) return raw;
  const shown = shownPath(ctx.folder, file);
  const at = yamlPath(['services', name, 'extends']);
  const report = (message: string) =>
    ctx.problems.add(
      shown,
      'error',
      'compose-extends',
      at,
      message,
      `service ${JSON.stringify(name)} cannot start; fix extends`,
    );
  const spec = extendsSpec(raw.extends);
  if (!spec) return void report(`extends is ${quote(raw.extends)}, not a service name or {service, file}`);
  const key = `${file}\0${name}`;
  if (chain.includes(key) || chain.length >= MAX_DEPTH)
    return void report(`extends goes round in a circle, or deeper than ${MAX_DEPTH}`);
  const baseFile = spec.file === undefined ? file : path.resolve(path.dirname(file), spec.file);
  const basePool = baseFile === file ? pool : servicesOf(baseFile, shown, at, ctx, files);
  if (!basePool) return undefined;
  let base = follow(spec.service, basePool, baseFile, [...chain, key], ctx, files);
  if (!base) {
    if (!isMap(basePool[spec.service]))
      report(`extends ${JSON.stringify(spec.service)}, which ${shownPath(ctx.folder, baseFile)} does not define`);
    return undefined;
  }
  if (baseFile !== file) base = withAbsolutePaths(base, path.dirname(baseFile));
  const own = { ...raw };
  delete own.extends;
  const merged = mergeComposeFiles([{ services: { [name]: base } }, { services: { [name]: own } }]);
  return (merged.services as Data)[name] as Data;
}

function extendsSpec(value: unknown): { service: string; file?: string } | undefined {
  if (typeof value === 'string' && value !== '') return { service: value };
  if (!isMap(value) || typeof value.service !== 'string' || value.service === '') return undefined;
  if (value.file !== undefined && typeof value.file !== 'string') return undefined;
  return { service: value.service, ...(typeof value.file === 'string' ? { file: value.file } : {}) };
}

/** The services of another compose file, read once. */
function servicesOf(
  file: string,
  from: string,
  at: string,
  ctx: ExtendsContext,
  files: Map<string, Data | undefined>,
): Data | undefined {
  if (!files.has(file)) {
    const read = readFolderFile(ctx.folder, file);
    if ('error' in read) {
      ctx.problems.add(
        from,
        'error',
        'compose-file',
        at,
        `the file extends names, ${shownPath(ctx.folder, file)}, cannot be read: ${read.detail}`,
        'the service cannot start; fix extends',
      );
      files.set(file, undefined);
    } else {
      const parsed = readComposeYaml(read.text, shownPath(ctx.folder, file), ctx.lookup, ctx.problems);
      files.set(file, parsed && isMap(parsed.services) ? parsed.services : {});
    }
  }
  return files.get(file);
}

/** A base service's relative paths made absolute from its own file's folder. */
function withAbsolutePaths(service: Data, dir: string): Data {
  // A path, not a URL (a git context) nor one of the host's (~): relative to the base's file.
  const abs = (p: string) =>
    path.isAbsolute(p) || p.startsWith('~') || /^[a-z][a-z0-9+.-]*:\/\/|^git@/i.test(p) ? p : path.resolve(dir, p);
  const out = { ...service };
  if (typeof out.build === 'string') out.build = abs(out.build);
  else if (isMap(out.build) && typeof out.build.context === 'string')
    out.build = { ...out.build, context: abs(out.build.context) };
  else if (isMap(out.build) && out.build.context === undefined) out.build = { ...out.build, context: dir };
  if (typeof out.env_file === 'string') out.env_file = abs(out.env_file);
  else if (Array.isArray(out.env_file))
    out.env_file = out.env_file.map((e) =>
      typeof e === 'string' ? abs(e) : isMap(e) && typeof e.path === 'string' ? { ...e, path: abs(e.path) } : e,
    );
  if (Array.isArray(out.volumes))
    out.volumes = out.volumes.map((v) => {
      // Short syntax: a source is a path when it starts with `.` (else a volume name, or absolute).
      if (typeof v === 'string' && v.startsWith('.')) {
        const colon = v.indexOf(':');
        return colon < 0 ? v : `${abs(v.slice(0, colon))}${v.slice(colon)}`;
      }
      if (isMap(v) && v.type === 'bind' && typeof v.source === 'string') return { ...v, source: abs(v.source) };
      return v;
    });
  return out;
}
