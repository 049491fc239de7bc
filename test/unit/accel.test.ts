import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideAccel, parseForcedAccel } from '../../engine/accel/decide';
import { isMicrovmError } from '../../engine/errors';
import { guestArchOf, hostGuestArch } from '../../engine/qemu/arch';

const linux = { platform: 'linux' as const, forced: undefined, kvmDevice: true };

test('KVM is used only when a boot probe succeeded; otherwise TCG, marked emulated', () => {
  assert.equal(decideAccel(linux), 'probe');
  assert.deepEqual(decideAccel({ ...linux, kvmProbe: { ok: true, detail: 'booted in 300 ms' } }), {
    accel: 'kvm',
    isolation: 'hardware',
    reason: 'KVM boot probe succeeded (booted in 300 ms)',
  });
  const fallback = decideAccel({ ...linux, kvmProbe: { ok: false, detail: 'no boot within 8000 ms' } });
  assert.ok(fallback !== 'probe' && fallback.accel === 'tcg' && fallback.isolation === 'emulated');
  const noDevice = decideAccel({ ...linux, kvmDevice: false });
  assert.ok(noDevice !== 'probe' && noDevice.accel === 'tcg' && /\/dev\/kvm/.test(noDevice.reason));
});

test('MICROVM_ACCEL forces a choice, and refuses one the host cannot give', () => {
  const tcg = decideAccel({ ...linux, forced: 'tcg' });
  assert.ok(tcg !== 'probe' && tcg.accel === 'tcg');
  const kvm = decideAccel({ ...linux, forced: 'kvm' });
  assert.ok(kvm !== 'probe' && kvm.accel === 'kvm');
  assert.throws(
    () => decideAccel({ ...linux, forced: 'kvm', kvmDevice: false }),
    (e) => isMicrovmError(e, 'E_ACCEL_UNAVAILABLE'),
  );
  assert.throws(
    () => decideAccel({ ...linux, forced: 'hvf' }),
    (e) => isMicrovmError(e, 'E_ACCEL_UNAVAILABLE'),
  );
  assert.throws(
    () => parseForcedAccel('xen'),
    (e) => isMicrovmError(e, 'E_BAD_OPTION') && /"xen"/.test(e.message),
  );
});

test('macOS uses HVF', () => {
  const mac = decideAccel({ platform: 'darwin', forced: undefined, kvmDevice: false });
  assert.ok(mac !== 'probe' && mac.accel === 'hvf' && mac.isolation === 'hardware');
});

test('a guest of another architecture than the host CPU is emulated; forcing a hardware accelerator for it is refused', () => {
  const cross = { ...linux, guestArch: 'aarch64' as const, hostArch: 'x86_64' as const };
  const choice = decideAccel(cross);
  assert.ok(choice !== 'probe' && choice.accel === 'tcg' && choice.isolation === 'emulated');
  assert.match(choice.reason, /aarch64 guest on an x86_64 host/);
  assert.throws(
    () => decideAccel({ ...cross, forced: 'kvm' }),
    (e) => isMicrovmError(e, 'E_ACCEL_UNAVAILABLE') && /MICROVM_ACCEL=kvm cannot run an aarch64 guest/.test(e.message),
  );
  const forcedTcg = decideAccel({ ...cross, forced: 'tcg' });
  assert.ok(forcedTcg !== 'probe' && forcedTcg.accel === 'tcg');
  // The host's own architecture: KVM is probed as before (an arm64 Linux host with /dev/kvm).
  assert.equal(decideAccel({ ...linux, guestArch: 'aarch64', hostArch: 'aarch64' }), 'probe');
});

test('image architectures: amd64 (or none) runs as x86_64, arm64 as aarch64, others are refused with the list', () => {
  assert.equal(guestArchOf(undefined, 'image x'), 'x86_64');
  assert.equal(guestArchOf('amd64', 'image x'), 'x86_64');
  assert.equal(guestArchOf('arm64', 'image x'), 'aarch64');
  assert.throws(
    () => guestArchOf('s390x', 'image x'),
    (e) =>
      isMicrovmError(e, 'E_IMAGE_UNSUPPORTED') &&
      /image x is for architecture "s390x".*amd64 and arm64/.test(e.message),
  );
  assert.equal(hostGuestArch('x64'), 'x86_64');
  assert.equal(hostGuestArch('arm64'), 'aarch64');
  assert.equal(hostGuestArch('riscv64'), undefined);
});
