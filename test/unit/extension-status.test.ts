import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statusView, VmStatus } from '../../extension/ui/status';
import { decideOpen } from '../../extension/vm/trust';

test('every status maps to one status bar view, with the accelerator', () => {
  const kvm = { accel: 'kvm', isolation: 'hardware' as const };
  const expected: Record<VmStatus, RegExp> = {
    stopped: /^\$\(vm-outline\) MicroVM \(kvm\)$/,
    baking: /baking \(kvm\)/,
    booting: /booting \(kvm\)/,
    ready: /^\$\(vm-running\) MicroVM: ready \(kvm\)$/,
    error: /^\$\(error\) MicroVM: error/,
  };
  for (const [status, text] of Object.entries(expected)) {
    const view = statusView(status as VmStatus, kvm);
    assert.match(view.text, text);
    assert.equal(view.warning, false);
    assert.doesNotMatch(view.tooltip, /TCG/);
  }
  assert.equal(statusView('error', kvm).command, 'microvm.showLog');
  assert.equal(statusView('stopped', undefined).text, '$(vm-outline) MicroVM');
});

test('on TCG the ready item carries a warning icon and says it is not a security boundary', () => {
  const view = statusView('ready', { accel: 'tcg', isolation: 'emulated' }, 'Workspace at /workspaces/app');
  assert.match(view.text, /^\$\(warning\) MicroVM: ready \(tcg\)$/);
  assert.equal(view.warning, true);
  assert.match(view.tooltip, /emulated \(TCG\).*not treat TCG as a security boundary/);
  assert.match(view.tooltip, /\/workspaces\/app/);
});

test('untrusted folders are refused under TCG unless allowEmulation is set', () => {
  assert.deepEqual(decideOpen({ trusted: false, isolation: 'hardware', allowEmulation: false }), { allowed: true });
  assert.deepEqual(decideOpen({ trusted: true, isolation: 'emulated', allowEmulation: false }), { allowed: true });
  assert.deepEqual(decideOpen({ trusted: false, isolation: 'emulated', allowEmulation: true }), { allowed: true });
  const refused = decideOpen({ trusted: false, isolation: 'emulated', allowEmulation: false });
  assert.equal(refused.allowed, false);
  assert.ok(!refused.allowed);
  assert.match(refused.message, /QEMU does not treat TCG as a security boundary/);
  assert.match(refused.message, /"microvm\.allowEmulation": true/);
});
