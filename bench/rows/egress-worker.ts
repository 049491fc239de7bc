import * as net from 'node:net';
import { once } from 'node:events';
import { parentPort, workerData } from 'node:worker_threads';
import type { EgressSamples } from './egress';

/**
 * The egress rows' load, in a worker thread (see egress.ts): an echo server and a discarding
 * server on loopback, and the client that reaches them directly and through the proxy.
 */
const { proxyPort, connects, streams, mib } = workerData as {
  proxyPort: number;
  connects: number;
  streams: number;
  mib: number;
};

async function main(): Promise<EgressSamples> {
  const echo = net.createServer((s) => s.on('error', () => undefined).pipe(s));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const sink = net.createServer((s) => {
    s.on('error', () => undefined).resume();
    s.on('end', () => s.end());
  });
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  const echoPort = (echo.address() as net.AddressInfo).port;
  const sinkPort = (sink.address() as net.AddressInfo).port;
  const samples: EgressSamples = { viaProxy: [], direct: [], proxied: [], raw: [] };
  for (let i = 0; i < connects; i++) {
    samples.direct.push(await timeConnect(() => openDirect(echoPort)));
    samples.viaProxy.push(await timeConnect(() => openTunnel(`bench.test:${echoPort}`)));
  }
  for (let i = 0; i < streams; i++) {
    samples.raw.push(await throughput(await openDirect(sinkPort)));
    samples.proxied.push(await throughput(await openTunnel(`bench.test:${sinkPort}`)));
  }
  echo.close();
  sink.close();
  return samples;
}

async function openDirect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

async function openTunnel(target: string): Promise<net.Socket> {
  const socket = net.connect(proxyPort, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  let head = '';
  while (!head.includes('\r\n\r\n')) head += ((await once(socket, 'data'))[0] as Buffer).toString('latin1');
  if (!head.startsWith('HTTP/1.1 200')) throw new Error(`bench: the proxy refused ${target}: ${head.split('\r\n')[0]}`);
  return socket;
}

/** ms from the start of the connection to one byte echoed back. */
async function timeConnect(open: () => Promise<net.Socket>): Promise<number> {
  const started = performance.now();
  const socket = await open();
  socket.write('x');
  await once(socket, 'data');
  const ms = performance.now() - started;
  socket.destroy();
  return ms;
}

/** MB/s of `mib` MiB written to a socket until the far side has read it all (it closes after the end). */
async function throughput(socket: net.Socket): Promise<number> {
  const chunk = Buffer.alloc(256 * 1024, 7);
  const started = performance.now();
  for (let sent = 0; sent < mib * 1024 * 1024; sent += chunk.length) {
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
  socket.end();
  socket.resume();
  await once(socket, 'close');
  return (mib * 1024 * 1024) / 1e6 / ((performance.now() - started) / 1000);
}

main().then(
  (samples) => parentPort?.postMessage(samples),
  (err: Error) => {
    throw err;
  },
);
