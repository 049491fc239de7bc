import * as path from 'node:path';
import { quote } from '../devcontainer/problems';
import { readEnvFile, readFolderFile, shownPath } from './files';
import { isMap, mergeComposeFiles } from './merge';
import type { ComposeProblems } from './problems';
import { readComposeYaml } from './yaml-file';

/** Includes may include; past this depth a chain is reported instead of followed. */
const MAX_DEPTH = 8;

export interface IncludeContext {
  folder: string;
  problems: ComposeProblems;
  /** Host variables the user allowed into VMs. */
  hostEnv: (name: string) => string | undefined;
  /** The host environment, only to report the names an included file asked for and did not get. */
  env: NodeJS.ProcessEnv;
  refused: Set<string>;
}

/** One included project: its data (without `include`), its file (absolute, and as problems name it), where its relative paths start. */
export interface Included {
  data: Record<string, unknown>;
  path: string;
  file: string;
  dir: string;
}

/**
 * Compose's top-level `include` (compose 2.20): each entry a path, or `{path, project_directory,
 * env_file}` where path may list files merged as `-f` merges them. An included file is a project
 * of its own: its relative paths start at project_directory (its own folder by default), its
 * variables come from the host variables the user allowed, then its own `.env` (or env_file).
 * Files are read with dockerComposeFile's rules (inside the folder only); includes of
 * includes come first, in order.
 */
export function readIncludes(
  parsed: Record<string, unknown>,
  file: string,
  ctx: IncludeContext,
  chain: readonly string[] = [],
): Included[] {
  const entries = parsed.include;
  delete parsed.include;
  if (entries === undefined) return [];
  const shown = shownPath(ctx.folder, file);
  if (!Array.isArray(entries)) {
    ctx.problems.add(
      shown,
      'error',
      'compose-include',
      'include',
      `include is ${quote(entries)}, not a list`,
      'the compose project cannot start; list the files to include',
    );
    return [];
  }
  const out: Included[] = [];
  entries.forEach((entry, i) => {
    const spec = includeSpec(entry);
    if (!spec) {
      ctx.problems.add(
        shown,
        'error',
        'compose-include',
        `include[${i}]`,
        `${quote(entry)} is not a path or {path, project_directory, env_file}`,
        'the compose project cannot start; fix include',
      );
      return;
    }
    const base = path.dirname(file);
    const paths = spec.paths.map((p) => path.resolve(base, p));
    const dir =
      spec.projectDirectory !== undefined
        ? path.resolve(base, spec.projectDirectory)
        : path.dirname(paths[0] as string);
    const envFiles = spec.envFiles?.map((f) => path.resolve(base, f)) ?? [path.join(dir, '.env')];
    const dotenv = Object.assign({}, ...envFiles.map((f) => readEnvFile(ctx.folder, f, ctx.problems))) as Record<
      string,
      string
    >;
    const lookup = (name: string) => {
      const value = ctx.hostEnv(name) ?? dotenv[name];
      if (value === undefined && ctx.env[name] !== undefined) ctx.refused.add(name);
      return value;
    };
    const data: Array<Record<string, unknown>> = [];
    const nested: Included[] = [];
    for (const full of paths) {
      const where = shownPath(ctx.folder, full);
      if (chain.includes(full) || full === file || chain.length >= MAX_DEPTH) {
        ctx.problems.add(
          shown,
          'error',
          'compose-include',
          `include[${i}]`,
          `${where} includes itself, or the chain of includes is deeper than ${MAX_DEPTH}`,
          'the compose project cannot start; fix include',
        );
        continue;
      }
      const read = readFolderFile(ctx.folder, full);
      if ('error' in read) {
        ctx.problems.add(
          shown,
          'error',
          'compose-file',
          `include[${i}]`,
          `the included file ${where} cannot be read: ${read.detail}`,
          'the compose project cannot start; fix include',
        );
        continue;
      }
      const one = readComposeYaml(read.text, where, lookup, ctx.problems);
      if (!one) continue;
      nested.push(...readIncludes(one, full, ctx, [...chain, file]));
      // An included project's name is its own: the including project keeps its name.
      delete one.name;
      data.push(one);
    }
    if (data.length > 0)
      out.push(...nested, {
        data: mergeComposeFiles(data),
        path: paths[0] as string,
        file: shownPath(ctx.folder, paths[0] as string),
        dir,
      });
  });
  return out;
}

function includeSpec(entry: unknown): { paths: string[]; projectDirectory?: string; envFiles?: string[] } | undefined {
  if (typeof entry === 'string' && entry !== '') return { paths: [entry] };
  if (!isMap(entry)) return undefined;
  const paths = typeof entry.path === 'string' ? [entry.path] : entry.path;
  const envFiles = typeof entry.env_file === 'string' ? [entry.env_file] : entry.env_file;
  if (!isStrings(paths) || paths.length === 0) return undefined;
  if (entry.project_directory !== undefined && typeof entry.project_directory !== 'string') return undefined;
  if (envFiles !== undefined && !isStrings(envFiles)) return undefined;
  return {
    paths,
    ...(typeof entry.project_directory === 'string' ? { projectDirectory: entry.project_directory } : {}),
    ...(envFiles ? { envFiles } : {}),
  };
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string' && v !== '');
}
