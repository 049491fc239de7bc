import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import * as readline from 'node:readline';
import { ExecChild, Image, Pool, Vm } from '../../engine';
import { ip, ipBatch, NEEDS_ROOT, removeHostNet } from '../helpers/host-net';

/**
 * One VM with network 'outbound' against real host networking: a bridge (docker0-like) with
 * a "container" in a network namespace behind a veth, and a second bridge holding 100
 * addresses. Each has a TCP listener the host itself reaches; the guest must not.
 * IPv6 is judged by test/native/netguard.test.ts: the guest network is IPv4 only.
 */
const PEER_NETNS = 'mvng-peer';
const BRIDGE = 'mvng-br0';
const MANY = 'mvng-many';
const BRIDGE_ADDR = '172.30.77.1';
const PEER_ADDR = '172.30.77.2';
const MANY_ADDRS = Array.from({ length: 100 }, (_, i) => `172.30.78.${i + 1}`);
/** Reached through the default route until the test adds it to a bridge (TEST-NET-2). */
const LATE_ADDR = '198.51.100.77';

let pool: Pool;
let vm: Vm;
let hostServer: net.Server;
let hostPort: number;
let peerServer: ChildProcess | undefined;
let peerPort: number;

function cleanUp(): void {
  peerServer?.kill('SIGKILL');
  removeHostNet({ netns: [PEER_NETNS], links: [BRIDGE, MANY, 'mvng-v0'] });
}

function createHostNet(): void {
  ip('netns', 'add', PEER_NETNS);
  ipBatch([
    `link add ${BRIDGE} type bridge`,
    `link set ${BRIDGE} up`,
    `addr add ${BRIDGE_ADDR}/24 dev ${BRIDGE}`,
    `link add mvng-v0 type veth peer name mvng-v1 netns ${PEER_NETNS}`,
    `link set mvng-v0 master ${BRIDGE}`,
    'link set mvng-v0 up',
    `link add ${MANY} type bridge`,
    `link set ${MANY} up`,
    ...MANY_ADDRS.map((a) => `addr add ${a}/32 dev ${MANY}`),
  ]);
  ipBatch(['link set lo up', 'link set mvng-v1 up', `addr add ${PEER_ADDR}/24 dev mvng-v1`], PEER_NETNS);
}

/** A TCP server in the "container" namespace: it answers "peer secret" and prints its port. */
async function startPeerServer(): Promise<number> {
  const script =
    "const s = require('net').createServer((c) => c.end('peer secret\\n')); s.listen(0, () => console.log(s.address().port));";
  peerServer = spawn('ip', ['netns', 'exec', PEER_NETNS, process.execPath, '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: peerServer!.stdout! }).once('line', resolve);
    peerServer!.once('exit', (code) => reject(new Error(`the peer server exited (${code})`)));
  });
  return Number(line);
}

/** What the host itself reads from address:port: the control that the listener is reachable. */
function hostRead(address: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port, timeout: 5000 });
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
    });
    socket.once('end', () => resolve(text));
    socket.once('timeout', () => socket.destroy(new Error(`no answer from ${address}:${port}`)));
    socket.once('error', reject);
  });
}

async function guestNc(address: string, port: number): Promise<{ stdout: string; stderr: string }> {
  return vm.exec({ argv: ['sh', '-c', `nc -w 3 ${address} ${port} </dev/null`], timeoutMs: 30_000 });
}

before(async () => {
  if (NEEDS_ROOT) return;
  cleanUp();
  createHostNet();
  hostServer = net.createServer((c) => c.end('host secret\n'));
  await new Promise<void>((resolve) => hostServer.listen(0, '::', resolve));
  hostPort = (hostServer.address() as net.AddressInfo).port;
  peerPort = await startPeerServer();
  const image = await Image.build({ network: 'outbound' });
  pool = image.pool({ min: 1, max: 1 });
  vm = await pool.acquire();
});

