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

/** The names a configuration file may have (`--config` and the picker accept no other). */
export const CONFIG_NAMES = ['devcontainer.json', '.devcontainer.json'] as const;

/**
 * Every configuration of the folder, in the spec's order: `.devcontainer/devcontainer.json`,
 * `.devcontainer.json`, then `.devcontainer/<folder>/devcontainer.json` by name. Each is a
 * path relative to the folder, as the user names it. A candidate that is a link out of the
 * folder is refused (E_CONFIG), as reading it would be.
 */
export function listConfigFiles(folder: string): string[] {
  return candidates(fs.realpathSync(folder)).map((c) => c.file);
}

/**
 * Reads the folder's devcontainer.json on the host: `.devcontainer/devcontainer.json`, else
 * `.devcontainer.json`, else one in a subfolder of `.devcontainer/` (the spec's third place;
 * with several, the first by name, the others listed). `chosen` (a path, see chosenConfigFile)
 * reads that one instead, with no others listed. A candidate (or `.devcontainer/`) that is a
 * link may point elsewhere inside the folder, never outside it: that would let a project
 * read, say, another project's configuration and its environment. The filter view keeps the
 * guest from writing these names, so what is read here is what the host has.
 */
export function readConfigFile(folder: string, chosen?: string): ConfigFile | undefined {
  const root = fs.realpathSync(folder);
  if (chosen !== undefined) {
    const file = chosenConfigFile(root, chosen);
    return { file, ...readCapped(fs.realpathSync(path.join(root, file)), file) };
  }
  const found = candidates(root);
  const [first] = found;
  if (!first) return undefined;
  const nested = first.file.split('/').length > 2;
  return {
    file: first.file,
    ...readCapped(first.real, first.file),
    ...(nested && found.length > 1 ? { others: found.slice(1).map((n) => n.file) } : {}),
  };
}

/**
 * The configuration the user chose by path (absolute, or relative to the folder), as a path
 * relative to the folder: it must be a regular file inside the folder by its real path, named
 * devcontainer.json or .devcontainer.json. Throws E_CONFIG_PATH naming the path otherwise.
 * Links on the way are kept in the name when the file's directory is inside the folder, so a
 * choice names a configuration as the listing does.
 */
export function chosenConfigFile(folder: string, chosen: string): string {
  const root = fs.realpathSync(folder);
  const given = path.resolve(root, chosen);
  const refuse = (why: string, cause?: unknown) =>
    new MicrovmError(
      'E_CONFIG_PATH',
      `the configuration ${shown(given)} ${why}; choose a devcontainer.json or .devcontainer.json inside ${shown(root)}`,
      cause === undefined ? undefined : { cause },
    );
  if (!(CONFIG_NAMES as readonly string[]).includes(path.basename(given)))
    throw refuse('is not named devcontainer.json or .devcontainer.json');
  let real: string;
  try {
    real = fs.realpathSync(given);
  } catch (err) {
    throw refuse(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, err);
  }
  if (!inside(root, real)) throw refuse(`is outside the folder (its real path is ${shown(real)})`);
  if (!fs.statSync(real).isFile()) throw refuse('is not a regular file');
  const dir = fs.realpathSync(path.dirname(given));
  const relative = inside(root, dir)
    ? path.join(path.relative(root, dir), path.basename(given))
    : path.relative(root, real);
  return relative.split(path.sep).join('/');
}

/** Whether `real` is `root` or under it. */
function inside(root: string, real: string): boolean {
  const relative = path.relative(root, real);
  return relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative);
}

/** The spec's candidates that exist, in its order, each with its real path. */
function candidates(root: string): Array<{ file: string; real: string }> {
  const top = CONFIG_CANDIDATES.flatMap((file) => {
    const real = realCandidate(root, file);
    return real ? [{ file, real }] : [];
  });
  return [...top, ...nestedCandidates(root)];
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
  if (!inside(root, real)) {
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
