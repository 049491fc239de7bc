import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import * as net from 'node:net';
import { once } from 'node:events';
import { ip, ipBatch, NEEDS_ROOT, removeHostNet } from '../helpers/host-net';

/**
 * The real microvm-netguard.so preloaded into native/build/netguard-probe, in a network
 * namespace of its own that looks like a developer's machine: an uplink (a layer-3 tun, as
 * a VPN client's; this kernel has no dummy or vlan driver) with the default routes, a bridge
 * with a container-like subnet, a tap and a veth like other VMs', routes through them.
 */
const NETNS = 'mvng-native';
const NETNS_ETC = path.join('/etc/netns', NETNS);
const NATIVE = path.join(__dirname, '../../native/build');
const GUARD = path.join(NATIVE, 'microvm-netguard.so');
const PROBE = path.join(NATIVE, 'netguard-probe');

const TOPOLOGY = [
  'link set lo up',
  'tuntap add dev mvng-up0 mode tun', 'link set mvng-up0 up',
  'addr add 10.1.0.2/24 dev mvng-up0', 'route add default via 10.1.0.1 dev mvng-up0 onlink',
  'addr add fd01::2/64 dev mvng-up0 nodad', 'route add ::/0 dev mvng-up0',
  'tuntap add dev mvng-up1 mode tun', 'link set mvng-up1 up', 'addr add 10.2.0.2/24 dev mvng-up1',
  'link add mvng-br0 type bridge', 'link set mvng-br0 up',
  'addr add 172.30.1.1/24 dev mvng-br0', 'addr add fd7a:6e67:1::1/64 dev mvng-br0 nodad',
  'route add 10.244.0.0/16 via 172.30.1.2 dev mvng-br0',
  'route add 10.98.0.0/16 nexthop via 10.1.0.1 dev mvng-up0 onlink nexthop via 172.30.1.2 dev mvng-br0',
  'route add 10.99.0.0/16 nexthop via 10.1.0.1 dev mvng-up0 onlink nexthop via 10.2.0.1 dev mvng-up1 onlink',
  'tuntap add dev mvng-tap0 mode tap', 'link set mvng-tap0 up', 'addr add 172.30.2.1/24 dev mvng-tap0',
  'link add mvng-ve0 type veth peer name mvng-ve1', 'link set mvng-ve0 up', 'addr add 172.30.3.1/24 dev mvng-ve0',
  'link add mvng-many type bridge', 'link set mvng-many up',
  ...Array.from({ length: 100 }, (_, i) => `addr add 172.30.4.${i + 1}/32 dev mvng-many`),
  'route add blackhole 203.0.113.0/24',
];

/** One probe process: a question per line on stdin, an answer per line on stdout. */
class Probe {
  readonly child: ChildProcess;
  stderr = '';
  private readonly answers: string[] = [];
  private readonly waiters: Array<(line: string) => void> = [];

  constructor({ runAs = [], guarded = true, hostNetns = false, env = [] }: { runAs?: string[]; guarded?: boolean; hostNetns?: boolean; env?: string[] } = {}) {
    const preload = guarded ? [`LD_PRELOAD=${GUARD}`] : [];
    const enter = hostNetns ? [] : ['ip', 'netns', 'exec', NETNS];
    const argv = [...enter, ...runAs, 'env', ...env, ...preload, PROBE];
    const [command = 'env', ...args] = argv;
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const waiter = this.waiters.shift();
      if (waiter) waiter(line);
      else this.answers.push(line);
    });
    this.child.stderr!.on('data', (d: Buffer) => { this.stderr += d.toString(); });
  }

  ask(question: string): Promise<string> {
    this.child.stdin!.write(`${question}\n`);
    const answer = this.answers.shift();
    return answer !== undefined ? Promise.resolve(answer) : new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Each question's answer, in order. */
  async askAll(questions: string[]): Promise<Record<string, string>> {
    const answers: Record<string, string> = {};
    for (const q of questions) answers[q] = await this.ask(q);
    return answers;
  }

  async close(): Promise<void> {
    this.child.stdin!.end();
    if (this.child.exitCode === null) await new Promise((resolve) => this.child.once('exit', resolve));
  }
}

async function verdicts(questions: string[], runAs: string[] = []): Promise<Record<string, string>> {
  const probe = new Probe({ runAs });
  try {
    return await probe.askAll(questions);
  } finally {
    await probe.close();
  }
}

