import { chooseAccel } from '../accel/detect';
import { guestAssets } from '../kernel/assets';
import { findQemu } from '../qemu/binary';
import { Machine } from '../vm/machine';
import { qemuCapabilities } from './capabilities';
import type { Capabilities, VmBackend } from './types';

/**
 * QEMU under KVM (or HVF) when the host offers it, else TCG: the engine's default backend.
 * Its VMs are engine/vm/machine.ts; the accelerator is chosen once per host boot (accel/).
 */
export const qemuBackend: VmBackend = {
  name: 'qemu',
  async capabilities(arch = 'x86_64'): Promise<Capabilities> {
    return qemuCapabilities(await chooseAccel(await guestAssets(arch), await findQemu(arch)), arch);
  },
  boot: (spec, restore) => Machine.boot(spec, restore),
};
