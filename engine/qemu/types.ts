export type Accel = 'kvm' | 'tcg' | 'hvf';
export type GuestArch = 'x86_64' | 'aarch64';

/** Everything the QEMU command line depends on; buildQemuArgv turns it into argv, purely. */
export interface QemuSpec {
  arch: GuestArch;
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
  /** Under TCG, the host TSC rate given to the guest kernel so it skips PIT calibration (host-tsc.ts). */
  tscKhz?: number;
}
