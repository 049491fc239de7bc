import type { NetworkMode, ServiceLink } from './network';

/** The hypervisor accelerator: KVM (Linux), HVF (macOS), or TCG software emulation (no hardware isolation). */
export type Accel = 'kvm' | 'tcg' | 'hvf';
/** A guest CPU architecture the engine can run (an image's config `architecture` amd64 or arm64). */
export type GuestArch = 'x86_64' | 'aarch64';

/** Everything the QEMU command line depends on; buildQemuArgv turns it into argv, purely. */
export interface QemuSpec {
  arch: GuestArch;
  /**
   * 'microvm' (the default): virtio-mmio devices, no PCI, no hot-plug; the fastest boot.
   * 'q35': virtio-pci devices and `hotplugSlots` empty PCIe root ports, so a device QEMU
   * cannot migrate (vhost-user-fs) can be added after a restore and removed before a save.
   */
  machine?: 'microvm' | 'q35';
  /** q35 only: empty PCIe root ports named HOTPLUG_PORT_PREFIX + index. */
  hotplugSlots?: number;
  accel: Accel;
  memoryMib: number;
  vcpus: number;
  kernel: string;
  initrd: string;
  /** Kernel command line parameters added after the engine's own. */
  cmdline: string[];
  /** Read-only root disk image (raw ext4), the guest's /dev/vda. */
  rootDisk?: string;
  agentSocket: string;
  qmpSocket: string;
  /** Apply QEMU's seccomp filter (-sandbox), when this QEMU build has it. */
  seccomp: boolean;
  /** The user QEMU switches to once it has opened its files (-runas; see run-as.ts). */
  runAs?: string;
  /**
   * Guest RAM: plain anonymous memory; a RAM backend (anonymous, but named like the file
   * backend so a full snapshot of a clone loads into it); or a file mapped shared (a fresh
   * boot) or private (a clone of a template).
   */
  memory: { kind: 'anonymous' } | { kind: 'ram' } | { kind: 'file'; path: string; shared: boolean };
  /**
   * Start paused, listening on this Unix socket for an incoming migration (a snapshot
   * restore). Given on the command line, not deferred, so QEMU binds it before -runas drops
   * its privileges and the state directory need not be writable by QEMU's user.
   */
  incoming?: string;
  /** Under TCG, the host TSC rate given to the guest kernel so it skips PIT calibration (host-tsc.ts). */
  tscKhz?: number;
  /** Guest NIC: 'outbound' = user-mode NAT (see network.ts); absent or 'none' = no NIC, unless `serviceLinks` is given. */
  network?: NetworkMode;
  /** Service links (the guard's business): given at all, the guest gets a NIC whatever `network` says. */
  serviceLinks?: readonly ServiceLink[];
  /** virtio-fs shares: a vhost-user-fs device per virtiofsd socket (needs shared guest RAM). */
  virtiofs?: Array<{ socket: string; tag: string }>;
  /**
   * Volumes: extra raw virtio-blk disks, found in the guest by serial. With `fds` (q35 only),
   * QEMU gets the disk as two inherited descriptors (read-write, read-only) in an fd set
   * instead of opening the path: a save reopens the disk read-only after -runas dropped the
   * privileges that could open it by name.
   */
  volumes?: Array<{ file: string; serial: string; fds?: { readWrite: number; readOnly: number } }>;
}
