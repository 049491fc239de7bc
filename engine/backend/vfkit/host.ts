import type { Capabilities } from '../types';

/** What decides whether vfkit can run VMs here, gathered by detect.ts (pure data, so tests give their own). */
export interface VfkitHostFacts {
  /** `process.platform`. */
  platform: NodeJS.Platform;
  /** `sw_vers -productVersion` (macOS only): `14.5`. */
  macosVersion?: string;
  /** `uname -m`: `arm64` on Apple silicon, `x86_64` on Intel (also under Rosetta, which `sysctl.proc_translated` tells). */
  machine?: string;
  /** The vfkit binary found (MICROVM_VFKIT, else PATH) and what `vfkit --version` printed; absent when none was found. */
  vfkit?: { path: string; versionOutput: string };
}

/** The decision: vfkit's capabilities and guest architecture, or why it cannot run here. */
export type VfkitHost =
  | {
      ok: true;
      capabilities: Capabilities;
      /** The guests it runs: arm64 on Apple silicon, x86_64 on Intel (images: linux/arm64, linux/amd64). */
      guestArch: 'aarch64' | 'x86_64';
      vfkitVersion: string;
      macosVersion: string;
      /** Virtualization.framework can save and restore a VM (macOS 14), though vfkit offers no command for it yet. */
      frameworkSaveRestore: boolean;
      /** What a caller should know: what is off and why. */
      notes: string[];
    }
  | { ok: false; reason: string };

/** vfkit itself needs macOS 12 (the Linux bootloader); virtio-fs shares need 13. */
const MIN_MACOS = 12;
const VIRTIO_FS_MACOS = 13;
const SAVE_RESTORE_MACOS = 14;

/** `14.5` -> [14, 5]; undefined when not a version. */
export function parseMacosVersion(text: string | undefined): [number, number] | undefined {
  const match = /^(\d+)(?:\.(\d+))?/.exec(text?.trim() ?? '');
  return match ? [Number(match[1]), Number(match[2] ?? 0)] : undefined;
}

/** `vfkit version: v0.6.1` (cobra's template with crc's colon) -> `0.6.1`; undefined when not vfkit's answer. */
export function parseVfkitVersion(output: string): string | undefined {
  return /^vfkit version:\s*v?(\S+)/m.exec(output)?.[1];
}

/**
 * What vfkit can do on this host, or why it cannot run: macOS 12 or later (13 for virtio-fs
 * shares), a vfkit binary that answers `--version`. The guest architecture is the host's: VZ
 * runs no other. Snapshots stay off: vfkit has no save/restore command, although the framework
 * has one from macOS 14. The agent speaks over vsock (vfkit's virtio-serial writes a log only).
 */
export function decideVfkitHost(facts: VfkitHostFacts): VfkitHost {
  if (facts.platform !== 'darwin')
    return {
      ok: false,
      reason: `vfkit runs on macOS only (Apple's Virtualization.framework); this host is ${facts.platform}`,
    };
  const version = parseMacosVersion(facts.macosVersion);
  if (!version)
    return { ok: false, reason: `sw_vers gave no macOS version (${JSON.stringify(facts.macosVersion ?? '')})` };
  if (version[0] < MIN_MACOS)
    return {
      ok: false,
      reason: `macOS ${facts.macosVersion} is older than ${MIN_MACOS}, which vfkit's Linux bootloader needs`,
    };
  const guestArch = facts.machine === 'arm64' ? 'aarch64' : facts.machine === 'x86_64' ? 'x86_64' : undefined;
  if (!guestArch)
    return { ok: false, reason: `unknown Mac hardware ${JSON.stringify(facts.machine ?? '')} (uname -m)` };
  if (!facts.vfkit)
    return { ok: false, reason: 'vfkit is not installed: run `brew install vfkit` (or set MICROVM_VFKIT to its path)' };
  const vfkitVersion = parseVfkitVersion(facts.vfkit.versionOutput);
  if (!vfkitVersion) {
    return {
      ok: false,
      reason: `${facts.vfkit.path} --version printed ${JSON.stringify(facts.vfkit.versionOutput.slice(0, 80))}, not vfkit's version line`,
    };
  }
  const virtioFs = version[0] >= VIRTIO_FS_MACOS;
  const notes = [
    'experimental: not verified by this project on a Mac yet (scripts/verify-macos.sh)',
    'snapshots off: vfkit has no save/restore command, so every VM boots fresh',
    'no hot-plug: workspace VMs cannot be suspended',
    'only unfiltered shares (nofilter): Virtualization.framework serves the folder itself, without the filter view',
    'no volumes, tmpfs mounts, service links, proxy networks or image workloads yet',
    'the guest agent serves vsock port 1024 (microvm.vsock=1024): tested over vsock loopback in a Linux guest, not yet under vfkit',
    ...(virtioFs ? [] : [`no folder shares: virtio-fs needs macOS ${VIRTIO_FS_MACOS}`]),
  ];
  return {
    ok: true,
    guestArch,
    vfkitVersion,
    macosVersion: facts.macosVersion!.trim(),
    frameworkSaveRestore: version[0] >= SAVE_RESTORE_MACOS,
    notes,
    capabilities: {
      backend: 'vfkit',
      accel: 'hvf',
      isolation: 'hardware',
      snapshot: false,
      snapshotWithShares: false,
      hotPlug: false,
      virtioFs,
      vsock: true,
    },
  };
}