after(async () => {
  try {
    await vm?.release();
    await pool?.shutdown();
    hostServer?.close();
  } finally {
    if (!NEEDS_ROOT) cleanUp();
  }
});

test(
  "a container on a host bridge, and the bridge's own address, are out of the guest's reach",
  { skip: NEEDS_ROOT },
  async () => {
    assert.equal(await hostRead(PEER_ADDR, peerPort), 'peer secret\n');
    assert.equal(await hostRead(BRIDGE_ADDR, hostPort), 'host secret\n');
    for (const [address, port] of [
      [PEER_ADDR, peerPort],
      [BRIDGE_ADDR, hostPort],
    ] as const) {
      const r = await guestNc(address, port);
      assert.doesNotMatch(r.stdout, /secret/, `the guest reached ${address}:${port}`);
      assert.match(r.stderr, /refused/i, `${address}:${port}: the guard refuses at once`);
    }
  },
);

test('more than 64 host addresses: all 100 addresses of a bridge are refused', { skip: NEEDS_ROOT }, async () => {
  const answers = await Promise.all(MANY_ADDRS.map((a) => hostRead(a, hostPort)));
  assert.ok(
    answers.every((a) => a === 'host secret\n'),
    'the host reaches its listener on every address',
  );
  const loop = `for a in ${MANY_ADDRS.join(' ')}; do echo "$a $(nc -w 2 $a ${hostPort} </dev/null 2>&1 | tr '\\n' ' ')"; done`;
  const r = await vm.exec({ argv: ['sh', '-c', loop], timeoutMs: 300_000 });
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 100, r.stdout + r.stderr);
  for (const line of lines) assert.match(line, /^\S+ .*Connection refused\s*$/);
});

/** The guest connects in a loop; the address appears on a bridge between two attempts. */
test('an address added while the VM runs is refused from the next connection on', { skip: NEEDS_ROOT }, async () => {
  const loop = `i=0; while [ $i -lt 300 ]; do echo "attempt $i: $(nc -w 1 ${LATE_ADDR} ${hostPort} </dev/null 2>&1 | tr '\\n' ' ')"; i=$((i+1)); done`;
  const child: ExecChild = vm.spawn({ argv: ['sh', '-c', loop], timeoutMs: 0 });
  const attempts: string[] = [];
  let pending = '';
  const readAttempts = async (count: number) => {
    while (attempts.length < count) {
      const chunk = await child.readStdout();
      assert.ok(chunk.length > 0, `the guest loop ended after ${attempts.length} attempts`);
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      attempts.push(...lines);
    }
  };
  try {
    await readAttempts(2);
    ip('addr', 'add', `${LATE_ADDR}/32`, 'dev', MANY);
    const addedAfter = attempts.length;
    assert.equal(await hostRead(LATE_ADDR, hostPort), 'host secret\n');
    // The attempt under way when the address appeared started before it; judge the ones after.
    await readAttempts(addedAfter + 6);
    const judged = attempts.slice(addedAfter + 1);
    assert.ok(
      attempts.every((a) => !a.includes('secret')),
      attempts.join('\n'),
    );
    for (const a of judged) assert.match(a, /Connection refused/, attempts.join('\n'));
  } finally {
    child.signal('SIGKILL');
    await child.wait();
  }
});

test('ordinary outbound still works: DNS through slirp, and HTTP to a public name', { skip: NEEDS_ROOT }, async () => {
  const resolve = await vm.exec({ argv: ['nslookup', 'deb.debian.org'], timeoutMs: 30_000 });
  assert.equal(resolve.exitCode, 0, resolve.stdout + resolve.stderr);
  const http = await vm.exec({
    argv: ['wget', '-S', '-O', '/dev/null', 'http://deb.debian.org/debian/'],
    timeoutMs: 60_000,
  });
  assert.equal(http.exitCode, 0, http.stdout + http.stderr);
  assert.match(http.stderr, /HTTP\/1\.1 200/);
});
