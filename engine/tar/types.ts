/**
 * Paths, link targets and user/group names in tar headers are raw bytes. We keep them as
 * "byte strings" (one JS char per byte, 'latin1'), so names that are not valid UTF-8 survive
 * the reader, the merge and the writer unchanged. Use `toBytePath` to build one from text.
 */
export type BytePath = string;

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'dir' | 'char' | 'block' | 'fifo';

export interface TarHeader {
  path: BytePath;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  linkpath: BytePath;
  devmajor: number;
  devminor: number;
  /** Extended attributes by name, values as raw bytes. */
  xattrs: Map<string, Buffer>;
}

export const BLOCK_SIZE = 512;

export function toBytePath(text: string): BytePath {
  return Buffer.from(text, 'utf8').toString('latin1');
}

export function fromBytePath(path: BytePath): string {
  return Buffer.from(path, 'latin1').toString('utf8');
}

export function paddingFor(size: number): number {
  return (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
}

export function newHeader(fields: Partial<TarHeader> & Pick<TarHeader, 'path' | 'type'>): TarHeader {
  return {
    mode: fields.type === 'dir' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    mtime: 0,
    size: 0,
    linkpath: '',
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(),
    ...fields,
  };
}
