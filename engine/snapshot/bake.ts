import { abortedOr, onAbort, throwIfAborted } from '../abort';
import { MicrovmError } from '../errors';
import { ImageConfig } from '../image/types';
import type { BackendVm } from '../backend/types';
import { Vm } from '../vm/vm';
import { SnapshotImage, SnapshotInputs } from './meta';
import { writeSnapshot } from './store';
import { waitForListener } from './listener';

export interface BakeSpec {
  /** Boots the VM to bake, with the image's extra files staged. */
  boot: () => Promise<BackendVm>;
  config: ImageConfig;
  dir: string;
  inputs: SnapshotInputs;
  image: SnapshotImage;
  warmup?: (vm: Vm) => Promise<void>;
  guestPort?: number;
  listenerRequired: boolean;
  listenerTimeoutMs: number;
  /** Aborting stops the VM (its boot, the warmup, the save); nothing is saved (E_ABORTED). */
  signal?: AbortSignal;
}

const BAKE_STEP = 'baking the snapshot';

/**
 * Boots, runs the warmup, optionally waits for the workload's listener, then saves the VM
 * to `dir` and resumes it. The living VM is returned so that the first acquire gets it.
 */
export async function bake(spec: BakeSpec): Promise<BackendVm> {
  const machine = await spec.boot();
  const unlinkAbort = onAbort(spec.signal, () => void machine.stop());
  try {
    const vm = new Vm(machine, spec.config, async () => undefined);
    if (spec.warmup) {
      try {
        await spec.warmup(vm);
      } catch (err) {
        throw new MicrovmError(
          'E_WARMUP_FAILED',
          `the warmup callback failed: ${(err as Error).message}; nothing was saved`,
          { cause: err },
        );
      }
    }
    if (spec.listenerRequired && spec.guestPort !== undefined) {
      await waitForListener(vm, spec.guestPort, spec.listenerTimeoutMs);
    }
    await vm.release();
    await writeSnapshot(machine, spec.dir, spec.inputs, spec.image);
    throwIfAborted(spec.signal, BAKE_STEP);
    await machine.resume();
    return machine;
  } catch (err) {
    await machine.stop();
    throw abortedOr(err, spec.signal, BAKE_STEP);
  } finally {
    unlinkAbort();
  }
}
