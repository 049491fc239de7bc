import * as path from 'node:path';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { EgressProxy } from '../../engine/egress/proxy';
import { Image } from '../../engine';
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
  const proxy = await EgressProxy.start({
    policy: { mode: 'allowlist', allow: ['bench.test'] },
    resolveOverride: new Map([['bench.test', '127.0.0.1']]),
  });
  try {
    // The bench runs under tsx, whose loader a worker does not inherit: the worker registers it first.
    const script = `require('tsx/cjs'); require(${JSON.stringify(path.join(__dirname, 'egress-worker.ts'))});`;
    const worker = new Worker(script, {
      eval: true,
      workerData: {
        proxyPort: proxy.port,
        connects: sizes.egressConnects,
        streams: sizes.egressStreams,
        mib: sizes.egressMib,
      },
    });
    const [samples] = (await once(worker, 'message')) as [EgressSamples];
    await worker.terminate();
    const { viaProxy, direct, proxied, raw } = samples;
    log(`egress: ${viaProxy.length} connects, ${proxied.length} streams of ${sizes.egressMib} MiB`);
    const guest = await guestDownloads(sizes.egressGuestDownloads, log);
    const extra =
      percentile(
        [...viaProxy].sort((a, b) => a - b),
        50,
      ) -
      percentile(
        [...direct].sort((a, b) => a - b),
        50,
      );
    const ratio =
      percentile(
        [...proxied].sort((a, b) => a - b),
        50,
      ) /
      percentile(
        [...raw].sort((a, b) => a - b),
        50,
      );
    return {
      measurements: [
        {
          ours: { name: 'connect through the egress proxy', unit: 'ms', better: 'lower', values: viaProxy },
          baseline: { name: 'direct connect on loopback', unit: 'ms', better: 'lower', values: direct },
        },
        {
          ours: { name: 'stream through the egress proxy', unit: 'MB/s', better: 'higher', values: proxied },
          baseline: { name: 'direct stream on loopback', unit: 'MB/s', better: 'higher', values: raw },
        },
        ...(guest
          ? [
              {
                ours: {
                  name: `guest download, network allowlist (${GUEST_DOWNLOAD.name})`,
                  unit: 'MB/s' as const,
                  better: 'higher' as const,
                  values: guest.allowlist,
                },
                baseline: {
                  name: 'the same download, network outbound',
                  unit: 'MB/s' as const,
                  better: 'higher' as const,
                  values: guest.outbound,
                },
              },
            ]
          : []),
      ],
      notes: [
        `egress rows: the proxy adds ${extra.toFixed(2)} ms per connection at p50 (target ≤ 2 ms: ${extra <= 2 ? 'met' : 'missed'}) and carries ${(ratio * 100).toFixed(0)}% of a direct stream's throughput ` +
          `(target ≥ 80%: ${ratio >= 0.8 ? 'met' : 'missed'}); both sides of each pair ran on this host in the same run, the client and servers in a worker thread and the proxy on the main event loop, as the engine runs it. ` +
          "The guest's path (slirp, the guard) is the same with or without the proxy and is not in these rows.",
        guest
          ? `guest download rows: ${GUEST_DOWNLOAD.url} (${(GUEST_DOWNLOAD.bytes / 1e6).toFixed(1)} MB) fetched by the guest's wget, alternately from a VM with network allowlist (through the proxy) and one with outbound (slirp NAT), in the same run: ` +
            `the allowlist VM gets ${((100 * median(guest.allowlist)) / median(guest.outbound)).toFixed(0)}% of the outbound VM's throughput (target ≥ 80%: ${median(guest.allowlist) / median(guest.outbound) >= 0.8 ? 'met' : 'missed'}). The server is on the internet: its own variance is in both series.`
          : `guest download rows skipped: ${GUEST_DOWNLOAD.url} is not reachable from this host.`,
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

/** A file every Debian mirror serves over plain HTTP, a few MB: the guest rows' download. */
const GUEST_DOWNLOAD = {
  name: 'deb.debian.org',
  url: 'http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/Packages.xz',
  bytes: 0,
};

/**
 * The same download from two VMs of the default image, one with network allowlist (the proxy)
 * and one with outbound, alternating; undefined when the host cannot reach the server.
 */
async function guestDownloads(
  count: number,
  log: (line: string) => void,
): Promise<{ allowlist: number[]; outbound: number[] } | undefined> {
  const head = await fetch(GUEST_DOWNLOAD.url, { method: 'HEAD', signal: AbortSignal.timeout(10_000) }).catch(
    () => undefined,
  );
  if (!head?.ok) return undefined;
  GUEST_DOWNLOAD.bytes = Number(head.headers.get('content-length') ?? 0);
  const vms = await Promise.all(
    (['allowlist', 'outbound'] as const).map(async (network) => {
      const image = await Image.build({ network, allow: [GUEST_DOWNLOAD.name] });
      const pool = image.pool({ min: 0, max: 1 });
      return { network, pool, vm: await pool.acquire() };
    }),
  );
  const out = { allowlist: [] as number[], outbound: [] as number[] };
  try {
    for (let i = 0; i < count; i++) {
      for (const { network, vm } of vms) {
        const started = performance.now();
        const r = await vm.exec({ argv: ['wget', '-q', '-O', '/dev/null', GUEST_DOWNLOAD.url], timeoutMs: 300_000 });
        if (r.exitCode !== 0)
          throw new Error(`bench: the ${network} VM could not download ${GUEST_DOWNLOAD.url}: ${r.stderr}`);
        out[network].push(GUEST_DOWNLOAD.bytes / 1e6 / ((performance.now() - started) / 1000));
      }
    }
  } finally {
    for (const { vm, pool } of vms) {
      await vm.release();
      await pool.shutdown();
    }
  }
  log(`egress: ${count} guest downloads in each mode`);
  return out;
}

function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}