function assertAll(answers: Record<string, string>, expected: RegExp): void {
  for (const [question, answer] of Object.entries(answers)) assert.match(answer, expected, question);
}

function cleanUp(): void {
  removeHostNet({ netns: [NETNS] });
  fs.rmSync(NETNS_ETC, { recursive: true, force: true });
}

before(() => {
  if (NEEDS_ROOT) return;
  cleanUp();
  ip('netns', 'add', NETNS);
  ipBatch(TOPOLOGY, NETNS);
});

after(() => {
  if (!NEEDS_ROOT) cleanUp();
});

test('the host itself is refused: loopback, its own addresses (all 100 of a bridge), broadcast, link-local, multicast', { skip: NEEDS_ROOT }, async () => {
  const many = Array.from({ length: 100 }, (_, i) => `tcp 172.30.4.${i + 1} 80`);
  const answers = await verdicts([
    'tcp 127.0.0.1 80', 'tcp 127.1.2.3 22', 'tcp 0.0.0.0 80', 'tcp 10.1.0.2 80', 'tcp 172.30.1.1 80', ...many,
    'tcp 169.254.169.254 80', 'tcp ::1 80', 'tcp :: 80', 'tcp fe80::1 80', 'tcp fd01::2 80', 'tcp fd7a:6e67:1::1 80',
    'tcp ::ffff:127.0.0.1 80', 'tcp ::ffff:10.1.0.2 80',
  ]);
  assertAll(answers, /^refused ECONNREFUSED$/);
  assertAll(await verdicts(['udp 224.0.0.251 5353', 'udp 255.255.255.255 67', 'udp 10.1.0.255 9', 'udp ff02::1 547']), /^refused EACCES$/);
});

test('bridges, taps and veths are inside the host: their subnets and routes through them are refused, in IPv4 and IPv6', { skip: NEEDS_ROOT }, async () => {
  const answers = await verdicts([
    'tcp 172.30.1.2 80', 'tcp 172.30.1.200 5432', 'tcp fd7a:6e67:1::2 80', 'tcp ::ffff:172.30.1.2 80',
    'tcp 172.30.2.9 80', 'tcp 172.30.3.9 80', 'tcp 10.244.7.7 80', 'tcp 10.98.1.1 80',
  ]);
  assertAll(answers, /^refused ECONNREFUSED$/);
  assertAll(await verdicts(['udp 172.30.1.2 53', 'udp fd7a:6e67:1::2 5353']), /^refused EACCES$/);
});

test('uplinks are allowed: default routes, a LAN on an uplink, ECMP over uplinks; a connection is bound to its interface', { skip: NEEDS_ROOT }, async () => {
  const answers = await verdicts([
    'tcp 198.51.100.7 443', 'tcp 10.1.0.50 80', 'tcp 10.2.0.9 80', 'tcp 2001:db8::7 443', 'tcp fd01::50 80', 'tcp ::ffff:198.51.100.7 80',
  ]);
  assert.deepEqual(answers, {
    'tcp 198.51.100.7 443': 'allowed mvng-up0',
    'tcp 10.1.0.50 80': 'allowed mvng-up0',
    'tcp 10.2.0.9 80': 'allowed mvng-up1',
    'tcp 2001:db8::7 443': 'allowed mvng-up0',
    'tcp fd01::50 80': 'allowed mvng-up0',
    'tcp ::ffff:198.51.100.7 80': 'allowed mvng-up0',
  });
  assert.match((await verdicts(['tcp 10.99.1.1 80']))['tcp 10.99.1.1 80']!, /^allowed -$/, 'multipath: not bound to one leg');
  assert.equal((await verdicts(['udp 198.51.100.7 9']))['udp 198.51.100.7 9'], 'allowed -');
});

test('IPv6 that carries an IPv4 address (IPv4-compatible, NAT64, 6to4) is judged as that address too', { skip: NEEDS_ROOT }, async () => {
  assertAll(await verdicts(['tcp ::7f00:1 80', 'tcp 64:ff9b::ac1e:102 80', 'tcp 64:ff9b::7f00:1 80', 'tcp 2002:ac1e:102::1 80']), /^refused ECONNREFUSED$/);
  assertAll(await verdicts(['tcp 64:ff9b::c633:6407 80', 'tcp 2002:c633:6407::1 80']), /^allowed mvng-up0$/);
});

