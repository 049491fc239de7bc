import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MicrovmError, shown } from '../errors';

/** Where the spec looks for the configuration, in order. */
export const CONFIG_CANDIDATES = ['.devcontainer/devcontainer.json', '.devcontainer.json'] as const;
const MAX_CONFIG_BYTES = 1024 * 1024;

/** A devcontainer.json read from the host folder, before any guest runs. */
export interface ConfigFile {
  /** Relative to the folder, as the user names it: `.devcontainer/devcontainer.json`. */
  file: string;
  text: string;
  /** sha256 of the text: what a workspace pins, to notice a change at the next open. */
  digest: string;
}

/**
 * Reads the folder's devcontainer.json on the host. A candidate (or `.devcontainer/`) that is
 * a link may point elsewhere inside the folder, never outside it: that would let a project
 * read, say, another project's configuration and its environment. The filter view keeps the
 * guest from writing these names, so what is read here is what the host has.
 */
export function readConfigFile(folder: string): ConfigFile | undefined {
  const root = fs.realpathSync(folder);
  for (const file of CONFIG_CANDIDATES) {
    const full = path.join(root, file);
    let real: string;
    try {
      real = fs.realpathSync(full);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new MicrovmError('E_CONFIG', `cannot read ${file} in ${root}: ${(err as Error).message}`, { cause: err });
    }
    if (path.relative(root, real).startsWith('..') || path.isAbsolute(path.relative(root, real))) {
      throw new MicrovmError(
        'E_CONFIG',
        `${file} in ${root} is a link to ${shown(real)}, outside the folder: the configuration must live in the folder; replace the link with the file`,
      );
    }
    return { file, ...readCapped(real, file) };
  }
  return undefined;
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
