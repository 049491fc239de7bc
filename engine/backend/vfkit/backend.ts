import { MicrovmError } from '../../errors';
import { guestAssets } from '../../kernel/assets';
import type { Capabilities, VmBackend } from '../types';
import { findVfkit, gatherVfkitHostFacts } from './detect';
import { decideVfkitHost, type VfkitHost } from './host';
import { probeBoot, type VfkitProbeReport } from './probe';

/** The vfkit backend: a VmBackend with what the verification on a Mac needs besides. */
export interface VfkitBackend extends VmBackend {
  /** What vfkit can do on this host, or why it cannot run here (decided once). */
  host(): Promise<VfkitHost>;
  /** Boots the guest kernel and initramfs in the agent's probe mode and reports (scripts/verify-macos.sh). */
  probe(): Promise<VfkitProbeReport>;
}

let decided: Promise<VfkitHost> | undefined;

async function usableHost(): Promise<Extract<VfkitHost, { ok: true }>> {
  decided ??= gatherVfkitHostFacts().then(decideVfkitHost);
  const host = await decided;
  if (!host.ok) throw new MicrovmError('E_BACKEND_UNAVAILABLE', `the vfkit backend cannot run here: ${host.reason}`);
  return host;
}

/**
 * EXPERIMENTAL, and not verified by this project on a Mac: Apple's Virtualization.framework
 * through vfkit (crc-org/vfkit, as podman machine uses it). Argument generation, capability
 * detection and error mapping are unit-tested on Linux; `probe()` boots the kernel and
 * initramfs. Workload VMs do not boot yet: vfkit reaches the guest over vsock only (its
 * virtio-serial writes a log), and the guest agent serves a virtio-serial port, so `boot`
 * fails with E_BACKEND_UNAVAILABLE saying so (README: "macOS hosts").
 */
export const vfkitBackend: VfkitBackend = {
  name: 'vfkit',
  async capabilities(): Promise<Capabilities> {
    return (await usableHost()).capabilities;
  },
  async boot() {
    await usableHost();
    throw new MicrovmError(
      'E_BACKEND_UNAVAILABLE',
      'the vfkit backend cannot boot workload VMs yet: vfkit reaches the guest over vsock only, and the guest agent ' +
        'serves a virtio-serial port (native/agent has no vsock transport); use a Linux host, or see README "macOS hosts"',
    );
  },
  host(): Promise<VfkitHost> {
    decided ??= gatherVfkitHostFacts().then(decideVfkitHost);
    return decided;
  },
  async probe(): Promise<VfkitProbeReport> {
    await usableHost();
    return probeBoot(findVfkit(process.env) as string, await guestAssets());
  },
};
