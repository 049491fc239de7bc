import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MicrovmError } from '../errors';
import { homePaths } from '../paths';

/**
 * A bound on the host memory suspended workspace VMs hold together. Each suspended VM keeps its
 * guest RAM in a file on tmpfs until it is resumed, so without a bound every workspace ever
 * closed would hold its RAM until a reboot. After each suspend, the oldest other suspended
 * states are dropped until all fit; a dropped one says so when its workspace opens next, and
 * that open boots afresh (its disks are kept: only what waited in memory is lost).
 */

/** The file a dropped state leaves behind: why it was dropped, for the next open to say. */
export const EVICTED_FILE = 'evicted';
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

export interface DroppedState {
  workspaceId: string;
  mib: number;
}

/**
 * Drops the oldest suspended states other than `keepId`'s until the rest hold at most
 * `budgetMiB` (the memory their files occupy on tmpfs, not their nominal size); returns them.
 */
export function enforceSuspendedBudget(budgetMiB: number, keepId: string): DroppedState[] {
  const parent = homePaths.suspended();
  if (!fs.existsSync(parent)) return [];
  const states = fs
    .readdirSync(parent)
    .map((id) => ({ id, dir: path.join(parent, id) }))
    .filter(({ dir }) => !fs.existsSync(path.join(dir, EVICTED_FILE)))
    .map(({ id, dir }) => ({ id, dir, ...measure(dir) }))
    .filter((s) => s.bytes > 0);
  let total = states.reduce((sum, s) => sum + s.bytes, 0);
  const dropped: DroppedState[] = [];
  // Oldest first; the state just made is never dropped here, even when it alone is over.
  for (const state of states.filter((s) => s.id !== keepId).sort((a, b) => a.savedMs - b.savedMs)) {
    if (total <= budgetMiB * MIB) break;
    drop(state.dir, budgetMiB);
    total -= state.bytes;
    dropped.push({ workspaceId: state.id, mib: Math.round(state.bytes / MIB) });
  }
  return dropped;
}

/** The host memory a state's files occupy (allocated blocks: a RAM file is sparse) and when it was saved. */
function measure(dir: string): { bytes: number; savedMs: number } {
  let bytes = 0;
  let savedMs = 0;
  for (const name of fs.readdirSync(dir)) {
    const stat = fs.statSync(path.join(dir, name), { throwIfNoEntry: false });
    if (!stat?.isFile()) continue;
    bytes += stat.blocks * 512;
    savedMs = Math.max(savedMs, stat.mtimeMs);
  }
  return { bytes, savedMs };
}

function drop(dir: string, budgetMiB: number): void {
  for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name), { force: true, recursive: true });
  fs.writeFileSync(
    path.join(dir, EVICTED_FILE),
    `its memory was dropped to keep suspended workspace VMs within ${budgetMiB} MiB of host memory (MICROVM_SUSPENDED_MAX_MIB)`,
    { mode: 0o600 },
  );
}
