import ignore from '@balena/dockerignore';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { MicrovmError } from '../errors';
import { encodeHeader, endOfArchive, paddingFor } from '../tar/writer';
import { newHeader, toBytePath } from '../tar/types';
import type { HashCache } from './hash-cache';

/**
 * The build context as the builder gets it: the folder's files less what .dockerignore
 * excludes (Docker's matching rules, through @balena/dockerignore), filtered here on the
 * host, so an ignored file (a .env with secrets) never reaches the builder VM. The guest gets
 * a tar stream of the rest (regular files, directories and symlinks, which are never
 * followed; sockets, fifos and devices are left out) and unpacks its own copy: no RUN step
 * can reach the user's folder.
 */
export interface ContextEntry {
  /** Relative to the context root, '/'-separated. */
  rel: string;
  type: 'file' | 'dir' | 'symlink';
  /** Permission bits (with setuid, setgid, sticky). */
  mode: number;
  size: number;
  mtimeSec: number;
  /** sha256 hex of a file's bytes; a symlink's target. */
  content: string;
}

export interface ContextScan {
  root: string;
  entries: ContextEntry[];
  /** Entries .dockerignore left out (an ignored directory counts once). */
  ignored: number;
  bytes: number;
  /** Of names, kinds, modes and contents (not times): equal digests, equal builds. */
  digest: string;
}

const MAX_IGNORE_FILE_BYTES = 1024 * 1024;
const MAX_ENTRIES = 1_000_000;

/** The patterns of `<Dockerfile>.dockerignore` (BuildKit's per-Dockerfile file) or `<context>/.dockerignore`. */
export function readIgnorePatterns(root: string, dockerfile: string): string[] {
  for (const file of [`${dockerfile}.dockerignore`, path.join(root, '.dockerignore')]) {
    const text = readRegularFile(file, MAX_IGNORE_FILE_BYTES, 'E_BUILD_CONTEXT');
    if (text !== undefined) return parseIgnoreFile(text);
  }
  return [];
}

/** Lines of a .dockerignore as Docker reads them: comments and blank lines dropped, leading "/" removed. */
export function parseIgnoreFile(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => (l.startsWith('!') ? `!${stripSlash(l.slice(1).trim())}` : stripSlash(l)))
    .filter((l) => l && l !== '!');
}

function stripSlash(pattern: string): string {
  return pattern.replace(/^\/+/, '');
}

/** Walks the context (sorted, symlinks not followed), applies the patterns and hashes what is kept. */
export async function scanContext(root: string, patterns: string[], hashes: HashCache): Promise<ContextScan> {
  const matcher = ignore().add(patterns);
  const hasExceptions = patterns.some((p) => p.startsWith('!'));
  const entries: ContextEntry[] = [];
  let ignored = 0;
  let bytes = 0;
  const walk = async (dirRel: string): Promise<void> => {
    const names = (
      await fsp.readdir(path.join(root, dirRel)).catch((err: Error) => {
        throw contextError(path.join(root, dirRel), err);
      })
    ).sort();
    for (const name of names) {
      const rel = dirRel ? `${dirRel}/${name}` : name;
      const abs = path.join(root, rel);
      const stat = await fsp.lstat(abs, { bigint: true }).catch((err: Error) => {
        throw contextError(abs, err);
      });
      const excluded = matcher.ignores(rel);
      if (stat.isDirectory()) {
        if (excluded && !hasExceptions) {
          ignored++;
          continue;
        }
        const at = entries.length;
        const ignoredBefore = ignored;
        entries.push(entry(rel, 'dir', stat, ''));
        await walk(rel);
        if (excluded && entries.length === at + 1) {
          entries.pop();
          ignored = ignoredBefore + 1;
        }
      } else if (excluded) {
        ignored++;
      } else if (stat.isFile()) {
        entries.push(entry(rel, 'file', stat, await hashes.hash(rel, stat, () => hashFile(rel, root))));
        bytes += Number(stat.size);
      } else if (stat.isSymbolicLink()) {
        entries.push(entry(rel, 'symlink', stat, await fsp.readlink(abs)));
      }
      if (entries.length > MAX_ENTRIES)
        throw new MicrovmError(
          'E_BUILD_CONTEXT',
          `the build context ${root} has more than ${MAX_ENTRIES} entries; list what the image does not need in .dockerignore`,
        );
    }
  };
  await walk('');
  return { root, entries, ignored, bytes, digest: digestOf(entries) };
}

