import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { guestAssets } from '../kernel/assets';
import { MicrovmError } from '../errors';
import { homePaths, microvmHome, SUSPENDED_HOME_FILE } from '../paths';
import { notPrivate } from '../vm/state-dir';
import type { ResumeSource } from '../backend/types';
import type { Vm } from '../vm/vm';
import { openWorkspace, saveWorkspace, WorkspaceRecord } from './record';
import { DroppedState, enforceSuspendedBudget, EVICTED_FILE, suspendedBudgetMiB, TAKEN_FILE } from './suspended-budget';

/**
 * Warm reopen: a workspace VM is suspended when it stops (its RAM and device state kept, its
 * writable disks left exactly as that RAM expects them) and the next open resumes it instead
 * of booting, then attaches the folder again (engine/vm/hotplug.ts).
 *
 * The suspended state is used once, and only when everything it was made from is unchanged:
 * the key (image, settings, container, configuration and its file, kernel and agent) and every writable
 * disk (size and modification time). Otherwise it is discarded and the VM boots afresh, saying
 * why. The folder's lockfiles are not in the key: they are folder content, which the resumed
 * VM sees live, and a changed one runs updateContentCommand again on it (lockfiles.ts), as on
 * a booted one. Its RAM stays on tmpfs next to the run
 * directories (a rename, not a copy), so a suspended workspace holds host memory (or swap)
 * until it is resumed, discarded or dropped for the budget of all suspended VMs
 * (suspended-budget.ts), and a host reboot discards it.
 */

const STATE_FILE = 'state';
const MEMORY_FILE = 'memory';

type Suspended = NonNullable<WorkspaceRecord['suspended']>;

/** A warm snapshot that matches the workspace's inputs, or why there is none. */
export type TakeResult = { source: ResumeSource; dir: string } | { reason: string };

/** A workspace's warm snapshot: the VM suspended at stop, resumed at the next start when its inputs still match. */
export class WarmSnapshots {
  constructor(private readonly folder: string) {}

  /**
   * The key of the workspace's inputs, as the record stores it. `imageKey` is Image.cacheKey:
   * the layers, config, settings (memory, cpus, mounts, volumes) and extra files.
   */
  async key(imageKey: string): Promise<string> {
    const record = openWorkspace(this.folder);
    const assets = await guestAssets();
    const parts = {
      // The container's identity, not its hooks' progress (a suspended VM may have run more of them).
      image: imageKey,
      container: record.container
        ? [record.container.inputs, record.container.createdAt, record.container.image ?? null]
        : null,
      config: record.config?.digest ?? null,
      // Which configuration made the container (absent in older records, whose keys stay as they were).
      ...(record.container?.configFile === undefined ? {} : { configFile: record.container.configFile }),
      boot: assets.bootSha256,
    };
    return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
  }

  /**
   * The suspended state to resume, taken out of the record (it is used once), or why there is
   * none; a state that no longer fits is discarded here.
   */
  async take(key: string, disks: string[]): Promise<TakeResult> {
    const record = openWorkspace(this.folder);
    const suspended = record.suspended;
    const dir = suspendDir(record.id);
    if (!suspended) {
      fs.rmSync(dir, { recursive: true, force: true });
      return { reason: 'the workspace was not suspended' };
    }
    await saveWorkspace({ ...record, suspended: undefined });
    const why = mismatch(suspended, key, disks, dir);
    if (why) {
      fs.rmSync(dir, { recursive: true, force: true });
      return { reason: why };
    }
    // Being resumed now: another engine's budget pass must not drop it (discard() removes it after).
    fs.writeFileSync(path.join(dir, TAKEN_FILE), '', { mode: 0o600 });
    return {
      dir,
      source: { kind: 'suspended', stateFile: path.join(dir, STATE_FILE), memFile: path.join(dir, MEMORY_FILE) },
    };
  }

