import * as dns from 'node:dns/promises';
import * as path from 'node:path';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { EgressProxy } from '../../engine/egress/proxy';
import { Image } from '../../engine';
import { GroupResult } from '../types';
import { percentile } from '../stats';
import { Sizes } from './sizes';

/**
 * What network `allowlist` costs a guest against `outbound`, both measured from inside a VM in
 * the same run against the same internet server (the targets: connect ≤ 2 ms extra,
 * throughput ≥ 0.8x), and the proxy's own share of it on the host:
 * - guest connect: the time until the guest holds a connection to the server: with allowlist,
 *   TCP to the proxy + CONNECT + its 200 (the proxy connects to the server meanwhile); with
 *   outbound, slirp's TCP connect to the server (slirp answers the guest's SYN once its own
 *   connect succeeded). Timed in the guest's bash (/dev/tcp, $EPOCHREALTIME: no process per sample);
 * - guest download: the same file by the guest's wget, through the proxy and through slirp NAT;
 * - host rows: the proxy alone on loopback (a server under a name the resolver override knows,
 *   as in the tests): TCP connect + CONNECT + its answer + one echoed byte, against TCP connect +
 *   one echoed byte; one tunnel carrying `egressMib` MiB to a discarding server, against a direct
 *   socket. The client and the servers run in a worker thread, the proxy in this one: in use the
 *   proxy has the engine's event loop and the guest's traffic arrives from QEMU, so the proxy
 *   must not share its loop with the load it carries.
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
    const guest = await guestRows(sizes.egressGuestDownloads, sizes.egressGuestConnects, log);
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
        ...(guest
          ? [
              {
                ours: {
                  name: `guest connect, network allowlist (${GUEST_DOWNLOAD.name})`,
                  unit: 'ms' as const,
                  better: 'lower' as const,
                  values: guest.connect.allowlist,
                },
                baseline: {
                  name: 'the same connect, network outbound',
                  unit: 'ms' as const,
                  better: 'lower' as const,
                  values: guest.connect.outbound,
                },
              },
              {
                ours: {
                  name: `guest download, network allowlist (${GUEST_DOWNLOAD.name})`,
                  unit: 'MB/s' as const,
                  better: 'higher' as const,
                  values: guest.download.allowlist,
                },
                baseline: {
                  name: 'the same download, network outbound',
                  unit: 'MB/s' as const,
                  better: 'higher' as const,
                  values: guest.download.outbound,
                },
              },
            ]
          : []),
        {
          ours: { name: 'connect through the egress proxy', unit: 'ms', better: 'lower', values: viaProxy },
          baseline: { name: 'direct connect on loopback', unit: 'ms', better: 'lower', values: direct },
        },
        {
          ours: { name: 'stream through the egress proxy', unit: 'MB/s', better: 'higher', values: proxied },
          baseline: { name: 'direct stream on loopback', unit: 'MB/s', better: 'higher', values: raw },
        },
      ],
      notes: [
        guest
          ? `guest rows (the issue's targets): ${GUEST_DOWNLOAD.url} (${(GUEST_DOWNLOAD.bytes / 1e6).toFixed(1)} MB) fetched by the guest's wget and ${guest.connect.allowlist.length} batches of ${CONNECT_BATCH} connects to ${GUEST_DOWNLOAD.name}:80 timed in the guest (a sample is a batch's mean per connect), alternately from a VM with network allowlist (through the proxy) and one with outbound (slirp NAT), in the same run: ` +
            `a connect takes ${(median(guest.connect.allowlist) - median(guest.connect.outbound)).toFixed(2)} ms more at p50 through the proxy (target ≤ 2 ms: ${median(guest.connect.allowlist) - median(guest.connect.outbound) <= 2 ? 'met' : 'missed'}), ` +
            `and the allowlist VM downloads at ${((100 * median(guest.download.allowlist)) / median(guest.download.outbound)).toFixed(0)}% of the outbound VM's throughput (target ≥ 80%: ${median(guest.download.allowlist) / median(guest.download.outbound) >= 0.8 ? 'met' : 'missed'}). ` +
            'The server is on the internet: its own variance is in both series; the VMs run under the same accelerator as the rest of this run.'
          : `guest rows skipped: ${GUEST_DOWNLOAD.url} is not reachable from this host.`,
        `host rows: the proxy alone adds ${extra.toFixed(2)} ms per connection at p50 and carries ${(ratio * 100).toFixed(0)}% of a direct loopback stream's throughput; both sides of each pair ran on this host in the same run, the client and servers in a worker thread and the proxy on the main event loop, as the engine runs it: the proxy's own share of the guest rows' difference.`,
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
 * Connects and downloads timed in two VMs of the default image, one with network allowlist (the
 * proxy) and one with outbound, alternating; undefined when the host cannot reach the server.
 */
