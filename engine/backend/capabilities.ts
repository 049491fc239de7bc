import type { AccelChoice } from '../accel/decide';
import type { GuestArch } from '../qemu/types';
import type { Capabilities } from './types';

/**
 * What QEMU can do under the accelerator accel/ chose: the one place these are decided.
 * Snapshots are QEMU migration to a file, which works under KVM, HVF and TCG alike; QEMU 7.2
 * cannot migrate vhost-user-fs, so a VM with shares boots fresh; q35 workspace VMs hot-plug
 * their shares; the agent speaks over a virtio-serial port, not vsock. aarch64 guests run on
 * the virt machine, which this engine gives no hot-plug ports: their workspace VMs cannot be
 * suspended.
 */
export function qemuCapabilities(accel: AccelChoice, arch: GuestArch = 'x86_64'): Capabilities {
  return {
    backend: 'qemu',
    accel: accel.accel,
    isolation: accel.isolation,
    snapshot: true,
    snapshotWithShares: false,
    hotPlug: arch === 'x86_64',
    virtioFs: true,
    vsock: false,
  };
}
