import { ByteSource, StreamEndedError } from './byte-source';
import { BLOCK_SIZE, newHeader, paddingFor, type TarEntryType, type TarHeader } from './types';

export interface TarLimits {
  maxPaxHeaderBytes: number;
  maxPathBytes: number;
  maxEntries: number;
}

export const DEFAULT_TAR_LIMITS: TarLimits = {
  maxPaxHeaderBytes: 1024 * 1024,
  maxPathBytes: 4096,
  maxEntries: 1_000_000,
};

export interface TarEntry {
  header: TarHeader;
  /** The entry's content; reading it is optional, whatever is left unread is skipped. */
  body(): AsyncGenerator<Buffer>;
}

export interface TarReadOptions {
  /**
   * Read on past end-of-archive blocks, as GNU tar's --ignore-zeros does: the input is several
   * archives one after another (a guest's `find -exec tar -c -f - {} +` writes one per batch).
   */
  concatenated?: boolean;
}

/** A malformed or over-limit archive. The caller wraps it with the layer it came from. */
export class TarFormatError extends Error {}

const ENTRY_TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

interface Overrides {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  xattrs: Map<string, Buffer>;
}

/**
 * Streams the entries of a tar archive (ustar, PAX, GNU long names). Bounded: PAX and GNU
 * long-name payloads, path lengths and the entry count are capped. The source is read to its
 * end even after the end-of-archive blocks, so a verifying source can check its digest.
 */
export async function* readTar(
  source: AsyncIterable<Buffer>,
  limits: TarLimits = DEFAULT_TAR_LIMITS,
  options: TarReadOptions = {},
): AsyncGenerator<TarEntry> {
  const input = new ByteSource(source);
  try {
    let entries = 0;
    let overrides: Overrides = { xattrs: new Map() };
    for (;;) {
      const block = await input.readExact(BLOCK_SIZE);
      if (!block) break;
      if (block.every((b) => b === 0)) {
        if (options.concatenated) continue;
        break;
      }
      verifyChecksum(block);
      const flag = String.fromCharCode(block.readUInt8(156));
      const size = readNumber(block, 124, 12, 'size');
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        const cap = flag === 'L' || flag === 'K' ? limits.maxPathBytes + 1 : limits.maxPaxHeaderBytes;
        if (size > cap)
          throw new TarFormatError(`a '${flag}' extension header of ${size} bytes exceeds the ${cap}-byte cap`);
        const payload = (await input.readExact(size)) ?? Buffer.alloc(0);
        if (payload.length !== size) throw new TarFormatError('archive ends inside an extension header');
        await input.skip(paddingFor(size));
        if (flag === 'x') parsePax(payload, overrides);
        else if (flag === 'L') overrides.path = cString(payload);
        else if (flag === 'K') overrides.linkpath = cString(payload);
        continue; // Global ('g') headers only set defaults such as a comment; they are ignored.
      }
      const type = ENTRY_TYPES[flag];
      if (!type)
        throw new TarFormatError(`unsupported tar entry type '${printable(flag)}' (GNU sparse files and others)`);
      if (++entries > limits.maxEntries) throw new TarFormatError(`more than ${limits.maxEntries} entries`);
      const header = buildHeader(block, type, overrides, limits);
      overrides = { xattrs: new Map() };
      const bodySize = type === 'file' ? header.size : 0;
      let left = bodySize;
      yield {
        header,
        async *body() {
          while (left > 0) {
            const chunk = await input.next(left);
            if (!chunk) throw new TarFormatError(`archive ends inside the content of ${header.path}`);
            left -= chunk.length;
            yield chunk;
          }
        },
      };
      await input.skip(left + paddingFor(bodySize));
    }
    await input.drain();
  } catch (err) {
    if (err instanceof StreamEndedError) throw new TarFormatError(`the archive is truncated: ${err.message}`);
    throw err;
  } finally {
    await input.close();
  }
}