test('no route (a blackhole): refused with ENETUNREACH, as the kernel would', { skip: NEEDS_ROOT }, async () => {
  assert.deepEqual(await verdicts(['tcp 203.0.113.9 80', 'udp 203.0.113.9 9']), {
    'tcp 203.0.113.9 80': 'refused ENETUNREACH',
    'udp 203.0.113.9 9': 'refused ENETUNREACH',
  });
});

test("policy routing: the route is the one for the process's own uid (QEMU runs as its own user)", { skip: NEEDS_ROOT }, async (t) => {
  ipBatch(['rule add uidrange 4242-4242 lookup 100 priority 100', 'route add 198.51.100.0/24 dev mvng-br0 table 100'], NETNS);
  t.after(() => ipBatch(['rule del priority 100', 'route flush table 100'], NETNS));
  const asUser = ['setpriv', '--reuid=4242', '--regid=4242', '--clear-groups'];
  assert.equal((await verdicts(['tcp 198.51.100.7 80'], asUser))['tcp 198.51.100.7 80'], 'refused ECONNREFUSED');
  assert.equal((await verdicts(['tcp 198.51.100.7 80']))['tcp 198.51.100.7 80'], 'allowed mvng-up0');
});

test("policy routing: a default route through a bridge counts as the way out only in the main table", { skip: NEEDS_ROOT }, async (t) => {
  ipBatch(['rule add to 198.51.100.128/25 lookup 101 priority 101', 'route add default dev mvng-br0 table 101', 'route add ::/0 dev mvng-br0 table 101'], NETNS);
  ip('-n', NETNS, '-6', 'rule', 'add', 'to', '2001:db8:1::/48', 'lookup', '101', 'priority', '101');
  t.after(() => {
    ipBatch(['rule del priority 101', 'route flush table 101'], NETNS);
    ip('-n', NETNS, '-6', 'rule', 'del', 'priority', '101');
    ip('-n', NETNS, '-6', 'route', 'flush', 'table', '101');
  });
  assert.deepEqual(await verdicts(['tcp 198.51.100.7 80', 'tcp 198.51.100.200 80', 'tcp 2001:db8::7 80', 'tcp 2001:db8:1::7 80']), {
    'tcp 198.51.100.7 80': 'allowed mvng-up0',
    'tcp 198.51.100.200 80': 'refused ECONNREFUSED',
    'tcp 2001:db8::7 80': 'allowed mvng-up0',
    'tcp 2001:db8:1::7 80': 'refused ECONNREFUSED',
  });
});

test('an address added while the guard runs is refused at the very next call, and allowed again once removed', { skip: NEEDS_ROOT }, async () => {
  const probe = new Probe();
  try {
    const question = 'tcp 198.51.100.77 80';
    assert.equal(await probe.ask(question), 'allowed mvng-up0');
    ip('-n', NETNS, 'addr', 'add', '198.51.100.77/32', 'dev', 'mvng-br0');
    assert.equal(await probe.ask(question), 'refused ECONNREFUSED');
    ip('-n', NETNS, 'addr', 'del', '198.51.100.77/32', 'dev', 'mvng-br0');
    assert.equal(await probe.ask(question), 'allowed mvng-up0');
    ip('-n', NETNS, 'link', 'add', 'mvng-late', 'type', 'bridge');
    ipBatch(['link set mvng-late up', 'addr add 198.51.100.1/24 dev mvng-late'], NETNS);
    assert.equal(await probe.ask(question), 'refused ECONNREFUSED', 'a bridge that came up for the subnet');
    ip('-n', NETNS, 'link', 'del', 'mvng-late');
  } finally {
    await probe.close();
  }
});

/** A LAN directly connected to one of this host's NICs (a link with no kind), if it has one. */
function hostLan(): { dev: string; local: string; neighbour: string } | undefined {
  const links = JSON.parse(ip('-j', '-d', 'link', 'show')) as Array<{ ifname: string; flags: string[]; linkinfo?: unknown }>;
  const nics = new Set(links.filter((l) => !l.linkinfo && !l.flags.includes('LOOPBACK')).map((l) => l.ifname));
  const routes = JSON.parse(ip('-j', '-4', 'route', 'show', 'table', 'main', 'scope', 'link')) as Array<{ dst: string; dev: string; prefsrc?: string }>;
  const lan = routes.find((r) => nics.has(r.dev) && r.prefsrc && /\/(\d|1\d|2\d|30)$/.test(r.dst));
  if (!lan?.prefsrc) return undefined;
  const toInt = (a: string) => a.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
  const toText = (n: number) => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
  const [network, bits] = lan.dst.split('/');
  const first = toInt(network!) - (toInt(network!) % 2 ** (32 - Number(bits))) + 1;
  return { dev: lan.dev, local: lan.prefsrc, neighbour: toText(first === toInt(lan.prefsrc) ? first + 1 : first) };
}

