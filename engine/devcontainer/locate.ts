import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MicrovmError, shown } from '../errors';

/** Where the spec looks for the configuration, in order; then `.devcontainer/<folder>/devcontainer.json`. */
export const CONFIG_CANDIDATES = ['.devcontainer/devcontainer.json', '.devcontainer.json'] as const;
const MAX_CONFIG_BYTES = 1024 * 1024;

/** A devcontainer.json read from the host folder, before any guest runs. */
export interface ConfigFile {
  /** Relative to the folder, as the user names it: `.devcontainer/devcontainer.json`. */
  file: string;
  text: string;
  /** sha256 of the text: what a workspace pins, to notice a change at the next open. */
  digest: string;
  /** Other configurations in `.devcontainer/<folder>/`, not used (the first by name was). */
  others?: string[];
}

/**
 * Reads the folder's devcontainer.json on the host: `.devcontainer/devcontainer.json`, else
 * `.devcontainer.json`, else one in a subfolder of `.devcontainer/` (the spec's third place;
 * with several, the first by name, the others listed). A candidate (or `.devcontainer/`) that
 * is a link may point elsewhere inside the folder, never outside it: that would let a project
 * read, say, another project's configuration and its environment. The filter view keeps the
 * guest from writing these names, so what is read here is what the host has.
 */
export function readConfigFile(folder: string): ConfigFile | undefined {
  const root = fs.realpathSync(folder);
  for (const file of CONFIG_CANDIDATES) {
    const real = realCandidate(root, file);
    if (real) return { file, ...readCapped(real, file) };
  }
  const nested = nestedCandidates(root);
  const [first] = nested;
  if (!first) return undefined;
  return {
    file: first.file,
    ...readCapped(first.real, first.file),
    ...(nested.length > 1 ? { others: nested.slice(1).map((n) => n.file) } : {}),
  };
}

/** The candidate's real path, undefined when it does not exist; a link out of the folder is refused. */
function realCandidate(root: string, file: string): string | undefined {
  let real: string;
  try {
    real = fs.realpathSync(path.join(root, file));
  } catch (err) {
    // ENOTDIR: `.devcontainer` (or a name in it) is a file, so there is no configuration there.
    if (['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw new MicrovmError('E_CONFIG', `cannot read ${file} in ${root}: ${(err as Error).message}`, { cause: err });
  }
  if (path.relative(root, real).startsWith('..') || path.isAbsolute(path.relative(root, real))) {
    throw new MicrovmError(
      'E_CONFIG',
      `${file} in ${root} is a link to ${shown(real)}, outside the folder: the configuration must live in the folder; replace the link with the file`,
    );
  }
  return real;
}

/** `.devcontainer/<folder>/devcontainer.json`, one level deep, by name. */
function nestedCandidates(root: string): Array<{ file: string; real: string }> {
  let names: string[];
  try {
    names = fs.readdirSync(path.join(root, '.devcontainer')).sort();
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const file = `.devcontainer/${name}/devcontainer.json`;
    const real = realCandidate(root, file);
    return real ? [{ file, real }] : [];
  });
}

function readCapped(real: string, file: string): { text: string; digest: string } {
  const fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new MicrovmError('E_CONFIG', `${file} is not a regular file; it must be a JSON file`);
    if (stat.size > MAX_CONFIG_BYTES)
      throw new MicrovmError(
        'E_CONFIG',
        `${file} is ${stat.size} bytes, more than ${MAX_CONFIG_BYTES}; a devcontainer.json is a small JSON file`,
      );
    const bytes = fs.readFileSync(fd);
    return { text: bytes.toString('utf8'), digest: createHash('sha256').update(bytes).digest('hex') };
  } finally {
    fs.closeSync(fd);
  }
}
