import { IdMapping } from './types';

/** Guest ids above the first are moved out of the way of real host users. */
const SUBORDINATE_BASE = 100_000;
const GUEST_IDS = 65_536;

/**
 * The user namespace virtiofsd runs in: the guest's user of the folder (root by default, or
 * the workspace's remote user, as devcontainer.json's updateRemoteUserUID intends) becomes the
 * folder's owner, so files it creates belong to the host user who owns the share. Other guest
 * ids map to a subordinate range from 100000 (never to host root). A folder owned by root maps
 * identically (the host user is root already).
 */
export function idMapFor(ownerId: number, guestId = 0): IdMapping[] {
  if (ownerId === 0) return [{ inside: 0, outside: 0, count: GUEST_IDS }];
  const base = subordinateBase(ownerId);
  return [
    ...(guestId > 0 ? [{ inside: 0, outside: base, count: guestId }] : []),
    { inside: guestId, outside: ownerId, count: 1 },
    ...(guestId < GUEST_IDS - 1
      ? [{ inside: guestId + 1, outside: base + guestId + 1, count: GUEST_IDS - guestId - 1 }]
      : []),
  ];
}

/** The owner's own id must not fall inside the subordinate range (the kernel refuses overlaps). */
function subordinateBase(ownerId: number): number {
  const overlaps = ownerId > SUBORDINATE_BASE && ownerId <= SUBORDINATE_BASE + GUEST_IDS;
  return overlaps ? SUBORDINATE_BASE + 2 * GUEST_IDS : SUBORDINATE_BASE;
}

export function formatIdMap(map: IdMapping[]): string[] {
  return map.map((m) => `${m.inside} ${m.outside} ${m.count}`);
}
