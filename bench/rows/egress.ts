import * as path from 'node:path';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
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
 * The client and the servers run in a worker thread, the proxy in this one: in use the proxy has
 * the engine's event loop and the guest's traffic arrives from QEMU, so the proxy must not
 * share its loop with the load it carries.
 */
export async function measureEgress(sizes: Sizes, log: (line: string) => void): Promise<GroupResult> {
  const proxy = await EgressProxy.start({ policy: { mode: 'allowlist', allow: ['bench.test'] }, resolveOverride: new Map([['bench.test', '127.0.0.1']]) });
  try {
    // The bench runs under tsx, whose loader a worker does not inherit: the worker registers it first.
    const script = `require('tsx/cjs'); require(${JSON.stringify(path.join(__dirname, 'egress-worker.ts'))});`;
    const worker = new Worker(script, {
      eval: true, workerData: { proxyPort: proxy.port, connects: sizes.egressConnects, streams: sizes.egressStreams, mib: sizes.egressMib },
    });
    const [samples] = await once(worker, 'message') as [EgressSamples];
    await worker.terminate();
    const { viaProxy, direct, proxied, raw } = samples;
    log(`egress: ${viaProxy.length} connects, ${proxied.length} streams of ${sizes.egressMib} MiB`);
    const extra = percentile([...viaProxy].sort((a, b) => a - b), 50) - percentile([...direct].sort((a, b) => a - b), 50);
    const ratio = percentile([...proxied].sort((a, b) => a - b), 50) / percentile([...raw].sort((a, b) => a - b), 50);
    return {
      measurements: [
        { ours: { name: 'connect through the egress proxy', unit: 'ms', better: 'lower', values: viaProxy }, baseline: { name: 'direct connect on loopback', unit: 'ms', better: 'lower', values: direct } },
        { ours: { name: 'stream through the egress proxy', unit: 'MB/s', better: 'higher', values: proxied }, baseline: { name: 'direct stream on loopback', unit: 'MB/s', better: 'higher', values: raw } },
      ],
      notes: [
        `egress rows: the proxy adds ${extra.toFixed(2)} ms per connection at p50 (target ≤ 2 ms: ${extra <= 2 ? 'met' : 'missed'}) and carries ${(ratio * 100).toFixed(0)}% of a direct stream's throughput `
        + `(target ≥ 80%: ${ratio >= 0.8 ? 'met' : 'missed'}); both sides of each pair ran on this host in the same run, the client and servers in a worker thread and the proxy on the main event loop, as the engine runs it. `
        + 'The guest\'s path (slirp, the guard) is the same with or without the proxy and is not in these rows.',
      ],
    };
  } finally {
    await proxy.close();
  }
}

/** What the worker (egress-worker.ts) measured. */
export interface EgressSamples {
  viaProxy: number[];
  direct: number[];
  proxied: number[];
  raw: number[];
}
