import { MicrovmError } from '../errors';
import { HOTPLUG_PORT_PREFIX } from '../qemu/argv';
import type { QmpClient, QmpEvent } from '../qemu/qmp';

/**
 * The folder's virtio-fs devices, added to and removed from a running q35 VM over QMP. QEMU
 * 7.2 cannot migrate a VM with a vhost-user-fs device, so a workspace VM is saved without it
 * and gets it back after its restore: `chardev-add` (the virtiofsd socket) + `device_add` on
 * an empty PCIe root port; removal is `device_del`, which completes only once the guest has
 * acknowledged the ejection (ACPI), announced by the DEVICE_DELETED event.
 */
const UNPLUG_TIMEOUT_MS = 10_000;

export interface HotplugShare {
  socket: string;
  tag: string;
}

function chardevId(index: number): string {
  return `vfs${index}`;
}

function deviceId(index: number): string {
  return `fs${index}`;
}

/** Adds one vhost-user-fs-pci device per share, the i-th on root port i. */
export async function plugShares(qmp: QmpClient, shares: HotplugShare[]): Promise<void> {
  for (const [i, share] of shares.entries()) {
    await qmp.execute('chardev-add', {
      id: chardevId(i),
      backend: { type: 'socket', data: { addr: { type: 'unix', data: { path: share.socket } }, server: false } },
    });
    await qmp.execute('device_add', {
      driver: 'vhost-user-fs-pci',
      id: deviceId(i),
      chardev: chardevId(i),
      tag: share.tag,
      bus: `${HOTPLUG_PORT_PREFIX}${i}`,
    });
  }
}

/** Removes the devices plugShares added, waiting for the guest to let each go. */
export async function unplugShares(qmp: QmpClient, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const id = deviceId(i);
    const deleted = waitForEvent(
      qmp,
      (e) => e.event === 'DEVICE_DELETED' && (e.data as { device?: string } | undefined)?.device === id,
      UNPLUG_TIMEOUT_MS,
      () =>
        new MicrovmError(
          'E_HOTPLUG',
          `the guest did not release the shared folder's device ${id} within ${UNPLUG_TIMEOUT_MS} ms, so the VM cannot be suspended; it is stopped instead and the workspace boots afresh next time`,
        ),
    );
    await qmp.execute('device_del', { id });
    await deleted;
    await qmp.execute('chardev-remove', { id: chardevId(i) });
  }
}

function waitForEvent(
  qmp: QmpClient,
  match: (event: QmpEvent) => boolean,
  timeoutMs: number,
  onTimeout: () => Error,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(onTimeout());
    }, timeoutMs);
    const stop = qmp.onEvent((event) => {
      if (!match(event)) return;
      clearTimeout(timer);
      stop();
      resolve();
    });
  });
}
