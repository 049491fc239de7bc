import type { BytePath } from '../tar/types';

/**
 * Normalises a tar entry path to slash-separated components relative to the image root
 * ('' is the root itself): leading `/` and `./` are dropped, as are empty and `.` components.
 * Returns null for a path with a `..` component, which could escape the root.
 */
export function normalizeEntryPath(raw: BytePath): string[] | null {
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return null;
    parts.push(part);
  }
  return parts;
}

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
