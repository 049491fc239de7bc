import { test } from 'node:test';
import assert from 'node:assert/strict';
import { portRows, portTree, sessionRows } from '../../extension/ports/rules';

const declared = {
  forward: [5432, 3000],
  attributes: {
    '3000': { label: 'web', onAutoForward: 'openBrowser' as const },
    '9000-9010': { label: 'range', onAutoForward: 'ignore' as const },
    '9005': { label: 'exact wins' },
  },
};

test('rows list detected and configured ports once each, sorted, with address, process and label', () => {
  const detected = [
    { port: 3000, command: 'node' },
    { port: 3000, command: 'node' },
    { port: 22, command: 'sshd' },
  ];
  const rows = portRows(
    detected,
    declared,
    new Map([[3000, 3001]]),
    new Map([
      [22, 'not forwarded: the limit'],
      [3000, 'ignored when forwarded'],
    ]),
  );
  assert.deepEqual(rows, [
    { guestPort: 22, localAddress: undefined, process: 'sshd', label: '', note: 'not forwarded: the limit' },
    { guestPort: 3000, localAddress: '127.0.0.1:3001', process: 'node', label: 'web', note: '' },
    { guestPort: 5432, localAddress: undefined, process: '', label: '', note: '' },
  ]);
});

test('process names from the guest and labels from the config become one short plain line', () => {
  const hostile = '[x](command:workbench.action.quit)\n\u202eevil\u0007';
  const rows = portRows(
    [{ port: 80, command: hostile }],
    { forward: [], attributes: { '80': { label: `$(warning) ${'L'.repeat(500)}\r\nforged` } } },
    new Map(),
  );
  assert.doesNotMatch(rows[0]!.process, /[\n\u202e\u0007]/);
  assert.ok(rows[0]!.process.length <= 32);
  assert.doesNotMatch(rows[0]!.label, /[\r\n]/);
  assert.ok(rows[0]!.label.length <= 64);
});

test("a compose workspace: rows carry their service, the workspace's own first, other services' forwards marked as such", () => {
  const session = {
    plan: { ports: { forward: [3000], servicePorts: [], publish: [], attributes: {} } },
    portState: () => ({
      listeners: [],
      forwards: new Map([[3000, 3000]]),
      notForwarded: new Map<number, string>(),
      primaryService: 'app',
      serviceForwards: [{ service: 'db\u202e\n', port: 5432, localAddr: '127.0.0.1:5432' }],
    }),
  };
  assert.deepEqual(sessionRows(session), [
    { guestPort: 3000, localAddress: '127.0.0.1:3000', process: '', label: '', note: '', service: 'app' },
    {
      guestPort: 5432,
      localAddress: '127.0.0.1:5432',
      process: '',
      label: '',
      note: '',
      service: 'db',
      serviceForward: true,
    },
  ]);
});

test("the Ports view's tree: flat for one VM; in a compose workspace one group per service, the workspace's own first, each holding its ports", () => {
  const row = (guestPort: number, service?: string) => ({
    guestPort,
    localAddress: undefined,
    process: '',
    label: '',
    note: '',
    ...(service === undefined ? {} : { service }),
  });
  const single = [row(3000), row(8080)];
  assert.deepEqual(portTree(single), single, 'a single-VM workspace lists its ports without groups');
  assert.deepEqual(portTree(single, single[0]), [], 'a port has no children');

  const compose = [row(3000, 'app'), row(5432, 'db'), row(9229, 'app'), row(6379, 'cache'), row(8000)];
  const groups = portTree(compose);
  assert.deepEqual(groups, [{ group: 'app' }, { group: 'db' }, { group: 'cache' }, { group: '' }]);
  assert.deepEqual(
    portTree(compose, { group: 'app' }).map((r) => ('guestPort' in r ? r.guestPort : r.group)),
    [3000, 9229],
  );
  assert.deepEqual(
    portTree(compose, { group: 'db' }).map((r) => ('guestPort' in r ? r.guestPort : r.group)),
    [5432],
  );
  assert.deepEqual(
    portTree(compose, { group: '' }).map((r) => ('guestPort' in r ? r.guestPort : r.group)),
    [8000],
    'a row without a service is not lost in a compose workspace',
  );
  assert.equal(
    groups.flatMap((g) => portTree(compose, g)).length,
    compose.length,
    'every port is under exactly one group',
  );
});