test("this host's own NIC: a neighbour on its LAN is allowed (the user's LAN), the host's address there is not", { skip: NEEDS_ROOT }, async (t) => {
  const lan = hostLan();
  if (!lan) {
    t.skip('this host has no LAN directly connected to a NIC');
    return;
  }
  const probe = new Probe({ hostNetns: true });
  try {
    assert.deepEqual(await probe.askAll([`tcp ${lan.neighbour} 9`, `tcp ${lan.local} 9`]), {
      [`tcp ${lan.neighbour} 9`]: `allowed ${lan.dev}`,
      [`tcp ${lan.local} 9`]: 'refused ECONNREFUSED',
    });
  } finally {
    await probe.close();
  }
});

/* The verdict is given at connect(); a SYN retransmitted after a route moved would follow it,
 * unless the socket is bound to the interface the verdict was about. Unguarded, it does. */
test('a connection started before an address appears does not follow it into the host', { skip: NEEDS_ROOT }, async () => {
  const attempt = async (guarded: boolean) => {
    const probe = new Probe({ guarded });
    try {
      assert.equal(await probe.ask('listen 7777'), 'listening');
      assert.match(await probe.ask('hold 198.51.100.78 7777'), /^allowed /);
      ip('-n', NETNS, 'addr', 'add', '198.51.100.78/32', 'dev', 'mvng-br0');
      return await probe.ask('held 3000');
    } finally {
      await probe.close();
      ip('-n', NETNS, 'addr', 'flush', 'dev', 'mvng-br0', 'to', '198.51.100.78/32');
    }
  };
  assert.equal(await attempt(false), 'connected', 'unguarded, the retransmitted SYN reaches the new local address');
  assert.equal(await attempt(true), 'pending');
});

/** The link class cache is per ifindex; a link event must empty it, or a reused index keeps a stale class. */
test('an interface index reused by another kind of link is judged by its new kind within 100 ms', { skip: NEEDS_ROOT }, async () => {
  const probe = new Probe();
  try {
    ipBatch(['tuntap add dev mvng-reuse mode tun', 'link set mvng-reuse up', 'addr add 10.50.0.1/24 dev mvng-reuse'], NETNS);
    const index = (JSON.parse(ip('-n', NETNS, '-j', 'link', 'show', 'mvng-reuse')) as Array<{ ifindex: number }>)[0]!.ifindex;
    assert.equal(await probe.ask('tcp 10.50.0.9 80'), 'allowed mvng-reuse');
    ip('-n', NETNS, 'link', 'del', 'mvng-reuse');
    ip('-n', NETNS, 'link', 'add', 'mvng-reuse', 'index', String(index), 'type', 'bridge');
    ipBatch(['link set mvng-reuse up', 'addr add 10.50.0.1/24 dev mvng-reuse'], NETNS);
    const deadline = Date.now() + 100;
    let answer = await probe.ask('tcp 10.50.0.9 80');
    while (answer !== 'refused ECONNREFUSED' && Date.now() < deadline) answer = await probe.ask('tcp 10.50.0.9 80');
    assert.equal(answer, 'refused ECONNREFUSED');
    ip('-n', NETNS, 'link', 'del', 'mvng-reuse');
  } finally {
    await probe.close();
  }
});