  /**
   * Suspends `vm` and records it under `key`. Returns the processes the guest killed because
   * they held the folder, and the other workspaces' suspended states dropped to keep them all
   * within the budget (suspended-budget.ts). On failure nothing is recorded and the VM has been stopped.
   */
  async suspend(
    vm: Vm,
    key: string,
    disks: string[],
  ): Promise<{ killed: string[]; dropped: DroppedState[]; budgetMiB: number }> {
    const budgetMiB = suspendedBudgetMiB();
    const record = openWorkspace(this.folder);
    const dir = suspendDir(record.id);
    privateParent();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { mode: 0o700 });
    let killed: string[];
    try {
      killed = await vm.suspend(path.join(dir, STATE_FILE), path.join(dir, MEMORY_FILE));
      const saved: Suspended = { key, savedAt: new Date().toISOString(), disks: disks.map(diskStamp) };
      await saveWorkspace({ ...openWorkspace(this.folder), suspended: saved });
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    // Best effort: the suspend stands whatever happens to the others' states meanwhile.
    let dropped: DroppedState[] = [];
    try {
      dropped = enforceSuspendedBudget(budgetMiB, record.id);
    } catch {
      // another engine took or removed a state under this one's feet: the next suspend counts again
    }
    return { killed, dropped, budgetMiB };
  }

  /** Drops a suspended state (its RAM on tmpfs): the next open boots afresh. */
  async discard(): Promise<void> {
    const record = openWorkspace(this.folder);
    fs.rmSync(suspendDir(record.id), { recursive: true, force: true });
    if (record.suspended) await saveWorkspace({ ...record, suspended: undefined });
  }
}

/** Why a suspended state cannot be resumed, or undefined when it can. */
export function mismatch(suspended: Suspended, key: string, disks: string[], dir: string): string | undefined {
  const evicted = path.join(dir, EVICTED_FILE);
  if (fs.existsSync(evicted)) return fs.readFileSync(evicted, 'utf8');
  if (suspended.key !== key)
    return 'its inputs changed (image, settings, container, configuration, or the guest kernel and agent that setup installed)';
  for (const name of [STATE_FILE, MEMORY_FILE]) {
    if (!fs.existsSync(path.join(dir, name)))
      return `its ${name} file is gone (${path.join(dir, name)}; a host reboot clears it)`;
  }
  const saved = new Map(suspended.disks.map((d) => [d.file, d]));
  if (saved.size !== disks.length) return 'its set of disks changed';
  for (const file of disks) {
    const then = saved.get(file);
    const now = diskStamp(file);
    if (!then || then.size !== now.size || then.mtimeMs !== now.mtimeMs)
      return `the disk ${file} changed since it was suspended`;
  }
  return undefined;
}

function diskStamp(file: string): Suspended['disks'][number] {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  return { file, size: stat?.size ?? -1, mtimeMs: stat?.mtimeMs ?? -1 };
}

/**
 * The directory of suspended states, created private; E_STATE_DIR when it is not (it may sit
 * in world-writable /dev/shm under a predictable name, so a squatter's must never be used).
 */
function privateParent(): void {
  const parent = homePaths.suspended();
  fs.mkdirSync(path.dirname(parent), { recursive: true, mode: 0o700 });
  if (!fs.existsSync(parent)) fs.mkdirSync(parent, { mode: 0o700 });
  const problem = notPrivate(parent);
  if (!problem && !fs.existsSync(path.join(parent, SUSPENDED_HOME_FILE)))
    fs.writeFileSync(path.join(parent, SUSPENDED_HOME_FILE), path.resolve(microvmHome()), { mode: 0o600 });
  if (problem) {
    throw new MicrovmError(
      'E_STATE_DIR',
      `the directory for suspended workspace VMs ${parent} ${problem}, so another user could read or replace their memory; remove it (the engine creates it again)`,
    );
  }
}

/** Where a workspace's suspended state lives: beside the run directories, on tmpfs where the host has it. */
function suspendDir(workspaceId: string): string {
  return path.join(homePaths.suspended(), workspaceId);
}
