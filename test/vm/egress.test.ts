import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as http from 'node:http';
import { once } from 'node:events';
import * as os from 'node:os';
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
  assert.ok(
    lines.some((l) => l.startsWith(`refused second.test:${port} (not in the allowlist) by wget (pid `)),
    lines.join('\n'),
  );
  assert.ok(
    lines.every((l) => !l.includes('1.1.1.1') && !l.includes('10.0.2.2')),
    'direct connections never reach the proxy',
  );
});

test('learn: every name is recorded; the list written from it allows those and refuses a new one', async () => {
  const learner = await start('learn');
  const pids: string[] = [];
  for (const name of ['allowed.test', 'second.test', 'allowed.test']) {
    // The guest's own pid for the command (`exec` keeps it), to check what the agent reports.
    const [pid, answer] = (await sh(learner.vm, `echo $$; exec wget -q -O- http://${name}:${port}/`)).out.split('\n');
    assert.equal(answer, `hello from ${name}`);
    pids.push(pid!);
  }
  await new Promise((r) => setTimeout(r, 200));
  const learned = [...new Set(learner.events.filter((e) => e.allowed).map((e) => e.name))].sort();
  assert.deepEqual(learned, ['allowed.test', 'second.test']);
  // The agent names the process of each learned connection (advisory, as the guest reports it).
  assert.deepEqual(
    learner.events.map((e) => e.process && `${e.process.comm} ${e.process.pid}`),
    pids.map((pid) => `wget ${pid}`),
    learner.events.map(describeEgress).join('\n'),
  );
  const enforced = await start('allowlist', learned);
  for (const name of learned)
    assert.equal((await sh(enforced.vm, `wget -q -O- http://${name}:${port}/`)).out, `hello from ${name}\n`);
  const fresh = await sh(enforced.vm, `wget -q -O- http://third.test:${port}/`);
  assert.notEqual(fresh.code, 0);
  assert.match(fresh.out, /403/);
});

test('allowlist: an allowed name that resolves to loopback and UDP datagrams are refused; a refusal names its guest process', async () => {
  const { vm, events } = await start('allowlist', ['allowed.test', 'localhost']);
  const ok = await sh(vm, `wget -q -O- http://allowed.test:${port}/`);
  assert.deepEqual(ok, { out: 'hello from allowed.test\n', code: 0 });
  // `localhost` is allowed by name, but the proxy resolves it itself (not through the tests'
  // override) to 127.0.0.1: refused, by plain HTTP and by CONNECT, and the guest hears why.
  const plain = await sh(vm, `no_proxy= NO_PROXY= wget -q -S -O- http://localhost:${port}/ 2>&1`);
  assert.notEqual(plain.code, 0);
  assert.match(plain.out, /403/);
  const tunnel = await sh(
    vm,
    `printf 'CONNECT localhost:${port} HTTP/1.1\\r\\nHost: localhost:${port}\\r\\n\\r\\n' >/tmp/connect; echo $$; exec nc -w 10 10.0.2.2 3128 </tmp/connect`,
  );
  const [ncPid, ...reply] = tunnel.out.split('\n');
  assert.match(reply.join('\n'), /^HTTP\/1\.1 403 Forbidden/);
  assert.match(reply.join('\n'), /localhost:\d+ the name resolves to 127\.0\.0\.1, which is not a public address/);
  // UDP to the host's loopback and to its own address: dropped in QEMU, nothing arrives.
  const udp = dgram.createSocket('udp4');
  const received: string[] = [];
  udp.on('message', (m) => received.push(m.toString()));
  udp.bind(0, '0.0.0.0');
  await once(udp, 'listening');
  const udpPort = udp.address().port;
  const hostAddress = Object.values(os.networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  for (const target of ['10.0.2.2', ...(hostAddress ? [hostAddress] : [])])
    await sh(vm, `echo leak | timeout 5 nc -u -w 1 ${target} ${udpPort}`);
  await new Promise((r) => setTimeout(r, 1000));
  udp.close();
  assert.deepEqual(received, [], 'no datagram reaches the host');
  await new Promise((r) => setTimeout(r, 500));
  const lines = events.map(describeEgress);
  // A refusal waits for the agent's answer, so its process is always named.
  assert.ok(
    lines.includes(
      `refused localhost:${port} (the name resolves to 127.0.0.1, which is not a public address) by nc (pid ${ncPid}, as the guest reports)`,
    ),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) =>
      l.startsWith(`refused localhost:${port} (the name resolves to 127.0.0.1, which is not a public address) by wget`),
    ),
    lines.join('\n'),
  );
});
