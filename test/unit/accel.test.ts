import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideAccel, parseForcedAccel } from '../../engine/accel/decide';
import { isMicrovmError } from '../../engine/errors';

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
