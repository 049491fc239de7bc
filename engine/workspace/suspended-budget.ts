import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MicrovmError } from '../errors';
import { homePaths, SUSPENDED_HOME_FILE, suspendedDirsOfThisUser } from '../paths';
import { notPrivate } from '../vm/state-dir';

/**
 * A bound on the host memory suspended workspace VMs hold together. Each suspended VM keeps its
 * guest RAM in a file on tmpfs until it is resumed, so without a bound every workspace ever
 * closed would hold its RAM until a reboot. After each suspend, the oldest other suspended
 * states are dropped until all fit; a dropped one says so when its workspace opens next, and
 * that open boots afresh (its disks are kept: only what waited in memory is lost).
 */

/** The file a dropped state leaves behind: why it was dropped, for the next open to say. */
export const EVICTED_FILE = 'evicted';
/** The file a state being resumed holds (WarmSnapshots.take): the budget leaves it alone. */
export const TAKEN_FILE = 'taken';
const MIB = 1024 * 1024;

/** MICROVM_SUSPENDED_MAX_MIB, else a quarter of the host's RAM: how much suspended VMs may hold, in MiB. */
export function suspendedBudgetMiB(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.MICROVM_SUSPENDED_MAX_MIB;
  if (raw === undefined || raw === '') return Math.floor(os.totalmem() / MIB / 4);
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new MicrovmError(
      'E_BAD_OPTION',
      `MICROVM_SUSPENDED_MAX_MIB=${JSON.stringify(raw)} is not a whole number of MiB; set it to the host memory suspended workspace VMs may hold together (0 keeps only the latest), or unset it for a quarter of the host's RAM`,
    );
  }
  return value;
}

/** Another workspace's suspended VM dropped to keep them all within the budget. */
export interface DroppedState {
  /** The workspace whose suspended VM was dropped (its next open boots afresh). */
  workspaceId: string;
  /** The host memory it held, MiB. */
  mib: number;
}

/**
 * Drops the oldest suspended states other than `keepId`'s (of this MICROVM_HOME) until the
 * rest hold at most `budgetMiB` (the memory their files occupy on tmpfs, not their nominal
 * size); returns them. Every home of this user counts (host memory is one), and the states of
 * a home that no longer exists are removed first (orphanedSuspendedDirs).
 */
export function enforceSuspendedBudget(budgetMiB: number, keepId: string): DroppedState[] {
  const dropped: DroppedState[] = [];
  for (const dir of orphanedSuspendedDirs()) {
    for (const id of states(dir))
      dropped.push({ workspaceId: id, mib: Math.round(measure(path.join(dir, id)).bytes / MIB) });
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const keep = path.join(homePaths.suspended(), keepId);
  const held = suspendedDirsOfThisUser()
    .filter((parent) => !notPrivate(parent))
    .flatMap((parent) => states(parent).map((id) => ({ id, dir: path.join(parent, id) })))
    .filter(({ dir }) => !fs.existsSync(path.join(dir, EVICTED_FILE)) && !fs.existsSync(path.join(dir, TAKEN_FILE)))
    .map((state) => ({ ...state, ...measure(state.dir) }))
    .filter((s) => s.bytes > 0);
  let total = held.reduce((sum, s) => sum + s.bytes, 0);
  // Oldest first; the state just made is never dropped here, even when it alone is over.
  for (const state of held.filter((s) => s.dir !== keep).sort((a, b) => a.savedMs - b.savedMs)) {
    if (total <= budgetMiB * MIB) break;
    total -= state.bytes;
    if (drop(state.dir, budgetMiB)) dropped.push({ workspaceId: state.id, mib: Math.round(state.bytes / MIB) });
  }
  return dropped;
}

/**
 * This user's directories of suspended VMs whose MICROVM_HOME is gone (a deleted home, a test's
 * private one): nothing can resume them, and their RAM files would stay until a reboot.
 */
export function orphanedSuspendedDirs(): string[] {
  return suspendedDirsOfThisUser().filter((parent) => {
    if (notPrivate(parent)) return false;
    let home: string;
    try {
      home = fs.readFileSync(path.join(parent, SUSPENDED_HOME_FILE), 'utf8');
    } catch {
      return false; // made before homes were noted, or being made: left alone
    }
    return path.isAbsolute(home) && isGone(home);
  });
}

/** Only a home that is not there (ENOENT) is gone: an unreadable or unmounted one may come back. */
function isGone(home: string): boolean {
  try {
    fs.lstatSync(home);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** The workspace ids with a suspended state in `parent`. */
function states(parent: string): string[] {
  try {
    return fs
      .readdirSync(parent, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

/** The host memory a state's files occupy (allocated blocks: a RAM file is sparse) and when it was saved. */
function measure(dir: string): { bytes: number; savedMs: number } {
  let bytes = 0;
  let savedMs = 0;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return { bytes, savedMs }; // taken or discarded meanwhile
  }
  for (const name of names) {
    const stat = fs.statSync(path.join(dir, name), { throwIfNoEntry: false });
    if (!stat?.isFile()) continue;
    bytes += stat.blocks * 512;
    savedMs = Math.max(savedMs, stat.mtimeMs);
  }
  return { bytes, savedMs };
}

/** Drops a state's files and leaves the note; false when it went meanwhile (taken, discarded). */
function drop(dir: string, budgetMiB: number): boolean {
  try {
    for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name), { force: true, recursive: true });
    fs.writeFileSync(
      path.join(dir, EVICTED_FILE),
      `its memory was dropped to keep suspended workspace VMs within ${budgetMiB} MiB of host memory (MICROVM_SUSPENDED_MAX_MIB)`,
      { mode: 0o600 },
    );
    return true;
  } catch {
    return false;
  }
}
