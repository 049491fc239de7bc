import { MicrovmError, isMicrovmError } from '../../errors';
import { guestAssets } from '../../kernel/assets';
import { homePaths } from '../../paths';
import type { BackendVm, BootSpec, Capabilities, RestoreSource, ResumeSource, VmBackend } from '../types';
import { findVfkit, gatherVfkitHostFacts } from './detect';
import { decideVfkitHost, type VfkitHost, type VfkitHostFacts } from './host';
import { AGENT_VSOCK_PORT } from './argv';
import { uncompressedKernel } from './kernel';
import { unsupportedForVfkit, VfkitMachine } from './machine';
import { probeBoot, type VfkitProbeReport } from './probe';

/** The vfkit backend: a VmBackend with what the verification on a Mac needs besides. */
export interface VfkitBackend extends VmBackend {
  /** What vfkit can do on this host, or why it cannot run here (decided once). */
  host(): Promise<VfkitHost>;
  /** Boots the guest kernel and initramfs in the agent's probe mode and reports (scripts/verify-macos.sh). */
  probe(): Promise<VfkitProbeReport>;
}

/** Where the backend's host facts and guest files come from (tests give their own). */
export interface VfkitDependencies {
  facts(): Promise<VfkitHostFacts>;
  /** The guest kernel and initramfs of `arch` (the Mac's own: aarch64 on Apple silicon). */
  guest(arch: 'aarch64' | 'x86_64'): Promise<{ kernel: string; initrd: string }>;
}

/** Virtualization.framework boots in about a second; the agent's answer is the rest. */
const BOOT_TIMEOUT_MS = 20_000;

const hostDependencies: VfkitDependencies = {
  facts: () => gatherVfkitHostFacts(),
  guest: (arch) => guestAssets(arch),
};

/**
 * EXPERIMENTAL, and not verified by this project on a Mac: Apple's Virtualization.framework
 * through vfkit (crc-org/vfkit, as podman machine uses it). vfkit reaches the guest over vsock
 * only (its virtio-serial writes a log), so the guest agent serves vsock port
 * AGENT_VSOCK_PORT (`microvm.vsock=` on the kernel command line) instead of its virtio-serial
 * port; a boot that times out says where the agent should have answered. What a vfkit
 * VM cannot do yet (volumes, filtered shares, proxy networks, snapshots, ...) is refused at
 * boot, every item at once (E_BACKEND_UNAVAILABLE).
 */
export function createVfkitBackend(deps: VfkitDependencies = hostDependencies): VfkitBackend {
  let gathered: Promise<VfkitHostFacts> | undefined;
  const facts = () => (gathered ??= deps.facts());
  const host = async (): Promise<VfkitHost> => decideVfkitHost(await facts());
  const usableHost = async () => {
    const decision = await host();
    if (!decision.ok)
      throw new MicrovmError('E_BACKEND_UNAVAILABLE', `the vfkit backend cannot run here: ${decision.reason}`);
    return decision;
  };
  const vfkitPath = async () => (await facts()).vfkit?.path ?? (findVfkit(process.env) as string);
  return {
    name: 'vfkit',
    async capabilities(): Promise<Capabilities> {
      return (await usableHost()).capabilities;
    },
    async boot(spec: BootSpec, restore?: RestoreSource | ResumeSource): Promise<BackendVm> {
      const decision = await usableHost();
      const problems = unsupportedForVfkit(spec, restore !== undefined, decision.guestArch);
      if (problems.length > 0) {
        throw new MicrovmError(
          'E_BACKEND_UNAVAILABLE',
          `the vfkit backend cannot boot this VM yet: ${problems.join('; ')}; leave them out or use a Linux host`,
        );
      }
      const guest = await deps.guest(decision.guestArch);
      const inputs = {
        vfkit: await vfkitPath(),
        kernel: await uncompressedKernel(guest.kernel, homePaths.vfkitKernels()),
        initrd: guest.initrd,
        capabilities: decision.capabilities,
        bootTimeoutMs: BOOT_TIMEOUT_MS,
      };
      return VfkitMachine.boot(spec, inputs).catch((err: unknown) => {
        if (!isMicrovmError(err, 'E_BOOT_TIMEOUT')) throw err;
        throw new MicrovmError(
          'E_BOOT_TIMEOUT',
          `${err.message}; the guest agent should have answered on vsock port ${AGENT_VSOCK_PORT} through vfkit's agent socket: run scripts/verify-macos.sh and attach its report to the issue (README "macOS hosts")`,
          { cause: err },
        );
      });
    },
    host,
    async probe(): Promise<VfkitProbeReport> {
      const decision = await usableHost();
      const guest = await deps.guest(decision.guestArch);
      return probeBoot(await vfkitPath(), { kernel: guest.kernel, initrd: guest.initrd });
    },
  };
}

/** The backend on this host's facts and setup's guest files. */
export const vfkitBackend: VfkitBackend = createVfkitBackend();
