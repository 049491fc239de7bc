import type { AccelChoice } from '../accel/decide';
import type { Capabilities } from './types';

/**
 * What QEMU can do under the accelerator accel/ chose: the one place these are decided.
 * Snapshots are QEMU migration to a file, which works under KVM, HVF and TCG alike; QEMU 7.2
 * cannot migrate vhost-user-fs, so a VM with shares boots fresh; q35 workspace VMs hot-plug
 * their shares; the agent speaks over a virtio-serial port, not vsock.
 */
export function qemuCapabilities(accel: AccelChoice): Capabilities {
  return {
    backend: 'qemu',
    accel: accel.accel,
    isolation: accel.isolation,
    snapshot: true,
    snapshotWithShares: false,
    hotPlug: true,
    virtioFs: true,
    vsock: false,
  };
}
