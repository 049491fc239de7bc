import { test } from 'node:test';
import assert from 'node:assert/strict';
import { networkArgs, networkEnv } from '../../engine/qemu/network';

test("network 'outbound': slirp NAT on 10.0.2.0/24, IPv4 only, a virtio-mmio NIC, and the guard preloaded", () => {
  const args = networkArgs('outbound');
  assert.deepEqual(args.slice(2), ['-device', 'virtio-net-device,netdev=net0']);
  assert.match(args[1]!, /^user,id=net0,/);
  for (const part of ['restrict=off', 'ipv6=off', 'net=10.0.2.0/24', 'host=10.0.2.2', 'dns=10.0.2.3'])
    assert.ok(args[1]!.split(',').includes(part), part);
  assert.deepEqual(networkEnv('outbound', '/opt/m/netguard.so'), { LD_PRELOAD: '/opt/m/netguard.so' });
  assert.throws(() => networkEnv('outbound', '/opt/my dir/netguard.so'), /space or colon/);
});

test("network 'none' (or unset): no NIC and no preload", () => {
  assert.deepEqual(networkArgs('none'), []);
  assert.deepEqual(networkArgs(undefined), []);
  assert.deepEqual(networkEnv('none', '/x.so'), {});
});
