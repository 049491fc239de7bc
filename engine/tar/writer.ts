import { BLOCK_SIZE, paddingFor, type TarHeader, type TarEntryType } from './types';

const TYPE_FLAGS: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

/**
 * Encodes one entry's header blocks: a PAX extended header first when a value does not fit
 * ustar (long or non-ASCII names, big ids or sizes, xattrs), then the ustar header. Every PAX
 * header says `hdrcharset=BINARY` so readers take names as bytes and never convert them.
 */
export function encodeHeader(header: TarHeader): Buffer {
  const pax: Array<[string, Buffer]> = [];
  const name = splitUstarName(header.path, header.type === 'dir');
  if (!name) pax.push(['path', Buffer.from(header.path, 'latin1')]);
  if (header.linkpath.length > 100 || !isAscii(header.linkpath)) {
    pax.push(['linkpath', Buffer.from(header.linkpath, 'latin1')]);
  }
  if (header.size > MAX_OCTAL_11) pax.push(['size', Buffer.from(String(header.size))]);
  if (header.uid > MAX_OCTAL_7) pax.push(['uid', Buffer.from(String(header.uid))]);
  if (header.gid > MAX_OCTAL_7) pax.push(['gid', Buffer.from(String(header.gid))]);
  for (const [key, value] of header.xattrs) pax.push([`SCHILY.xattr.${key}`, value]);
  const ustar = ustarBlock(header, name ?? { prefix: '', name: 'pax-long-name' });
  if (pax.length === 0) return ustar;
  pax.unshift(['hdrcharset', Buffer.from('BINARY')]);
  const body = Buffer.concat(pax.map(([key, value]) => paxRecord(key, value)));
  const paxHeader = ustarBlock(
    { ...header, type: 'file', size: body.length, linkpath: '', uid: 0, gid: 0 },
    { prefix: '', name: 'PaxHeader' },
    'x',
  );
  return Buffer.concat([paxHeader, body, Buffer.alloc(paddingFor(body.length)), ustar]);
}

/** The two zero blocks that end an archive. */
export function endOfArchive(): Buffer {
  return Buffer.alloc(2 * BLOCK_SIZE);
}

export { paddingFor };

function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.byteLength(key) + value.length + 3; // ' ', '=', '\n'
  let length = rest + String(rest).length;
  if (String(length).length !== String(rest).length) length = rest + String(length).length;
  return Buffer.concat([Buffer.from(`${length} ${key}=`), value, Buffer.from('\n')]);
}

function splitUstarName(path: string, isDir: boolean): { prefix: string; name: string } | null {
  const full = isDir && path !== '' ? `${path}/` : path === '' ? './' : path;
  if (!isAscii(full)) return null;
  if (full.length <= 100) return { prefix: '', name: full };
  for (let i = full.indexOf('/'); i !== -1; i = full.indexOf('/', i + 1)) {
    if (i <= 155 && full.length - i - 1 <= 100 && full.length - i - 1 > 0) {
      return { prefix: full.slice(0, i), name: full.slice(i + 1) };
    }
  }
  return null;
}

function isAscii(text: string): boolean {
  return /^[\x01-\x7f]*$/.test(text);
}

function ustarBlock(header: TarHeader, name: { prefix: string; name: string }, flag?: string): Buffer {
  const block = Buffer.alloc(BLOCK_SIZE);
  block.write(name.name, 0, 100, 'latin1');
  writeOctal(block, 100, 8, header.mode & 0o7777);
  writeOctal(block, 108, 8, Math.min(header.uid, MAX_OCTAL_7));
  writeOctal(block, 116, 8, Math.min(header.gid, MAX_OCTAL_7));
  writeOctal(block, 124, 12, header.type === 'file' ? Math.min(header.size, MAX_OCTAL_11) : 0);
  writeOctal(block, 136, 12, Math.max(0, Math.min(header.mtime, MAX_OCTAL_11)));
  block.write(flag ?? TYPE_FLAGS[header.type], 156, 1, 'latin1');
  if (header.linkpath.length <= 100) block.write(header.linkpath, 157, 100, 'latin1');
  block.write('ustar\x0000', 257, 8, 'latin1');
  writeOctal(block, 329, 8, header.devmajor);
  writeOctal(block, 337, 8, header.devminor);
  block.write(name.prefix, 345, 155, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  writeOctal(block, 148, 7, sum);
  block[154] = 0;
  return block;
}

function writeOctal(block: Buffer, offset: number, width: number, value: number): void {
  block.write(value.toString(8).padStart(width - 1, '0'), offset, width - 1, 'latin1');
}
