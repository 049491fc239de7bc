import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideAccel } from '../../engine/accel/decide';
import { qemuCapabilities } from '../../engine/backend/capabilities';

/** QEMU's capabilities follow the accelerator accel/ chose: KVM isolates, TCG only emulates. */
test('QEMU under KVM and under TCG: the same features, different isolation', () => {
  const kvm = decideAccel({ platform: 'linux', forced: 'kvm', kvmDevice: true });
  const tcg = decideAccel({ platform: 'linux', forced: undefined, kvmDevice: false });
  assert.ok(kvm !== 'probe' && tcg !== 'probe');
  const common = {
    backend: 'qemu',
    snapshot: true,
    snapshotWithShares: false,
    hotPlug: true,
    virtioFs: true,
    vsock: false,
  };
  assert.deepEqual(qemuCapabilities(kvm), { ...common, accel: 'kvm', isolation: 'hardware' });
  assert.deepEqual(qemuCapabilities(tcg), { ...common, accel: 'tcg', isolation: 'emulated' });
});

test('aarch64 guests: snapshots as for x86_64, but no hot-plug (virt has no q35 workspace machine)', () => {
  const tcg = decideAccel({ platform: 'linux', forced: undefined, kvmDevice: false });
  assert.ok(tcg !== 'probe');
  const caps = qemuCapabilities(tcg, 'aarch64');
  assert.equal(caps.snapshot, true);
  assert.equal(caps.hotPlug, false);
  assert.equal(qemuCapabilities(tcg, 'x86_64').hotPlug, true);
});
