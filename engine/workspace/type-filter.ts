import { isProtected } from '../mount/view';

export { isProtected };

/**
 * What of a guest's node_modules may reach the host's type projection (pure): which paths,
 * which files, and what is left of a package.json. Everything here reads guest-written data.
 */

/** The caps of one projection; past any of them it stops and the previous projection stays. */
export interface TypeLimits {
  /** Files kept (declarations and package.json files). */
  maxFiles: number;
  /** Bytes kept, all files together. */
  maxBytes: number;
  /** One declaration file; a bigger one is skipped (and counted), not fatal. */
  maxFileBytes: number;
  /** One package.json; a bigger one is skipped. */
  maxPackageJsonBytes: number;
  /** A path below node_modules, in bytes. */
  maxPathBytes: number;
  /** Directories deep below node_modules. */
  maxDepth: number;
}

/** The bounds of a type projection unless the caller sets others. */
export const DEFAULT_TYPE_LIMITS: TypeLimits = {
  maxFiles: 100_000,
  maxBytes: 512 * 1024 * 1024,
  maxFileBytes: 16 * 1024 * 1024,
  maxPackageJsonBytes: 1024 * 1024,
  maxPathBytes: 1024,
  maxDepth: 32,
};

/**
 * The package.json fields module resolution reads. Everything else (scripts, bin, gypfile,
 * install hooks, config, workspaces, engines, ...) is dropped: no host tool can act on it.
 */
export const PACKAGE_JSON_FIELDS = [
  'name',
  'version',
  'types',
  'typings',
  'main',
  'module',
  'exports',
  'imports',
  'typesVersions',
  'type',
] as const;

/** Top-level names the projection keeps for itself: its marker (`.microvm-types.json`) and staging trees (`.tmp-<pid>-...`). */
const RESERVED_TOP_LEVEL = /^\.(microvm-|tmp-)/i;

/** The declaration file endings TypeScript reads (`.d.ts`, and the ESM/CJS forms). */
const DECLARATION = /\.d\.(ts|mts|cts)$/;

/** Whether a path from the guest's node_modules is projected onto the host, and as what, or why not. */
export type PathVerdict = { keep: 'declaration' | 'package-json'; path: string } | { skip: string };

/**
 * Whether a path from the guest (relative to its node_modules, as tar stored it) becomes a
 * projected file, and under which normalized path. A leading `./` is dropped; anything else
 * unusual (absolute, `..`, `.`, empty parts, NUL or control characters, backslashes,
 * invalid UTF-8, too long or too deep, a protected name anywhere) is skipped with the reason.
 */
export function judgePath(
  raw: string,
  protect: readonly string[],
  limits: TypeLimits = DEFAULT_TYPE_LIMITS,
): PathVerdict {
  const text = Buffer.from(raw, 'latin1').toString('utf8');
  if (Buffer.from(text, 'utf8').toString('latin1') !== raw) return { skip: 'not valid UTF-8' };
  if (/[\0-\x1f\x7f\\]/.test(text)) return { skip: 'a control character or backslash in the name' };
  if (text.startsWith('/')) return { skip: 'an absolute path' };
  const parts = text.replace(/^(\.\/)+/, '').split('/');
  if (parts.some((part) => part === '' || part === '.' || part === '..')) return { skip: 'an empty, "." or ".." part' };
  if (Buffer.byteLength(text, 'utf8') > limits.maxPathBytes)
    return { skip: `longer than ${limits.maxPathBytes} bytes` };
  if (parts.length - 1 > limits.maxDepth) return { skip: `deeper than ${limits.maxDepth} directories` };
  if (parts.some((part) => Buffer.byteLength(part, 'utf8') > 255)) return { skip: 'a name longer than 255 bytes' };
  if (RESERVED_TOP_LEVEL.test(parts[0] ?? '')) return { skip: 'a top-level name the projection keeps for itself' };
  const hit = parts.find((part) => isProtected(part, protect));
  if (hit !== undefined) return { skip: `the protected name ${JSON.stringify(hit)}` };
  const name = parts.at(-1) ?? '';
  const path = parts.join('/');
  if (name === 'package.json') return { keep: 'package-json', path };
  if (DECLARATION.test(name)) return { keep: 'declaration', path };
  return { skip: 'not a declaration file or package.json' };
}

/**
 * A package.json cut to the fields type resolution reads, as JSON text; or why it is skipped
 * (too big, not JSON, not an object). Field values are kept as they are: they are paths and
 * conditions tsserver reads, never commands.
 */
export function rewritePackageJson(
  data: Buffer,
  limits: TypeLimits = DEFAULT_TYPE_LIMITS,
): { text: string } | { skip: string } {
  if (data.length > limits.maxPackageJsonBytes) return { skip: `larger than ${limits.maxPackageJsonBytes} bytes` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch {
    return { skip: 'not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { skip: 'not a JSON object' };
  const kept: Record<string, unknown> = {};
  for (const field of PACKAGE_JSON_FIELDS) {
    if (Object.hasOwn(parsed, field)) kept[field] = (parsed as Record<string, unknown>)[field];
  }
  return { text: `${JSON.stringify(kept, null, 2)}\n` };
}