function buildHeader(block: Buffer, type: TarEntryType, o: Overrides, limits: TarLimits): TarHeader {
  let path = o.path;
  if (path === undefined) {
    const name = cString(block.subarray(0, 100));
    const prefix = block.toString('latin1', 257, 262) === 'ustar' ? cString(block.subarray(345, 500)) : '';
    path = prefix ? `${prefix}/${name}` : name;
  }
  const linkpath = o.linkpath ?? cString(block.subarray(157, 257));
  for (const [what, value] of [
    ['path', path],
    ['link target', linkpath],
  ] as const) {
    if (Buffer.byteLength(value, 'latin1') > limits.maxPathBytes) {
      throw new TarFormatError(`a ${what} of ${value.length} bytes exceeds the ${limits.maxPathBytes}-byte cap`);
    }
    if (value.includes('\0')) throw new TarFormatError(`a ${what} contains a NUL byte`);
  }
  return newHeader({
    path,
    type,
    mode: readNumber(block, 100, 8, 'mode') & 0o7777,
    uid: o.uid ?? readNumber(block, 108, 8, 'uid'),
    gid: o.gid ?? readNumber(block, 116, 8, 'gid'),
    mtime: o.mtime ?? readNumber(block, 136, 12, 'mtime'),
    size: o.size ?? readNumber(block, 124, 12, 'size'),
    linkpath,
    devmajor: readNumber(block, 329, 8, 'devmajor'),
    devminor: readNumber(block, 337, 8, 'devminor'),
    xattrs: o.xattrs,
  });
}

/** PAX records are `LENGTH key=value\n`, LENGTH counting the whole record in bytes. */
function parsePax(payload: Buffer, o: Overrides): void {
  let pos = 0;
  while (pos < payload.length) {
    const space = payload.indexOf(0x20, pos);
    if (space === -1 || space - pos > 10) throw new TarFormatError('malformed PAX record length');
    const length = Number(payload.toString('latin1', pos, space));
    const end = pos + length;
    if (!Number.isSafeInteger(length) || length <= space - pos || end > payload.length || payload[end - 1] !== 0x0a) {
      throw new TarFormatError('malformed PAX record');
    }
    const record = payload.subarray(space + 1, end - 1);
    const equals = record.indexOf(0x3d);
    if (equals === -1) throw new TarFormatError('PAX record without "="');
    applyPax(record.toString('utf8', 0, equals), record.subarray(equals + 1), o);
    pos = end;
  }
}

function applyPax(key: string, value: Buffer, o: Overrides): void {
  const text = value.toString('latin1');
  const integer = (): number => {
    if (!/^\d{1,18}$/.test(text)) throw new TarFormatError(`PAX ${key} is not a non-negative integer`);
    const n = Number(text);
    if (!Number.isSafeInteger(n)) throw new TarFormatError(`PAX ${key} is too large`);
    return n;
  };
  if (key === 'path') o.path = text;
  else if (key === 'linkpath') o.linkpath = text;
  else if (key === 'size') o.size = integer();
  else if (key === 'uid') o.uid = integer();
  else if (key === 'gid') o.gid = integer();
  else if (key === 'mtime') o.mtime = Math.floor(Number(text)) || 0;
  else if (key.startsWith('SCHILY.xattr.')) o.xattrs.set(key.slice('SCHILY.xattr.'.length), Buffer.from(value));
  else if (key.startsWith('GNU.sparse.')) throw new TarFormatError('GNU sparse files are not supported');
}

function verifyChecksum(block: Buffer): void {
  const stored = readNumber(block, 148, 8, 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block.readUInt8(i);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  if (stored !== unsigned && stored !== signed)
    throw new TarFormatError('tar header checksum mismatch (not a tar archive, or corrupt)');
}

/** Octal, or GNU base-256 (first byte 0x80) for values too large for octal. */
function readNumber(block: Buffer, offset: number, width: number, field: string): number {
  if (block[offset] === 0x80) {
    let value = 0;
    for (let i = offset + 1; i < offset + width; i++) value = value * 256 + block.readUInt8(i);
    if (!Number.isSafeInteger(value)) throw new TarFormatError(`tar ${field} field is too large`);
    return value;
  }
  if (block.readUInt8(offset) & 0x80) throw new TarFormatError(`negative tar ${field} field`);
  const text = block
    .toString('latin1', offset, offset + width)
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`tar ${field} field is not octal`);
  return parseInt(text, 8);
}

function cString(bytes: Buffer): string {
  const nul = bytes.indexOf(0);
  return bytes.toString('latin1', 0, nul === -1 ? bytes.length : nul);
}

function printable(flag: string): string {
  return /^[\x21-\x7e]$/.test(flag) ? flag : `\\x${flag.charCodeAt(0).toString(16).padStart(2, '0')}`;
}
