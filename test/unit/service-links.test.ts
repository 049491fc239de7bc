import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMicrovmError } from '../../engine/errors';
import { parseOptions } from '../../engine/options';
import { buildOptionsSchema } from '../../engine/api/image';
import { networkArgs, networkEnv, serviceLinkAddress, SERVICE_LINK_NET } from '../../engine/qemu/network';

const GUARD = '/opt/m/netguard.so';
const DB = { address: '198.18.0.2', port: 5432, path: '/run/m/ab12/link-0.sock' };
const WEB = { address: '198.18.0.3', port: 80, path: '/run/m/ab12/link-1.sock' };

test('service link addresses: 198.18.0.2 onwards, inside SERVICE_LINK_NET', () => {
  assert.equal(SERVICE_LINK_NET, '198.18.0.0/24');
  assert.deepEqual([0, 1, 252].map(serviceLinkAddress), ['198.18.0.2', '198.18.0.3', '198.18.0.254']);
  for (const n of [-1, 253, 1.5, NaN])
    assert.throws(
      () => serviceLinkAddress(n),
      (err) => isMicrovmError(err, 'E_BAD_OPTION'),
    );
});

test("the guard gets the links as address:port=PATH (the relays' unix sockets), in every network mode", () => {
  const services = '198.18.0.2:5432=/run/m/ab12/link-0.sock,198.18.0.3:80=/run/m/ab12/link-1.sock';
  assert.deepEqual(networkEnv('outbound', GUARD, undefined, undefined, [DB, WEB]), {
    LD_PRELOAD: GUARD,
    MICROVM_NETGUARD_SERVICES: services,
  });
  assert.deepEqual(networkEnv('allowlist', GUARD, 3000, 3001, [DB, WEB]), {
    LD_PRELOAD: GUARD,
    MICROVM_NETGUARD_PROXY: '3000',
    MICROVM_NETGUARD_DNS: '3001',
    MICROVM_NETGUARD_SERVICES: services,
  });
  assert.deepEqual(networkEnv('outbound', GUARD, undefined, undefined, []), { LD_PRELOAD: GUARD });
});

test("network 'none' with links: a NIC whose only destinations are the links; given empty, a NIC that reaches nothing", () => {
  assert.deepEqual(networkEnv('none', GUARD, undefined, undefined, [DB]), {
    LD_PRELOAD: GUARD,
    MICROVM_NETGUARD_PROXY: 'none',
    MICROVM_NETGUARD_SERVICES: '198.18.0.2:5432=/run/m/ab12/link-0.sock',
  });
  assert.deepEqual(networkEnv(undefined, GUARD, undefined, undefined, []), {
    LD_PRELOAD: GUARD,
    MICROVM_NETGUARD_PROXY: 'none',
  });
  assert.deepEqual(networkArgs('none', 'device', [DB]), networkArgs('outbound'));
  assert.deepEqual(networkArgs('none', 'pci', []), networkArgs('outbound', 'pci'));
  assert.deepEqual(networkArgs('none', 'device', undefined), []);
});

test('a link outside the block, a port out of range, a path the guard would not take or a link given twice is E_BAD_OPTION, naming the link', () => {
  const bad = [
    [{ ...DB, address: '10.0.2.2' }, /address must be a host address inside 198\.18\.0\.0\/24/],
    [{ ...DB, address: '198.18.0.255' }, /address/],
    [{ ...DB, address: '198.18.0.02' }, /address/],
    [{ ...DB, address: '198.18.1.2' }, /address/],
    [{ ...DB, port: 0 }, /port must be an integer from 1 to 65535/],
    [
      { ...DB, path: 'link.sock' },
      /path must be an absolute unix socket path of at most 107 bytes, without ',' or '='/,
    ],
    [{ ...DB, path: '/' }, /path must be/],
    [{ ...DB, path: `/${'x'.repeat(107)}` }, /path must be/],
    [{ ...DB, path: '/run/a,b.sock' }, /path must be/],
    [{ ...DB, path: '/run/a=b.sock' }, /path must be/],
    [{ ...DB, path: 41234 as unknown as string }, /path must be/],
    [{ ...DB, port: 80.5 }, /port must be/],
  ] as const;
  for (const [link, message] of bad) {
    assert.throws(
      () => networkEnv('none', GUARD, undefined, undefined, [WEB, link]),
      (err) => isMicrovmError(err, 'E_BAD_OPTION') && /service link 1/.test(err.message) && message.test(err.message),
    );
  }
  assert.throws(
    () => networkEnv('outbound', GUARD, undefined, undefined, [DB, { ...DB, path: '/run/other.sock' }]),
    /198\.18\.0\.2:5432 is linked twice/,
  );
  const many = Array.from({ length: 257 }, (_, i) => ({ address: '198.18.0.2', port: i + 1, path: '/run/x.sock' }));
  assert.throws(
    () => networkEnv('outbound', GUARD, undefined, undefined, many),
    /257 service links are more than the 256/,
  );
});

test('Image.build option serviceLinks: checked at the boundary, absent by default', () => {
  assert.equal(parseOptions(buildOptionsSchema, {}, 'Image.build').serviceLinks, undefined);
  assert.deepEqual(
    parseOptions(buildOptionsSchema, { network: 'none', serviceLinks: [DB] }, 'Image.build').serviceLinks,
    [DB],
  );
  assert.throws(
    () => parseOptions(buildOptionsSchema, { serviceLinks: [{ ...DB, address: '127.0.0.1' }] }, 'Image.build'),
    /invalid Image\.build option serviceLinks\.0\.address: expected a host address inside 198\.18\.0\.0\/24/,
  );
  assert.throws(
    () => parseOptions(buildOptionsSchema, { serviceLinks: [DB, DB] }, 'Image.build'),
    /serviceLinks\.1: 198\.18\.0\.2:5432 is linked twice/,
  );
  assert.throws(
    () => parseOptions(buildOptionsSchema, { serviceLinks: [{ ...DB, path: 'relative.sock' }] }, 'Image.build'),
    /serviceLinks\.0\.path: expected an absolute unix socket path/,
  );
  assert.equal(
    parseOptions(buildOptionsSchema, { serviceLinks: [{ ...DB, path: `/${'x'.repeat(106)}` }] }, 'Image.build')
      .serviceLinks?.[0]?.path.length,
    107,
  );
  assert.throws(
    () => parseOptions(buildOptionsSchema, { serviceLinks: [{ ...DB, extra: 1 }] }, 'Image.build'),
    /unknown option\(s\) extra/,
  );
});
