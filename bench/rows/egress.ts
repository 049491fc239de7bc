import * as net from 'node:net';
import { once } from 'node:events';
import { EgressProxy } from '../../engine/egress/proxy';
import { GroupResult } from '../types';
import { percentile } from '../stats';
import { Sizes } from './sizes';

/**
 * The egress proxy's own cost, on the host: what a guest connection through it pays beyond
 * the same connection made directly (slirp and the guest's side are the same in both modes, so
 * they are left out). A loopback TCP server stands in for the internet under a name the
 * resolver override knows, as in the tests.
 * - connect: TCP connect + CONNECT + its answer + one echoed byte, against TCP connect + one echoed byte;
 * - throughput: one tunnel carrying `egressMib` MiB to a discarding server, against a direct socket.
 */
export async function measureEgress(sizes: Sizes, log: (line: string) => void): Promise<GroupResult> {
  const echo = net.createServer((s) => s.on('error', () => undefined).pipe(s));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const sink = net.createServer((s) => { s.on('error', () => undefined).resume(); s.on('end', () => s.end()); });
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  const echoPort = (echo.address() as net.AddressInfo).port;
  const sinkPort = (sink.address() as net.AddressInfo).port;
  const proxy = await EgressProxy.start({ policy: { mode: 'allowlist', allow: ['bench.test'] }, resolveOverride: new Map([['bench.test', '127.0.0.1']]) });
  try {
    const viaProxy: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < sizes.egressConnects; i++) {
      direct.push(await timeConnect(() => openDirect(echoPort)));
      viaProxy.push(await timeConnect(() => openTunnel(proxy.port, `bench.test:${echoPort}`)));
    }
    log(`egress connect: ${viaProxy.length} samples`);
    const proxied: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < sizes.egressStreams; i++) {
      raw.push(await throughput(await openDirect(sinkPort), sizes.egressMib));
      proxied.push(await throughput(await openTunnel(proxy.port, `bench.test:${sinkPort}`), sizes.egressMib));
    }
    log(`egress throughput: ${proxied.length} streams of ${sizes.egressMib} MiB`);
    const extra = percentile([...viaProxy].sort((a, b) => a - b), 50) - percentile([...direct].sort((a, b) => a - b), 50);
    const ratio = percentile([...proxied].sort((a, b) => a - b), 50) / percentile([...raw].sort((a, b) => a - b), 50);
    return {
      measurements: [
        { ours: { name: 'connect through the egress proxy', unit: 'ms', better: 'lower', values: viaProxy }, baseline: { name: 'direct connect on loopback', unit: 'ms', better: 'lower', values: direct } },
        { ours: { name: 'stream through the egress proxy', unit: 'MB/s', better: 'higher', values: proxied }, baseline: { name: 'direct stream on loopback', unit: 'MB/s', better: 'higher', values: raw } },
      ],
      notes: [
        `egress rows: the proxy adds ${extra.toFixed(2)} ms per connection at p50 (target ≤ 2 ms: ${extra <= 2 ? 'met' : 'missed'}) and carries ${(ratio * 100).toFixed(0)}% of a direct stream's throughput `
        + `(target ≥ 80%: ${ratio >= 0.8 ? 'met' : 'missed'}); both sides of each pair ran on this host in the same run. The guest's path (slirp, the guard) is the same with or without the proxy and is not in these rows.`,
      ],
    };
  } finally {
    await proxy.close();
    echo.close();
    sink.close();
  }
}

async function openDirect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  return socket;
}

async function openTunnel(proxyPort: number, target: string): Promise<net.Socket> {
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
async function throughput(socket: net.Socket, mib: number): Promise<number> {
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