test('DNS: port 53 of the resolvers in resolv.conf stays open, read again when the file changes', { skip: NEEDS_ROOT }, async () => {
  fs.mkdirSync(NETNS_ETC, { recursive: true });
  const resolvConf = path.join(NETNS_ETC, 'resolv.conf');
  fs.writeFileSync(resolvConf, '# ip netns exec mounts this over /etc/resolv.conf\nnameserver 127.0.0.53\nnameserver fd7a:6e67:1::53%mvng-br0\n');
  const probe = new Probe();
  try {
    assert.deepEqual(await probe.askAll(['udp 127.0.0.53 53', 'tcp 127.0.0.53 53', 'udp fd7a:6e67:1::53 53', 'udp 127.0.0.53 5353', 'udp 127.0.0.54 53', 'udp 172.30.1.53 53']), {
      'udp 127.0.0.53 53': 'allowed -',
      'tcp 127.0.0.53 53': 'allowed -',
      'udp fd7a:6e67:1::53 53': 'allowed -',
      'udp 127.0.0.53 5353': 'refused EACCES',
      'udp 127.0.0.54 53': 'refused EACCES',
      'udp 172.30.1.53 53': 'refused EACCES',
    });
    fs.writeFileSync(resolvConf, 'nameserver 172.30.1.53\n');
    assert.deepEqual(await probe.askAll(['udp 127.0.0.53 53', 'udp 172.30.1.53 53']), {
      'udp 127.0.0.53 53': 'refused EACCES',
      'udp 172.30.1.53 53': 'allowed -',
    });
  } finally {
    await probe.close();
    fs.rmSync(NETNS_ETC, { recursive: true, force: true });
  }
});

test('fail closed: without a netlink socket every IP destination is refused, with one stderr line', { skip: NEEDS_ROOT }, async () => {
  const probe = new Probe();
  try {
    assert.equal(await probe.ask('fill-fds'), 'filled');
    assert.deepEqual(await probe.askAll(['tcp 198.51.100.7 80', 'udp 198.51.100.7 9', 'tcp 2001:db8::7 80']), {
      'tcp 198.51.100.7 80': 'refused ECONNREFUSED',
      'udp 198.51.100.7 9': 'refused EACCES',
      'tcp 2001:db8::7 80': 'refused ECONNREFUSED',
    });
  } finally {
    await probe.close();
  }
  assert.equal(probe.stderr, 'microvm-netguard: cannot open a netlink socket, refusing guest traffic: Too many open files\n');
});

/* A default route through a bridge is allowed (a bridged uplink); as a nexthop object without
 * compat mode the kernel no longer names its interface, and the guard refuses rather than guess. */
