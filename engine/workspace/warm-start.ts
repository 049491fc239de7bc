import type { Image } from '../api/image';
import { isMicrovmError } from '../errors';
import { volumeFile } from '../mount';
import type { Vm } from '../vm/vm';
import { WarmSnapshots } from './warm-snapshot';

/** A workspace VM started by warm reopen: resumed from its suspended state, or booted on q35. */
export interface WarmStart {
  vm: Vm;
  resumed: boolean;
  /** The inputs' key and the writable disks, for the suspend at stop. */
  key: string;
  disks: string[];
}

/**
 * Resumes the workspace's suspended VM when it fits (then attaches the folder), else boots a
 * q35 workspace VM that can be suspended later; the log says which, and why.
 */
export async function startWarm(
  image: Image,
  warm: WarmSnapshots,
  volumes: string[],
  log: (line: string) => void,
  booting: () => void,
): Promise<WarmStart> {
  const disks = volumes.map(volumeFile);
  const key = await warm.key(image.cacheKey);
  const taken = await warm.take(key, disks);
  if ('source' in taken) {
    const started = Date.now();
    try {
      const vm = await image.workspaceVm(taken.source);
      const { agent, ready } = vm.startTimings;
      log(
        `warm reopen: resumed VM ${vm.id} from its suspended state in ${Date.now() - started} ms (no boot; the guest answered after ${agent} ms, the folder was attached again after ${ready} ms)`,
      );
      return { vm, resumed: true, key, disks };
    } catch (err) {
      if (!isMicrovmError(err)) throw err;
      log(`warm reopen: the suspended VM could not be resumed (${err.code}: ${err.message}); booting afresh`);
    } finally {
      await warm.discard();
    }
  } else {
    log(`warm reopen: booting afresh, since ${taken.reason}`);
  }
  booting();
  const vm = await image.workspaceVm();
  return { vm, resumed: false, key, disks };
}

/**
 * Suspends the workspace VM for the next open; false (and the VM stopped) when it could not
 * be, so the next open boots afresh. The log names the processes killed for holding the folder.
 */
export async function suspendWarm(
  warm: WarmSnapshots,
  start: WarmStart,
  log: (line: string) => void,
): Promise<boolean> {
  const started = Date.now();
  try {
    const { killed, dropped, budgetMiB } = await warm.suspend(start.vm, start.key, start.disks);
    for (const state of dropped)
      log(
        `warm reopen: dropped the suspended VM of workspace ${state.workspaceId} (${state.mib} MiB) to keep suspended VMs within ${budgetMiB} MiB (MICROVM_SUSPENDED_MAX_MIB); it boots afresh next time`,
      );
    if (killed.length > 0)
      log(
        `warm reopen: killed ${killed.length} guest process(es) that held the shared folder, which must be unmounted to suspend: ${killed.join(', ')}`,
      );
    log(`warm reopen: suspended VM ${start.vm.id} in ${Date.now() - started} ms`);
    return true;
  } catch (err) {
    log(
      `warm reopen: the VM could not be suspended (${(err as Error).message}); it is stopped and the next open boots afresh`,
    );
    await warm.discard();
    return false;
  }
}
