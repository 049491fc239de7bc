import { MicrovmError } from '../errors';
import { Accel, GuestArch } from '../qemu/types';

export const TCG_WARNING =
  'running under TCG software emulation: QEMU does not treat TCG as a security boundary ' +
  '(its security policy calls it a non-virtualization use case), so guest code is NOT hardware-isolated';

/** The accelerator chosen for this host, whether it isolates the guest, and why. */
export interface AccelChoice {
  accel: Accel;
  isolation: 'hardware' | 'emulated';
  /** Why this accelerator was chosen, for `microvm info` and logs. */
  reason: string;
}

/** What the host offers; gathered by detect.ts, decided on here without side effects. */
export interface HostFacts {
  platform: NodeJS.Platform;
  forced: string | undefined;
  /** /dev/kvm can be opened read-write. */
  kvmDevice: boolean;
  /** The result of a KVM boot probe, when one was run or cached. */
  kvmProbe?: { ok: boolean; detail: string };
  /** The guest's architecture and the one the host CPU runs natively (absent: the same). */
  guestArch?: GuestArch;
  hostArch?: GuestArch;
}

export function parseForcedAccel(value: string | undefined): Accel | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'kvm' || value === 'tcg' || value === 'hvf') return value;
  throw new MicrovmError(
    'E_BAD_OPTION',
    `MICROVM_ACCEL=${JSON.stringify(value)} is not an accelerator: use kvm, tcg or hvf (or unset it to choose automatically)`,
  );
}

/** Returns a choice, or 'probe' when only a KVM boot probe can tell. */
export function decideAccel(facts: HostFacts): AccelChoice | 'probe' {
  const forced = parseForcedAccel(facts.forced);
  const hardwareAccel = facts.platform === 'darwin' ? 'hvf' : 'kvm';
  if (forced === 'tcg') return tcg('forced by MICROVM_ACCEL=tcg');
  // Hardware acceleration runs the host CPU's own instruction set only.
  if (facts.guestArch && facts.guestArch !== facts.hostArch) {
    const host = facts.hostArch ?? 'this';
    if (forced) {
      throw new MicrovmError(
        'E_ACCEL_UNAVAILABLE',
        `MICROVM_ACCEL=${forced} cannot run an ${facts.guestArch} guest on an ${host} host; use tcg (or unset MICROVM_ACCEL)`,
      );
    }
    return tcg(`an ${facts.guestArch} guest on an ${host} host is emulated`);
  }
  if (forced && forced !== hardwareAccel) {
    throw new MicrovmError(
      'E_ACCEL_UNAVAILABLE',
      `MICROVM_ACCEL=${forced} is not available on ${facts.platform}; use ${hardwareAccel} or tcg`,
    );
  }
  if (hardwareAccel === 'hvf')
    return {
      accel: 'hvf',
      isolation: 'hardware',
      reason: forced ? 'forced by MICROVM_ACCEL=hvf' : 'macOS Hypervisor.framework',
    };
  if (!facts.kvmDevice) {
    if (forced)
      throw new MicrovmError(
        'E_ACCEL_UNAVAILABLE',
        'MICROVM_ACCEL=kvm but /dev/kvm cannot be opened read-write; check that KVM is enabled and you are in the kvm group',
      );
    return tcg('/dev/kvm is missing or not accessible');
  }
  if (forced) return { accel: 'kvm', isolation: 'hardware', reason: 'forced by MICROVM_ACCEL=kvm' };
  if (!facts.kvmProbe) return 'probe';
  if (facts.kvmProbe.ok)
    return { accel: 'kvm', isolation: 'hardware', reason: `KVM boot probe succeeded (${facts.kvmProbe.detail})` };
  return tcg(`/dev/kvm exists but a guest did not boot under it (${facts.kvmProbe.detail})`);
}

function tcg(reason: string): AccelChoice {
  return { accel: 'tcg', isolation: 'emulated', reason };
}
