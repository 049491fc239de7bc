import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { once } from 'node:events';
import {
  attributeConnection,
  AttributionSources,
  describeGuestProcess,
  parseUsernet,
  socketInode,
} from '../../engine/egress/attribution';
import { EgressEvent, EgressProxy } from '../../engine/egress/proxy';
import { describeEgress } from '../../engine/egress/log';
import { EgressLogLine, learnedNames } from '../../engine/workspace/egress-log';

// /proc/net/tcp as Linux prints it: QEMU's socket 127.0.0.1:46390 -> 127.0.0.1:38011 (the proxy), and the proxy's end.
const HOST_TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:947B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 51234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:B536 0100007F:947B 01 00000000:00000000 00:00000000 00000000   107        0 77001 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:947B 0100007F:B536 01 00000000:00000000 00:00000000 00000000     0        0 77002 1 0000000000000000 20 4 30 10 -1
`;

// QEMU 7.2's `info usernet` (libslirp's slirp_connection_info).
const USERNET = `Hub -1 (net0):
  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ
  TCP[ESTABLISHED]   41       10.0.2.15 51514        10.0.2.2  3128     0     0
  TCP[ESTABLISHED]   37       10.0.2.15 51500        10.0.2.2  3128     0     0
  TCP[HOST_FORWARD]  12       127.0.0.1  2222       10.0.2.15    22     0     0
  UDP[236 sec]       29       10.0.2.15 40000        10.0.2.3    53     0     0
`;

test('attribution, pure parts: the host socket by its ports, slirp connections by their fd', () => {
  assert.equal(socketInode(HOST_TCP, 0xb536, 0x947b), 77001, "QEMU's end");
  assert.equal(socketInode(HOST_TCP, 0x947b, 0xb536), 77002, "the proxy's end");
  assert.equal(socketInode(HOST_TCP, 1234, 0x947b), undefined);
  assert.equal(socketInode('', 1, 2), undefined);
  assert.deepEqual(parseUsernet(USERNET), [
    { fd: 41, guestPort: 51514 },
    { fd: 37, guestPort: 51500 },
  ]);
  assert.deepEqual(parseUsernet('garbage\nTCP[x] 1 2 3'), []);
});

function sources(owner: (port: number) => { pid: number; comm: string } | undefined): {
  sources: AttributionSources;
  asked: number[];
} {
  const asked: number[] = [];
  return {
    asked,
    sources: {
      hostTcpTable: () => HOST_TCP,
      qemuSocketFds: () =>
        new Map([
          [37, 99],
          [41, 77001],
        ]),
      usernet: async () => USERNET,
      guestOwner: async (port) => {
        asked.push(port);
        return owner(port);
      },
    },
  };
}

test('attribution: the proxy peer port leads to the guest port and its process; any missing link gives none', async () => {
  const fake = sources((port) => (port === 51514 ? { pid: 312, comm: 'curl' } : undefined));
  assert.deepEqual(await attributeConnection(fake.sources, 0xb536, 0x947b), { pid: 312, comm: 'curl' });
  assert.deepEqual(fake.asked, [51514], 'the guest is asked about the port slirp lists for that fd');
  assert.equal(await attributeConnection(fake.sources, 1111, 0x947b), undefined, 'no host socket');
  const noFd = { ...fake.sources, qemuSocketFds: () => new Map<number, number>() };
  assert.equal(await attributeConnection(noFd, 0xb536, 0x947b), undefined, 'not a socket of QEMU');
  const noEntry = { ...fake.sources, usernet: async () => '' };
  assert.equal(await attributeConnection(noEntry, 0xb536, 0x947b), undefined, 'slirp does not list it');
});

test('the label: guest names are escaped and marked as the guest report', () => {
  assert.equal(describeGuestProcess({ pid: 7, comm: 'node' }), 'node (pid 7, as the guest reports)');
  assert.equal(
    describeGuestProcess({ pid: 8, comm: 'evil\u001b[2J name' }),
    '"evil\\u001b[2J name" (pid 8, as the guest reports)',
  );
  const event: EgressEvent = {
    at: '2026-01-01T00:00:00.000Z',
    name: 'registry.npmjs.org',
    port: 443,
    allowed: true,
    bytesUp: 10,
    bytesDown: 2048,
    process: { pid: 41, comm: 'npm install' },
  };
  assert.equal(
    describeEgress(event),
    'registry.npmjs.org:443 10 B up, 2.0 KiB down by "npm install" (pid 41, as the guest reports)',
  );
  assert.equal(
    describeEgress({ ...event, allowed: false, reason: 'not in the allowlist', process: { pid: 2, comm: 'curl' } }),
    'refused registry.npmjs.org:443 (not in the allowlist) by curl (pid 2, as the guest reports)',
  );
  const line = (name: string, comm?: string): EgressLogLine => ({
    ...event,
    mode: 'learn',
    name,
    ...(comm ? { process: { pid: 1, comm } } : { process: undefined }),
  });
  assert.deepEqual(
    learnedNames([line('a.test', 'node'), line('a.test', 'git'), line('a.test', 'node'), line('b.test')]).map((l) => [
      l.name,
      l.processes,
    ]),
    [
      [
        'a.test',
        [
          { comm: 'node', connections: 2 },
          { comm: 'git', connections: 1 },
        ],
      ],
      ['b.test', []],
    ],
  );
});

test('the proxy names a connection by its attribution: every one in learn, before it connects; in allowlist a refusal, before it is sent', async () => {
  const web = http.createServer((_req, res) => res.end('hello'));
  web.listen(0, '127.0.0.1');
  await once(web, 'listening');
  const webPort = (web.address() as net.AddressInfo).port;
  after(() => web.close());
  for (const mode of ['allowlist', 'learn'] as const) {
    const proxy = await EgressProxy.start({
      policy: { mode, allow: ['allowed.test'] },
      resolveOverride: new Map([['allowed.test', '127.0.0.1']]),
    });
    const events: EgressEvent[] = [];
    proxy.onEvent((e) => events.push(e));
    const peers: number[] = [];
    // A slow answer (as from a busy guest): the refusal still carries it.
    proxy.attributeWith(async (peerPort) => {
      const pid = 1000 + peers.push(peerPort);
      await new Promise((r) => setTimeout(r, 100));
      return { pid, comm: 'curl' };
    });
    try {
      const get = (name: string) =>
        new Promise<number>((resolve, reject) =>
          http
            .get({ host: '127.0.0.1', port: proxy.port, path: `http://${name}:${webPort}/`, agent: false }, (res) => {
              res.resume();
              res.once('end', () => resolve(res.statusCode ?? 0));
            })
            .once('error', reject),
        );
      assert.equal(await get('allowed.test'), 200);
      assert.equal(await get(mode === 'learn' ? '127.0.0.1' : 'other.test'), 403);
      await new Promise((r) => setTimeout(r, 300));
      // learn looks up every connection; allowlist only the refused one.
      assert.equal(peers.length, mode === 'learn' ? 2 : 1, 'one look-up per client connection');
      assert.deepEqual(
        events.map((e) => [e.allowed, e.process?.pid]),
        mode === 'learn'
          ? [
              [true, 1001],
              [false, 1002],
            ]
          : [
              [true, undefined],
              [false, 1001],
            ],
        mode,
      );
    } finally {
      await proxy.close();
    }
  }
});
