import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { ExecChild, Image, Pool, Vm, isMicrovmError } from '../../engine';
import { SLOW } from '../helpers/slow';
import { testImage } from '../helpers/test-arch';

/** One VM (network 'outbound', the default) serves every test in this file. */
let pool: Pool;
let vm: Vm;
const background: ExecChild[] = [];

before(async () => {
  const image = await Image.build(testImage());
  pool = image.pool({ min: 1, max: 1 });
  vm = await pool.acquire();
  await vm.writeFile('/srv/index.html', 'hello from the guest\n');
});

after(async () => {
  for (const child of background) child.signal('SIGKILL');
  await vm?.release();
  await pool?.shutdown();
});

/** Starts a long-running guest command and waits until its port is listening. */
async function serve(argv: string[], port: number): Promise<ExecChild> {
  const child = vm.spawn({ argv, timeoutMs: 0 });
  background.push(child);
  const deadline = Date.now() + 10_000;
  while (!(await vm.listeningPorts()).some((l) => l.port === port)) {
    assert.ok(Date.now() < deadline, `nothing listens on guest port ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return child;
}

function get(port: number, path = '/index.html'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function readStream(read: () => Promise<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for (let c = await read(); c.length > 0; c = await read()) chunks.push(c);
  return Buffer.concat(chunks).toString();
}

test('an HTTP server in the guest is fetched from the host; 100 concurrent connections all succeed', async () => {
  await serve(['httpd', '-f', '-p', '8080', '-h', '/srv'], 8080);
  const forwarder = await vm.exposeTcp(0, 8080);
  assert.equal(forwarder.localAddr, `127.0.0.1:${forwarder.port}`);
  assert.deepEqual(forwarder.address, { address: '127.0.0.1', port: forwarder.port, family: 'IPv4' });
  const first = await get(forwarder.port);
  assert.equal(first.status, 200);
  assert.equal(first.body, 'hello from the guest\n');
  const started = performance.now();
  const all = await Promise.all(Array.from({ length: 100 }, () => get(forwarder.port)));
  const ms = performance.now() - started;
  assert.ok(all.every((r) => r.status === 200 && r.body === 'hello from the guest\n'));
  console.log(`# 100 concurrent HTTP GETs through the forward: ${ms.toFixed(0)} ms`);
  await forwarder.stop();
  await forwarder.stop();
  await assert.rejects(get(forwarder.port), /ECONNREFUSED/);
});

test('100 MB up and 100 MB down through a forward arrive with matching sha256', SLOW, async () => {
  const size = 100 * 1024 * 1024;
  const up = vm.spawn({ argv: ['sh', '-c', 'nc -l -p 9000 | sha256sum'], timeoutMs: 300_000 });
  background.push(up);
  const upForward = await vm.exposeTcp(0, 9000);
  while (!(await vm.listeningPorts()).some((l) => l.port === 9000)) await new Promise((r) => setTimeout(r, 100));
  const data = randomBytes(size);
  const started = performance.now();
  const socket = net.connect(upForward.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.end(data);
  const guestSum = (await readStream(() => up.readStdout())).split(' ')[0];
  const upMs = performance.now() - started;
  assert.equal(guestSum, createHash('sha256').update(data).digest('hex'));
  console.log(`# upload 100 MB: ${(size / 1048576 / (upMs / 1000)).toFixed(1)} MB/s`);

  const down = vm.spawn({
    argv: ['bash', '-c', `head -c ${size} /dev/urandom | tee >(sha256sum >&2) | nc -l -p 9001; wait $!`],
    timeoutMs: 300_000,
  });
  background.push(down);
  const downSum = readStream(() => down.readStderr());
  const downForward = await vm.exposeTcp(0, 9001);
  while (!(await vm.listeningPorts()).some((l) => l.port === 9001)) await new Promise((r) => setTimeout(r, 100));
  const downStarted = performance.now();
  const hash = createHash('sha256');
  let received = 0;
  const client = net.connect(downForward.port, '127.0.0.1');
  client.on('data', (d: Buffer) => {
    hash.update(d);
    received += d.length;
  });
  await new Promise((resolve) => client.on('end', resolve));
  const downMs = performance.now() - downStarted;
  client.end();
  assert.equal(received, size);
  assert.equal(hash.digest('hex'), (await downSum).split(' ')[0]);
  console.log(`# download 100 MB: ${(size / 1048576 / (downMs / 1000)).toFixed(1)} MB/s`);
});

test('a listener started in the guest is reported within 2 s with its process name; its exit too', async () => {
  const changes: Array<{ at: number; added: string[]; removed: string[] }> = [];
  const dispose = vm.onPortsChanged((c) =>
    changes.push({
      at: Date.now(),
      added: c.added.map((l) => `${l.port}/${l.command}`),
      removed: c.removed.map((l) => `${l.port}/${l.command}`),
    }),
  );
  await vm.listeningPorts();
  const started = Date.now();
  const child = vm.spawn({ argv: ['nc', '-l', '-p', '7777'], timeoutMs: 0 });
  background.push(child);
  while (!changes.some((c) => c.added.includes('7777/nc'))) {
    assert.ok(Date.now() - started < 2000, `not reported within 2 s: ${JSON.stringify(changes)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  console.log(`# listener reported after ${changes.find((c) => c.added.includes('7777/nc'))!.at - started} ms`);
  const entry = (await vm.listeningPorts()).find((l) => l.port === 7777);
  assert.equal(entry?.command, 'nc');
  assert.ok((entry?.pid ?? 0) > 1);
  const killed = Date.now();
  child.signal('SIGKILL');
  while (!changes.some((c) => c.removed.includes('7777/nc'))) {
    assert.ok(Date.now() - killed < 2000, 'the listener exit was not reported within 2 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  dispose();
});

test('a forward to a guest port with no listener closes the host connection promptly; the forwarder keeps working', async () => {
  const forwarder = await vm.exposeTcp(0, 1);
  for (let i = 0; i < 3; i++) {
    const started = Date.now();
    const socket = net.connect(forwarder.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.on('close', resolve));
    assert.ok(Date.now() - started < 2000);
  }
  assert.equal(forwarder.listening, true);
  await forwarder.stop();
});

test('a host port already in use is a clear error naming the port', async () => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as net.AddressInfo).port;
  await assert.rejects(
    vm.exposeTcp(port, 8080),
    (err) => isMicrovmError(err, 'E_PORT_IN_USE') && err.message.includes(`${port}`),
  );
  taken.close();
});

test('the guest cannot reach a server on the host loopback or on the host own addresses', async () => {
  const server = net.createServer((s) => s.end('host secret\n'));
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const hostAddrs = Object.values((await import('node:os')).networkInterfaces())
    .flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal)
    .map((a) => a!.address);
  for (const target of ['10.0.2.2', ...hostAddrs]) {
    const r = await vm.exec({
      argv: ['sh', '-c', `nc -w 3 ${target} ${port} </dev/null; echo "exit $?"`],
      timeoutMs: 20_000,
    });
    assert.doesNotMatch(r.stdout, /host secret/, `reached the host through ${target}`);
  }
  server.close();
});

test('outbound: the guest resolves names through 10.0.2.3', async () => {
  const r = await vm.exec({ argv: ['nslookup', 'deb.debian.org'], timeoutMs: 20_000 });
  assert.equal(r.exitCode, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /Address:?\s+\d+\.\d+\.\d+\.\d+/);
});

test('stop() lets a connection already accepted finish, refuses new ones, and is idempotent', async () => {
  await serve(['sh', '-c', 'sleep 1; echo late answer | nc -l -p 7171'], 7171);
  const forwarder = await vm.exposeTcp(0, 7171);
  const socket = net.connect(forwarder.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const received = new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once('close', () => resolve(Buffer.concat(chunks).toString()));
  });
  const stopping = forwarder.stop();
  await assert.rejects(
    new Promise((resolve, reject) => {
      const late = net.connect(forwarder.port, '127.0.0.1', () => {
        late.destroy();
        resolve(undefined);
      });
      late.once('error', reject);
    }),
    /ECONNREFUSED/,
  );
  assert.equal(await received, 'late answer\n');
  await stopping;
  await forwarder.stop();
});

test('backpressure: a host client that does not read holds the guest sender back, host memory stays flat', async () => {
  const size = 64 * 1024 * 1024;
  await serve(['sh', '-c', `head -c ${size} /dev/zero | nc -l -p 7272`], 7272);
  const forwarder = await vm.exposeTcp(0, 7272);
  const socket = net.connect(forwarder.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.pause();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const before = process.memoryUsage().rss;
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const growth = process.memoryUsage().rss - before;
  assert.ok(growth < 16 * 1024 * 1024, `host RSS grew ${growth} bytes with a paused reader`);
  let total = 0;
  socket.on('data', (d: Buffer) => {
    total += d.length;
  });
  socket.resume();
  await new Promise((resolve) => socket.once('close', resolve));
  assert.equal(total, size);
  await forwarder.stop();
});