test('fail closed: a route the kernel describes by nexthop id only is refused, not guessed', { skip: NEEDS_ROOT }, async (t) => {
  const compatMode = (mode: number) => execFileSync('ip', ['netns', 'exec', NETNS, 'sysctl', '-q', '-w', `net.ipv4.nexthop_compat_mode=${mode}`]);
  ipBatch(['nexthop add id 4242 via 172.30.1.2 dev mvng-br0', 'route replace default nhid 4242'], NETNS);
  t.after(() => {
    compatMode(1);
    ipBatch(['route replace default via 10.1.0.1 dev mvng-up0 onlink', 'nexthop del id 4242'], NETNS);
  });
  assert.equal((await verdicts(['tcp 198.51.100.7 80']))['tcp 198.51.100.7 80'], 'allowed mvng-br0');
  compatMode(0);
  const probe = new Probe();
  try {
    assert.equal(await probe.ask('tcp 198.51.100.7 80'), 'refused ECONNREFUSED');
  } finally {
    await probe.close();
  }
  assert.match(probe.stderr, /^microvm-netguard: the kernel's route names no interface/);
});

test('proxy mode: the guest\'s 10.0.2.2:3128 (slirp\'s 127.0.0.1:3128) reaches the egress proxy\'s port; every other destination is refused', async () => {
  const proxy = net.createServer((socket) => socket.on('error', () => undefined).end('proxy\n'));
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const port = (proxy.address() as net.AddressInfo).port;
  const probe = new Probe({ hostNetns: true, env: [`MICROVM_NETGUARD_PROXY=${port}`] });
  try {
    assert.equal(await probe.ask('hold 127.0.0.1 3128'), 'allowed -');
    assert.equal(await probe.ask('held 2000'), 'connected', 'the connection went to the proxy');
    assertAll(await probe.askAll([`tcp 127.0.0.1 ${port}`, 'tcp 127.0.0.1 80', 'tcp 198.51.100.7 443', 'tcp 8.8.8.8 53', 'tcp ::1 3128', 'tcp 2001:db8::7 443']), /^refused ECONNREFUSED$/);
    assertAll(await probe.askAll(['udp 8.8.8.8 53', 'udp 127.0.0.53 53', 'udp 198.51.100.7 443', 'udp 2001:db8::7 53']), /^refused EACCES$/);
  } finally {
    await probe.close();
  }
  const broken = new Probe({ hostNetns: true, env: ['MICROVM_NETGUARD_PROXY=none'] });
  try {
    assertAll(await broken.askAll(['tcp 127.0.0.1 3128', 'tcp 198.51.100.7 443']), /^refused ECONNREFUSED$/);
  } finally {
    await broken.close();
  }
  proxy.close();
});

/** A unix socket listener standing in for a service link's relay: it counts the connections it got. */
async function relayListener(): Promise<{ path: string; accepted: (count: number) => Promise<boolean>; close: () => void }> {
  let accepted = 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mvng-relay-'));
  const socketPath = path.join(dir, 'link.sock');
  const server = net.createServer((socket) => {
    accepted++;
    socket.on('error', () => undefined).end('relay\n');
  });
  server.listen(socketPath);
  await once(server, 'listening');
  // The probe sees the connection made; the server's callback may come a moment later.
  const reached = async (count: number) => {
    for (let i = 0; i < 100 && accepted < count; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    return accepted === count;
  };
  const close = () => server.close(() => fs.rmSync(dir, { recursive: true, force: true }));
  return { path: socketPath, accepted: reached, close };
}

/**
 * A linked destination connects to the relay's unix socket: slirp's descriptor becomes a
 * unix socket with the flags it had (non-blocking, close-on-exec), connected at once, and
 * what the relay sends arrives on it.
 */
async function reachesRelay(probe: Probe, address: string, port: number, relayPath: string): Promise<void> {
  assert.equal(await probe.ask(`hold ${address} ${port}`), 'allowed -', `${address}:${port} is linked`);
  assert.equal(await probe.ask('held 2000'), 'connected', `${address}:${port} reached its relay`);
  assert.equal(await probe.ask('kind'), `unix ${relayPath} nonblock cloexec`);
  assert.equal(await probe.ask('read 2000'), 'relay');
  assert.equal(await probe.ask('drop'), 'dropped');
}

/** Everything in the block but the links, and every datagram to it, in whatever mode. */
async function assertBlockRefused(probe: Probe): Promise<void> {
  assertAll(await probe.askAll(['tcp 198.18.0.2 5433', 'tcp 198.18.0.3 5432', 'tcp 198.18.0.1 80', 'tcp 198.18.0.255 5432',
    'tcp ::ffff:198.18.0.2 5432', 'tcp 64:ff9b::c612:2 5432', 'tcp 2002:c612:2::1 5432']), /^refused ECONNREFUSED$/);
  assertAll(await probe.askAll(['udp 198.18.0.2 5432', 'msg 198.18.0.2 5432', 'mmsg 198.18.0.2 5432', 'udp 198.18.0.3 53', 'udp ::ffff:198.18.0.2 53']), /^refused EACCES$/);
}

test("service links: a linked address:port reaches its relay's unix socket; the rest of 198.18.0.0/24 and every datagram to it are refused", async () => {
  const relay = await relayListener();
  const other = await relayListener();
  const probe = new Probe({ hostNetns: true, env: [`MICROVM_NETGUARD_SERVICES=198.18.0.2:5432=${relay.path},198.18.0.3:80=${other.path}`] });
  try {
    await reachesRelay(probe, '198.18.0.2', 5432, relay.path);
    await reachesRelay(probe, '198.18.0.3', 80, other.path);
    await assertBlockRefused(probe);
    assert.ok(await relay.accepted(1), 'the first link reached its relay');
    assert.ok(await other.accepted(1), 'the second link reached its own');
  } finally {
    await probe.close();
    relay.close();
    other.close();
  }
  assert.equal(probe.stderr, '');
});

test('service links: a relay that does not listen (no socket file, or closed) refuses the connection at once (the guest gets a reset)', async () => {
  const relay = await relayListener();
  const missing = path.join(path.dirname(relay.path), 'missing.sock');
  const stale = path.join(path.dirname(relay.path), 'stale.sock');
  const gone = net.createServer().listen(stale);
  await once(gone, 'listening');
  // A socket file nobody listens on any more (Node unlinks its own on close, so take it back).
  fs.renameSync(stale, `${stale}.kept`);
  await new Promise((resolve) => gone.close(resolve));
  fs.renameSync(`${stale}.kept`, stale);
  const probe = new Probe({ hostNetns: true, env: [`MICROVM_NETGUARD_SERVICES=198.18.0.2:5432=${missing},198.18.0.2:5433=${stale}`] });
  try {
    assertAll(await probe.askAll(['tcp 198.18.0.2 5432', 'tcp 198.18.0.2 5433']), /^refused ECONNREFUSED$/);
  } finally {
    await probe.close();
    relay.close();
  }
  assert.equal(probe.stderr, '');
});

test("service links in proxy mode: the links and the proxy's port, nothing else; with PROXY=none (network 'none' with links) only the links", async () => {
  const relay = await relayListener();
  const proxy = net.createServer((socket) => socket.on('error', () => undefined).end('proxy\n'));
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const proxyPort = (proxy.address() as net.AddressInfo).port;
  const links = `MICROVM_NETGUARD_SERVICES=198.18.0.2:5432=${relay.path}`;
  for (const mode of [String(proxyPort), 'none']) {
    const probe = new Probe({ hostNetns: true, env: [`MICROVM_NETGUARD_PROXY=${mode}`, links] });
    try {
      await reachesRelay(probe, '198.18.0.2', 5432, relay.path);
      await assertBlockRefused(probe);
      assert.equal(await probe.ask('tcp 127.0.0.1 3128'), mode === 'none' ? 'refused ECONNREFUSED' : 'allowed -');
      assertAll(await probe.askAll([`tcp 127.0.0.1 ${proxyPort}`, 'tcp 198.51.100.7 443', 'tcp 10.0.2.2 80']), /^refused ECONNREFUSED$/);
      assertAll(await probe.askAll(['udp 127.0.0.53 53', 'udp 8.8.8.8 53']), /^refused EACCES$/);
    } finally {
      await probe.close();
    }
    assert.equal(probe.stderr, '', `MICROVM_NETGUARD_PROXY=${mode} is no mistake`);
  }
  assert.ok(await relay.accepted(2), 'the link reached the relay in both modes');
  relay.close();
  proxy.close();
});

test('service links: a malformed map refuses every link, with one stderr line; 256 links are fine', async () => {
  const relay = await relayListener();
  const p = relay.path;
  const long = `/${'x'.repeat(107)}`;
  const malformed = [
    `198.18.0.2:5432=${p},`, `198.18.0.2:5432`, `198.18.0.2=${p}`, `10.0.0.2:5432=${p},198.18.0.2:5432=${p}`, `198.18.0.2:0=${p}`,
    '198.18.0.2:5432=41234', `198.18.0.2:+5432=${p}`, ` 198.18.0.2:5432=${p}`, `198.18.0.255:5432=${p}`, `198.18.00.2:5432=${p}`,
    `198.18.0.2:5432=${p},198.18.0.2:5432=${p}`, Array.from({ length: 257 }, (_, i) => `198.18.0.2:${i + 1}=${p}`).join(','),
    // Paths: relative, empty, the root alone, too long for sun_path (108 bytes with its NUL), with a separator in them.
    '198.18.0.2:5432=link.sock', '198.18.0.2:5432=', '198.18.0.2:5432=/', `198.18.0.2:5432=${long}`, `198.18.0.2:5432=${p}=x`,
    `198.18.0.2:5432=/tmp/a=b.sock`,
  ];
  for (const value of malformed) {
    const probe = new Probe({ hostNetns: true, env: [`MICROVM_NETGUARD_SERVICES=${value}`] });
    try {
      assertAll(await probe.askAll(['tcp 198.18.0.2 5432', 'tcp 198.18.0.2 1']), /^refused ECONNREFUSED$/);
    } finally {
      await probe.close();
    }
    assert.match(probe.stderr, /^microvm-netguard: MICROVM_NETGUARD_SERVICES is malformed [^\n]*\n$/, value.slice(0, 60));
  }
  // The longest path that fits (107 bytes) is fine.
  const longest = path.join(path.dirname(p), 'l'.repeat(107 - path.dirname(p).length - 1));
  assert.equal(longest.length, 107);
  const fits = net.createServer((socket) => socket.on('error', () => undefined).end('relay\n')).listen(longest);
  await once(fits, 'listening');
  const full = Array.from({ length: 256 }, (_, i) => `198.18.0.${(i % 250) + 2}:${i + 1}=${i === 255 ? longest : p}`).join(',');
  const probe = new Probe({ hostNetns: true, env: [`MICROVM_NETGUARD_SERVICES=${full}`] });
  try {
    await reachesRelay(probe, '198.18.0.7', 256, longest);
    await reachesRelay(probe, '198.18.0.2', 1, p);
  } finally {
    await probe.close();
    fits.close();
  }
  assert.equal(probe.stderr, '');
  relay.close();
});
