import * as fs from 'node:fs';

/**
 * What /proc/PID/smaps says about one QEMU process: its private (USS) and proportional (PSS)
 * memory, split by kind of mapping. `memFile` is the file backing the guest RAM (a snapshot's
 * RAM file mapped privately, or a fresh boot's shared RAM file): its mapping is the guest RAM.
 */
export interface ProcessMemory {
  /** Unique set size: Private_Clean + Private_Dirty (KiB). */
  uss: number;
  pss: number;
  rss: number;
  /** Private KiB by kind of mapping, from /proc/PID/smaps. */
  privateBy: Record<MappingKind, number>;
  /** Resident KiB of the guest RAM mapping that are the snapshot file's page cache (not copied). */
  guestRamFilePages: number;
  /** The largest other anonymous mapping (KiB private). */
  largestAnonymous: number;
}

export type MappingKind =
  | 'guest RAM copied on write'
  | 'guest RAM file pages'
  | 'TCG translation cache'
  | 'QEMU heap and other anonymous'
  | 'QEMU binary and libraries';
export const MAPPING_KINDS: MappingKind[] = [
  'guest RAM copied on write',
  'guest RAM file pages',
  'TCG translation cache',
  'QEMU heap and other anonymous',
  'QEMU binary and libraries',
];

export function processMemory(pid: number, memFile: string): ProcessMemory {
  const rollup = fields(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  const privateBy = Object.fromEntries(MAPPING_KINDS.map((k) => [k, 0])) as Record<MappingKind, number>;
  let guestRamFilePages = 0;
  let largestAnonymous = 0;
  for (const mapping of smapsMappings(fs.readFileSync(`/proc/${pid}/smaps`, 'utf8'))) {
    const priv = (mapping.fields.Private_Clean ?? 0) + (mapping.fields.Private_Dirty ?? 0);
    const kind = classify(mapping.perms, mapping.path, memFile);
    if (kind === 'guest RAM copied on write') {
      // A private file mapping: pages the guest wrote are anonymous copies; the rest is the
      // file's page cache, which smaps counts as private while only one process maps it.
      const copied = mapping.fields.Anonymous ?? 0;
      privateBy[kind] += copied;
      privateBy['guest RAM file pages'] += priv - copied;
      guestRamFilePages += (mapping.fields.Rss ?? 0) - copied;
    } else {
      privateBy[kind] += priv;
      if (kind === 'QEMU heap and other anonymous') largestAnonymous = Math.max(largestAnonymous, priv);
    }
  }
  return {
    uss: (rollup.Private_Clean ?? 0) + (rollup.Private_Dirty ?? 0),
    pss: rollup.Pss ?? 0,
    rss: rollup.Rss ?? 0,
    privateBy,
    guestRamFilePages,
    largestAnonymous,
  };
}

/**
 * The TCG translation buffer is one large anonymous executable mapping (or, with split
 * W^X, a "tcg-jit" memfd mapped twice); the guest RAM is the snapshot's file.
 */
function classify(perms: string, file: string, memFile: string): MappingKind {
  if (file === memFile || file.startsWith(`${memFile} `)) return 'guest RAM copied on write';
  if (file.includes('tcg-jit') || (perms.includes('x') && (file === '' || file.startsWith('[anon'))))
    return 'TCG translation cache';
  if (file === '' || file.startsWith('[')) return 'QEMU heap and other anonymous';
  return 'QEMU binary and libraries';
}

interface Mapping {
  perms: string;
  path: string;
  fields: Record<string, number>;
}

function smapsMappings(text: string): Mapping[] {
  const mappings: Mapping[] = [];
  let current: Mapping | undefined;
  for (const line of text.split('\n')) {
    const [, perms, mapped] = /^[0-9a-f]+-[0-9a-f]+\s+(\S+)\s+\S+\s+\S+\s+\d+\s*(.*)$/.exec(line) ?? [];
    if (perms !== undefined) {
      current = { perms, path: (mapped ?? '').trim(), fields: {} };
      mappings.push(current);
      continue;
    }
    const [, name, kb] = /^(\w+):\s+(\d+) kB/.exec(line) ?? [];
    if (name && current) current.fields[name] = Number(kb);
  }
  return mappings;
}

function fields(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [, name = '', kb] of text.matchAll(/^(\w+):\s+(\d+) kB/gm)) out[name] = Number(kb);
  return out;
}
