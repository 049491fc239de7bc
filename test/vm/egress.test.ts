import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Image, Pool, Vm } from '../../engine';
import { describeEgress } from '../../engine/egress/log';
import type { EgressEvent } from '../../engine/egress/proxy';

/**
 * network 'allowlist' and 'learn': the guest's only way out is the host's egress proxy. A
 * server on the host's loopback stands in for the internet under names that only the tests'
 * resolver override knows (MICROVM_TEST_EGRESS_HOSTS); everything else the guest tries (a
 * direct connection to the host or a public address, DNS to any resolver, ICMP) goes nowhere.
 */
let web: http.Server;
let port: number;
const opened: Array<{ pool: Pool; vm: Vm }> = [];

before(async () => {
  web = http.createServer((req, res) => res.end(`hello from ${req.headers.host?.split(':')[0]}\n`));
  web.listen(0, '127.0.0.1');
  await once(web, 'listening');
  port = (web.address() as AddressInfo).port;
  process.env.MICROVM_TEST_EGRESS_HOSTS = 'allowed.test=127.0.0.1,second.test=127.0.0.1,third.test=127.0.0.1';
});

after(async () => {
  for (const { pool, vm } of opened) {
    await vm.release();
    await pool.shutdown();
  }
  web.close();
  delete process.env.MICROVM_TEST_EGRESS_HOSTS;
});

async function start(network: 'allowlist' | 'learn', allow: string[] = []): Promise<{ vm: Vm; events: EgressEvent[] }> {
  const image = await Image.build({ network, allow });
  const pool = image.pool({ min: 0, max: 1 });
  const vm = await pool.acquire();
  opened.push({ pool, vm });
  const events: EgressEvent[] = [];
  vm.onEgress((e) => events.push(e));
  return { vm, events };
}

async function sh(vm: Vm, script: string): Promise<{ out: string; code: number }> {
  const r = await vm.exec({ argv: ['/bin/sh', '-c', script], timeoutMs: 60_000 });
  return { out: r.stdout + r.stderr, code: r.exitCode };
}

test('allowlist: an allowed name answers through the proxy; a name not allowed, direct connections, DNS and ICMP go nowhere', async () => {
  const { vm, events } = await start('allowlist', ['allowed.test']);
  assert.match(
    (await sh(vm, 'echo $HTTP_PROXY $https_proxy')).out,
    /^http:\/\/10\.0\.2\.2:3128 http:\/\/10\.0\.2\.2:3128\n$/,
  );
  const ok = await sh(vm, `wget -q -O- http://allowed.test:${port}/`);
  assert.deepEqual(ok, { out: 'hello from allowed.test\n', code: 0 });
  const denied = await sh(vm, `wget -q -O- http://second.test:${port}/`);
  assert.notEqual(denied.code, 0);
  assert.match(denied.out, /403/);
  // DNS answers the names the VM may reach (here the tests' stand-in address) and no other.
  const resolved = await sh(vm, 'nslookup allowed.test');
  assert.equal(resolved.code, 0, resolved.out);
  assert.match(resolved.out, /Address:? *(1: )?127\.0\.0\.1/);
  const unknown = await sh(vm, 'nslookup not-allowed.example');
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.out, /NXDOMAIN|can't find|can't resolve/i);
  // Without the proxy: the host's loopback (where the stand-in server is), a public address, DNS, ping.
  const started = Date.now();
  for (const attempt of [
    `wget -Y off -T 5 -q -O- http://10.0.2.2:${port}/`,
    'wget -Y off -T 5 -q -O- http://1.1.1.1/',
    'wget -Y off -T 5 -q -O- http://[2606:4700::1111]/',
    'nslookup example.com 8.8.8.8',
    'nslookup example.com',
    'ping -c 1 -W 3 1.1.1.1',
  ]) {
    const r = await sh(vm, `timeout 15 ${attempt}`);
    assert.notEqual(r.code, 0, `${attempt} must fail: ${r.out}`);
    assert.doesNotMatch(r.out, /hello from/);
  }
  console.log(`six refused attempts took ${Date.now() - started} ms`);
  await new Promise((r) => setTimeout(r, 200));
  const lines = events.map(describeEgress);
  assert.ok(
    lines.some((l) => l.startsWith(`allowed.test:${port} `)),
    lines.join('\n'),
  );
  assert.ok(lines.includes(`refused second.test:${port} (not in the allowlist)`), lines.join('\n'));
  assert.ok(
    lines.every((l) => !l.includes('1.1.1.1') && !l.includes('10.0.2.2')),
    'direct connections never reach the proxy',
  );
});

test('learn: every name is recorded; the list written from it allows those and refuses a new one', async () => {
  const learner = await start('learn');
  for (const name of ['allowed.test', 'second.test', 'allowed.test']) {
    assert.equal((await sh(learner.vm, `wget -q -O- http://${name}:${port}/`)).out, `hello from ${name}\n`);
  }
  await new Promise((r) => setTimeout(r, 200));
  const learned = [...new Set(learner.events.filter((e) => e.allowed).map((e) => e.name))].sort();
  assert.deepEqual(learned, ['allowed.test', 'second.test']);
  const enforced = await start('allowlist', learned);
  for (const name of learned)
    assert.equal((await sh(enforced.vm, `wget -q -O- http://${name}:${port}/`)).out, `hello from ${name}\n`);
  const fresh = await sh(enforced.vm, `wget -q -O- http://third.test:${port}/`);
  assert.notEqual(fresh.code, 0);
  assert.match(fresh.out, /403/);
});
