import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attributesFor, autoForwardAction, portRows, portsToForward } from '../../extension/ports/rules';

const attributes = {
  '3000': { label: 'web', onAutoForward: 'openBrowser' as const },
  '9000-9010': { label: 'range', onAutoForward: 'ignore' as const },
  '9005': { label: 'exact wins' },
};

test('port attributes: an exact key wins over a range; notify is the default action', () => {
  assert.equal(attributesFor(9005, attributes).label, 'exact wins');
  assert.equal(attributesFor(9001, attributes).label, 'range');
  assert.equal(autoForwardAction(3000, attributes), 'openBrowser');
  assert.equal(autoForwardAction(9002, attributes), 'ignore');
  assert.equal(autoForwardAction(9005, attributes), 'notify');
  assert.equal(autoForwardAction(4000, attributes), 'notify');
});

test('rows list detected and configured ports once each, sorted, with address, process and label', () => {
  const detected = [{ port: 3000, command: 'node' }, { port: 3000, command: 'node' }, { port: 22, command: 'sshd' }];
  const rows = portRows(detected, [5432, 3000], new Map([[3000, 3001]]), attributes);
  assert.deepEqual(rows, [
    { guestPort: 22, localAddress: undefined, process: 'sshd', label: '' },
    { guestPort: 3000, localAddress: '127.0.0.1:3001', process: 'node', label: 'web' },
    { guestPort: 5432, localAddress: undefined, process: '', label: '' },
  ]);
});

test('auto-forward skips ports already forwarded, ignored, or stopped by the user', () => {
  const detected = [3000, 4000, 9001, 8080].map((port) => ({ port, command: 'x' }));
  assert.deepEqual(portsToForward(detected, new Map([[3000, 3000]]), new Set([8080]), attributes), [4000]);
});
