import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import type { ComposeProblems } from './problems';

/** Compose files, `.env` and env files are small text files; a larger one is refused, not read. */
export const MAX_COMPOSE_FILE_BYTES = 1024 * 1024;

export type FolderFile =
  | { text: string; real: string }
  | { error: 'missing' | 'outside' | 'not-file' | 'too-big' | 'unreadable'; detail: string };

/**
 * Reads a file the project names, on the host, only when it lies inside the workspace folder
 * (after links are resolved): a compose file must not be a way to read the host's other files
 * (an env file of another project, `~/.aws/...`) into a VM. The filter view keeps the guest from
 * writing `.devcontainer/`, so what is read there is what the host has.
 */
export function readFolderFile(folder: string, file: string): FolderFile {
  const root = fs.realpathSync(folder);
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? { error: 'missing', detail: 'it does not exist' }
      : { error: 'unreadable', detail: (err as Error).message };
  }
  if (!isInside(root, real)) return { error: 'outside', detail: `it is outside the workspace folder (${real})` };
  let fd: number;
  try {
    fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    return { error: 'unreadable', detail: (err as Error).message };
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) return { error: 'not-file', detail: 'it is not a regular file' };
    if (stat.size > MAX_COMPOSE_FILE_BYTES)
      return { error: 'too-big', detail: `it is ${stat.size} bytes, more than ${MAX_COMPOSE_FILE_BYTES}` };
    return { text: fs.readFileSync(fd, 'utf8'), real };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A host path with every link resolved, as the mount layer and the builder will resolve it:
 * the real path of its longest existing prefix, with the parts that do not exist yet appended.
 * A bind or build context must be judged by this, not by its text: `./link` in the folder may
 * be a link the repository carries to `~` or `/`.
 */
export function realPathOf(file: string): string {
  const absolute = path.resolve(file);
  const rest: string[] = [];
  let at = absolute;
  for (;;) {
    try {
      return path.join(fs.realpathSync(at), ...rest.reverse());
    } catch (err) {
      const parent = path.dirname(at);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === at) return absolute;
      rest.push(path.basename(at));
      at = parent;
    }
  }
}

export function isInside(root: string, target: string): boolean {
  const rel = path.relative(root, target);
  return !(rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel));
}

/** A host path as a message shows it: relative to the folder when inside it. */
export function shownPath(folder: string, file: string): string {
  const rel = path.relative(folder, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

/** An env file for interpolation (a project's `.env`): its variables, or none when it is missing; other failures are reported. */
export function readEnvFile(folder: string, file: string, problems: ComposeProblems): Record<string, string> {
  const read = readFolderFile(folder, file);
  if (!('error' in read)) return parseDotenv(read.text);
  if (read.error !== 'missing')
    problems.add(
      shownPath(folder, file),
      'warning',
      'compose-env-file',
      '$',
      `the .env file cannot be read: ${read.detail}`,
      'the compose files are read without its variables',
    );
  return {};
}