function entry(rel: string, type: ContextEntry['type'], stat: fs.BigIntStats, content: string): ContextEntry {
  return {
    rel,
    type,
    mode: Number(stat.mode) & 0o7777,
    size: type === 'file' ? Number(stat.size) : 0,
    mtimeSec: Number(stat.mtimeMs / 1000n),
    content,
  };
}

function digestOf(entries: ContextEntry[]): string {
  const hash = createHash('sha256');
  for (const e of entries) hash.update(`${e.type}\0${e.rel}\0${e.mode.toString(8)}\0${e.size}\0${e.content}\n`);
  return `sha256:${hash.digest('hex')}`;
}

/**
 * The context as a tar stream (owner 0:0, modes and times kept, as Docker sends it). Each
 * file is read again through a descriptor that must still be the file scanned, inside the
 * context (a folder changed under the walk, a directory swapped for a symlink to elsewhere,
 * is refused), and its bytes must hash as scanned: what the builder gets is what the cache
 * key says.
 */
export async function* contextTar(scan: ContextScan): AsyncGenerator<Buffer> {
  for (const e of scan.entries) {
    const header = newHeader({
      path: toBytePath(e.rel),
      type: e.type,
      mode: e.mode,
      mtime: e.mtimeSec,
      size: e.size,
      linkpath: e.type === 'symlink' ? toBytePath(e.content) : '',
    });
    yield encodeHeader(header);
    if (e.type !== 'file') continue;
    const hash = createHash('sha256');
    let sent = 0;
    for await (const chunk of readInside(scan.root, e.rel)) {
      if (sent + chunk.length > e.size) throw changed(scan.root, e.rel);
      hash.update(chunk);
      sent += chunk.length;
      yield chunk;
    }
    if (sent !== e.size || hash.digest('hex') !== e.content) throw changed(scan.root, e.rel);
    yield Buffer.alloc(paddingFor(e.size));
  }
  yield endOfArchive();
}

async function hashFile(rel: string, root: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of readInside(root, rel)) hash.update(chunk);
  return hash.digest('hex');
}

/**
 * A context file's bytes, opened without following a final symlink and checked, through
 * /proc/self/fd, to be the file at ROOT/REL: a parent directory swapped for a symlink while
 * the build reads the folder cannot make it read a file from elsewhere.
 */
async function* readInside(root: string, rel: string): AsyncGenerator<Buffer> {
  const abs = path.join(root, rel);
  const handle = await fsp.open(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW).catch((err: Error) => {
    throw contextError(abs, err);
  });
  try {
    const real = await fsp.readlink(`/proc/self/fd/${handle.fd}`).catch(() => abs);
    if (real !== abs) throw changed(root, rel);
    const buffer = Buffer.alloc(256 * 1024);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return;
      yield Buffer.from(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
}

/** A small host file read without following a symlink; undefined when it does not exist. */
export function readRegularFile(
  file: string,
  maxBytes: number,
  code: 'E_BUILD_CONTEXT' | 'E_DOCKERFILE',
): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT') return undefined;
    const why =
      errno === 'ELOOP'
        ? 'it is a symbolic link (the builder reads only regular files in the folder)'
        : (err as Error).message;
    throw unreadable(code, file, `cannot read ${file}: ${why}; make it a readable regular file`, err);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw unreadable(code, file, `${file} is not a regular file; make it one`);
    if (stat.size > maxBytes)
      throw unreadable(code, file, `${file} is ${stat.size} bytes, over the ${maxBytes}-byte limit; shorten it`);
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** readRegularFile's failure: an E_DOCKERFILE names the Dockerfile in its details. */
function unreadable(
  code: 'E_BUILD_CONTEXT' | 'E_DOCKERFILE',
  file: string,
  message: string,
  cause?: unknown,
): MicrovmError {
  if (code === 'E_DOCKERFILE') return new MicrovmError(code, message, { cause, details: { file } });
  return new MicrovmError(code, message, { cause });
}

function contextError(file: string, err: Error): MicrovmError {
  return new MicrovmError(
    'E_BUILD_CONTEXT',
    `cannot read ${file} of the build context: ${err.message}; make it readable or list it in .dockerignore`,
    { cause: err },
  );
}

function changed(root: string, rel: string): MicrovmError {
  return new MicrovmError(
    'E_BUILD_CONTEXT',
    `${path.join(root, rel)} changed while the build context was being sent (or a folder on its path was replaced); build again once the folder is still`,
  );
}