async function guestRows(
  downloads: number,
  batches: number,
  log: (line: string) => void,
): Promise<{ download: PerMode; connect: PerMode } | undefined> {
  const head = await fetch(GUEST_DOWNLOAD.url, { method: 'HEAD', signal: AbortSignal.timeout(10_000) }).catch(
    () => undefined,
  );
  if (!head?.ok) return undefined;
  GUEST_DOWNLOAD.bytes = Number(head.headers.get('content-length') ?? 0);
  // The outbound VM connects to the address the host resolves (the proxy resolves the name itself).
  const address = (await dns.lookup(GUEST_DOWNLOAD.name, { family: 4 })).address;
  const vms = await Promise.all(
    (['allowlist', 'outbound'] as const).map(async (network) => {
      const image = await Image.build({ network, allow: [GUEST_DOWNLOAD.name] });
      const pool = image.pool({ min: 0, max: 1 });
      return { network, pool, vm: await pool.acquire() };
    }),
  );
  const download: PerMode = { allowlist: [], outbound: [] };
  const connect: PerMode = { allowlist: [], outbound: [] };
  try {
    for (let i = 0; i < downloads; i++) {
      for (const { network, vm } of vms) {
        const started = performance.now();
        const r = await vm.exec({ argv: ['wget', '-q', '-O', '/dev/null', GUEST_DOWNLOAD.url], timeoutMs: 300_000 });
        if (r.exitCode !== 0)
          throw new Error(`bench: the ${network} VM could not download ${GUEST_DOWNLOAD.url}: ${r.stderr}`);
        download[network].push(GUEST_DOWNLOAD.bytes / 1e6 / ((performance.now() - started) / 1000));
      }
    }
    // Batches of CONNECT_BATCH per mode, alternating, so that both series see the same server and
    // host load; each sample is a batch's mean (the guest clock under TCG ticks in 4 ms steps).
    for (let i = 0; i < batches; i++) {
      for (const { network, vm } of vms) {
        const script = network === 'allowlist' ? proxyConnects(GUEST_DOWNLOAD.name) : directConnects(address);
        const r = await vm.exec({ argv: ['bash', '-c', script, 'bench', String(CONNECT_BATCH)], timeoutMs: 300_000 });
        if (r.exitCode !== 0) throw new Error(`bench: the ${network} VM's connects failed: ${r.stderr}`);
        connect[network].push(Number(r.stdout.trim()) / 1000 / CONNECT_BATCH);
      }
    }
  } finally {
    for (const { vm, pool } of vms) {
      await vm.release();
      await pool.shutdown();
    }
  }
  log(`egress: ${downloads} guest downloads and ${batches * CONNECT_BATCH} guest connects in each mode`);
  return { download, connect };
}

interface PerMode {
  allowlist: number[];
  outbound: number[];
}

const CONNECT_BATCH = 10;

/** bash in the guest: $1 connects through the proxy to NAME:80, each until the proxy's 200; prints the µs they took. */
function proxyConnects(name: string): string {
  return `t0=$EPOCHREALTIME
for ((i = 0; i < $1; i++)); do
  exec 3<>/dev/tcp/10.0.2.2/3128 || exit 1
  printf 'CONNECT ${name}:80 HTTP/1.1\\r\\nHost: ${name}:80\\r\\n\\r\\n' >&3
  IFS= read -r status <&3
  exec 3>&-
  [[ $status == *' 200 '* ]] || { echo "proxy said: $status" >&2; exit 1; }
done
t1=$EPOCHREALTIME
echo $(( 10#\${t1/./} - 10#\${t0/./} ))`;
}

/** bash in the guest: $1 TCP connects to ADDRESS:80 through slirp; prints the µs they took. */
function directConnects(address: string): string {
  return `t0=$EPOCHREALTIME
for ((i = 0; i < $1; i++)); do
  exec 3<>/dev/tcp/${address}/80 || exit 1
  exec 3>&-
done
t1=$EPOCHREALTIME
echo $(( 10#\${t1/./} - 10#\${t0/./} ))`;
}

function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}
