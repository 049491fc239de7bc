import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { Session, Vm } from '../../engine';
import { ProcessMemory, processMemory } from '../smaps';
import { percentile } from '../stats';
import { GroupResult, RowMeasurement, Series } from '../types';
import { CLIENT_JS, startPongServer } from './compose-client';
import { CLIENT_FILE, type ComposeBench, composeBench, openSession, SETTINGS } from './compose-workspace';
import { Sizes } from './sizes';

const run = promisify(execFile);
/** Opened VMs get this long before their memory is read. */
const SETTLE_MS = 3000;
/** Issue 18's target: a round trip app→db at most this many times a host loopback round trip. */
export const COMPOSE_ROUND_TRIP_TARGET = 2;

type Sizing = Sizes['compose'];
type Path = 'app → db (relay)' | 'host → db (raw forward)' | 'host → db (relay)' | 'host loopback' | 'db VM loopback';
const PATHS: Path[] = [
  'app → db (relay)',
  'host → db (raw forward)',
  'host → db (relay)',
  'host loopback',
  'db VM loopback',
];
/** Paths that only take the PING rows: the baseline, and the diagnostic inside the db VM. */
const PING_ONLY: Path[] = ['host loopback', 'db VM loopback'];

/**
 * A two-service compose workspace (app = the workspace VM, db = redis-server in its own VM
 * with a volume and a health check): its cold and warm open against a single-VM workspace of
 * the same app image; PING round trips, connects and SET throughput from the app to db:6379
 * (guest node -> the app VM's slirp -> the host relay's unix socket -> the db VM's agent
 * channel -> redis) against the same client program on the host through the db's forward
 * (no relay, no app VM), through the relay's socket alone, and to a host echo server (and, to show
 * what a guest's node and redis cost under the accelerator, inside the db VM to its own
 * redis); each VM's idle memory against its guest RAM.
 */
export async function measureCompose(sizes: Sizes, log: (line: string) => void): Promise<GroupResult> {
  const bench = await composeBench(log);
  try {
    return await measureIn(bench, sizes.compose, log);
  } finally {
    await bench.close();
  }
}

async function measureIn(bench: ComposeBench, sizing: Sizing, log: (line: string) => void): Promise<GroupResult> {
  const open = {
    composeCold: [] as number[],
    singleCold: [] as number[],
    composeWarm: [] as number[],
    singleWarm: [] as number[],
  };
  const memory: Record<'app' | 'db', ProcessMemory[]> = { app: [], db: [] };
  const timed = async (folder: string, into: number[]): Promise<Session> => {
    const started = performance.now();
    const session = await openSession(folder);
    into.push(performance.now() - started);
    return session;
  };
  let traffic: Traffic | undefined;
  for (let i = 0; i < sizing.opens; i++) {
    const composeFolder = bench.folder('compose');
    const singleFolder = bench.folder('single');
    await (await timed(composeFolder, open.composeCold)).stop();
    await (await timed(singleFolder, open.singleCold)).stop();
    const session = await timed(composeFolder, open.composeWarm);
    try {
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      const db = session.serviceVms.find((v) => v.service === 'db');
      if (!db) throw new Error('bench: the compose session runs no db VM');
      for (const [name, vm] of [
        ['app', session.running],
        ['db', db.vm],
      ] as const) {
        memory[name].push(processMemory(...qemuOf(vm)));
      }
      if (i === sizing.opens - 1) traffic = await measureTraffic(session, composeFolder, sizing, log);
    } finally {
      await session.stop();
    }
    await (await timed(singleFolder, open.singleWarm)).stop();
    log(
      `compose open ${i + 1}/${sizing.opens}: cold ${ms(open.composeCold[i])} (single VM ${ms(open.singleCold[i])}), warm ${ms(open.composeWarm[i])} (single VM ${ms(open.singleWarm[i])})`,
    );
  }
  if (!traffic) throw new Error('bench: compose traffic was not measured');

  const lower = (name: string, values: number[]): Series => ({ name, unit: 'ms', better: 'lower', values });
  const higher = (name: string, values: number[]): Series => ({ name, unit: 'MB/s', better: 'higher', values });
  const kib = (name: string, values: number[]): Series => ({ name, unit: 'KiB', better: 'lower', values });
  const loopback = lower('host loopback round trip (node → node echo)', traffic.ping['host loopback']);
  const connectForward = lower(
    'compose connect + PING host → db (raw forward)',
    traffic.connect['host → db (raw forward)'],
  );
  const setForward = higher('compose SET host → db (raw forward)', traffic.set['host → db (raw forward)']);
  const guestKib = SETTINGS.memoryMib * 1024;
  const guestRam = kib(`guest RAM per compose VM (${SETTINGS.memoryMib} MiB)`, [guestKib]);
  const measurements: RowMeasurement[] = [
    {
      ours: lower('compose open, cold (app + db VMs)', open.composeCold),
      baseline: lower('single-VM open, cold (same app image)', open.singleCold),
    },
    {
      ours: lower('compose open, warm (app + db VMs)', open.composeWarm),
      baseline: lower('single-VM open, warm (same app image)', open.singleWarm),
    },
    { ours: lower('compose round trip app → db (relay)', traffic.ping['app → db (relay)']), baseline: loopback },
    {
      ours: lower('compose round trip host → db (raw forward)', traffic.ping['host → db (raw forward)']),
      baseline: loopback,
    },
    { ours: lower('compose round trip host → db (relay)', traffic.ping['host → db (relay)']), baseline: loopback },
    {
      ours: lower('compose round trip in the db VM (guest node → its redis)', traffic.ping['db VM loopback']),
      baseline: loopback,
    },
    {
      ours: lower('compose connect + PING app → db (relay)', traffic.connect['app → db (relay)']),
      baseline: connectForward,
    },
    {
      ours: lower('compose connect + PING host → db (relay)', traffic.connect['host → db (relay)']),
      baseline: connectForward,
    },
    { ours: higher('compose SET app → db (relay)', traffic.set['app → db (relay)']), baseline: setForward },
    { ours: higher('compose SET host → db (relay)', traffic.set['host → db (relay)']), baseline: setForward },
    ...(['app', 'db'] as const).flatMap((name) => [
      {
        ours: kib(
          `compose idle memory, ${name} VM, USS`,
          memory[name].map((m) => m.uss),
        ),
        baseline: guestRam,
      },
      {
        ours: kib(
          `compose idle memory, ${name} VM, PSS`,
          memory[name].map((m) => m.pss),
        ),
        baseline: guestRam,
      },
    ]),
  ];
  return { measurements, notes: notes(bench, sizing, traffic, memory) };
}

type Samples = Record<Path, number[]>;
interface Traffic {
  ping: Samples;
  connect: Samples;
  set: Samples;
}

const emptySamples = (): Samples => Object.fromEntries(PATHS.map((p) => [p, []])) as unknown as Samples;

/** Every path once per round, in turn; the same client program on each (guest node in the app VM, host node). */
async function measureTraffic(
  session: Session,
  folder: string,
  sizing: Sizing,
  log: (line: string) => void,
): Promise<Traffic> {
  const [forward] = session.serviceForwards;
  const relay = session.serviceLinks.find((l) => l.port === 6379);
  const db = session.serviceVms.find((v) => v.service === 'db')?.vm;
  if (!forward || !relay || !db) throw new Error('bench: the compose session has no db VM, db:6379 forward or relay');
  await db.writeFile(`/tmp/${CLIENT_FILE}`, CLIENT_JS);
  const pong = await startPongServer();
  // [host, port], or [unix socket path, '-'] (the client's convention).
  const targets: Record<Path, [string, number | '-'] | undefined> = {
    'app → db (relay)': undefined,
    'host → db (raw forward)': ['127.0.0.1', Number(forward.localAddr.split(':')[1])],
    'host → db (relay)': [relay.path, '-'],
    'host loopback': ['127.0.0.1', pong.port],
    'db VM loopback': undefined,
  };
  const inGuest: Partial<Record<Path, { vm: typeof db; file: string; host: string }>> = {
    'app → db (relay)': {
      vm: session.running,
      file: `/workspaces/${path.basename(folder)}/${CLIENT_FILE}`,
      host: 'db',
    },
    'db VM loopback': { vm: db, file: `/tmp/${CLIENT_FILE}`, host: '127.0.0.1' },
  };
  const client = async (where: Path, args: Array<string | number>): Promise<number[]> => {
    const target = targets[where];
    let stdout: string;
    if (target) {
      stdout = (
        await run(
          process.execPath,
          [path.join(folder, CLIENT_FILE), String(args[0]), ...target.map(String), ...args.slice(1).map(String)],
          { maxBuffer: 1 << 20 },
        )
      ).stdout;
    } else {
      const guest = inGuest[where] as NonNullable<(typeof inGuest)[Path]>;
      const r = await guest.vm.exec({
        argv: ['node', guest.file, String(args[0]), guest.host, '6379', ...args.slice(1).map(String)],
        timeoutMs: 600_000,
      });
      if (r.exitCode !== 0)
        throw new Error(`bench: the client in the VM (${where}) failed (${r.exitCode}): ${String(r.stderr)}`);
      stdout = String(r.stdout);
    }
    return (JSON.parse(stdout) as { values: number[] }).values;
  };
  const traffic: Traffic = { ping: emptySamples(), connect: emptySamples(), set: emptySamples() };
  try {
    for (let round = 0; round < sizing.rounds; round++) {
      for (const where of PATHS) {
        traffic.ping[where].push(...(await client(where, ['ping', sizing.roundTrips])));
        if (PING_ONLY.includes(where)) continue;
        traffic.connect[where].push(...(await client(where, ['connect', sizing.connects])));
        traffic.set[where].push(...(await client(where, ['set', sizing.sets, sizing.setBytes])));
      }
      log(
        `compose traffic round ${round + 1}/${sizing.rounds}: ${PATHS.map((p) => `${p} ${ms(median(traffic.ping[p]), 3)}`).join(', ')}`,
      );
    }
  } finally {
    await pong.close();
  }
  return traffic;
}

function notes(
  bench: ComposeBench,
  sizing: Sizing,
  traffic: Traffic,
  memory: Record<'app' | 'db', ProcessMemory[]>,
): string[] {
  const p50 = (path: Path, kind: keyof Traffic = 'ping') => median(traffic[kind][path]);
  const app = p50('app → db (relay)');
  const forward = p50('host → db (raw forward)');
  const relay = p50('host → db (relay)');
  const loopback = p50('host loopback');
  const dbLocal = p50('db VM loopback');
  const ratio = app / loopback;
  const verdict = ratio <= COMPOSE_ROUND_TRIP_TARGET ? 'meets' : 'misses';
  const mean = (values: number[]) => Math.round(values.reduce((a, b) => a + b, 0) / values.length);
  const split = (name: 'app' | 'db') => {
    const m = memory[name];
    return (
      `${name} USS ${mean(m.map((r) => r.uss))}, guest RAM touched (private) ${mean(m.map((r) => r.privateBy['guest RAM file pages'] + r.privateBy['guest RAM copied on write']))}, ` +
      `TCG translation cache ${mean(m.map((r) => r.privateBy['TCG translation cache']))}, QEMU heap and other anonymous ${mean(m.map((r) => r.privateBy['QEMU heap and other anonymous']))}, ` +
      `binary and libraries ${mean(m.map((r) => r.privateBy['QEMU binary and libraries']))} KiB`
    );
  };
  return [
    `compose round trip app → db (relay) is ${ratio.toFixed(1)}x a host loopback round trip at p50 (${ms(app, 3)} vs ${ms(loopback, 3)}): it ${verdict} issue 18's ≤ ${COMPOSE_ROUND_TRIP_TARGET}x target. ` +
      `It is ${(app / forward).toFixed(2)}x the same client on the host through the db's raw forward (${ms(forward, 3)}). Where the time goes (p50 differences): ` +
      `the db's forward (agent channel, the db guest's redis under TCG) ${ms(forward - loopback, 3)} over loopback; the relay (unix socket, then the same agent channel, against the forward's TCP listener) ${ms(relay - forward, 3)}; ` +
      `the app VM (guest node, virtio-net, the app QEMU's slirp and network guard) ${ms(app - relay, 3)}. ` +
      `The same client inside the db VM against its own redis over the guest's loopback takes ${ms(dbLocal, 3)} (${(dbLocal / loopback).toFixed(1)}x host loopback): ` +
      (dbLocal / loopback > COMPOSE_ROUND_TRIP_TARGET
        ? "a guest's node and redis alone, with no VM boundary crossed, are already past the target under this accelerator."
        : "the guests' own work is within the target; the VM boundaries are not."),
    `Compose rows: one client program (bench/rows/compose-client.ts) run by node in the app VM against db:6379 and by the host's node against the db's forwardPorts forward, against the relay's unix socket the app's link points at (the relay without the app VM) and against a host echo server answering +PONG in the bench process; ` +
      `${sizing.rounds} rounds, each path in turn, each round ${sizing.roundTrips} PINGs on one connection (after 20 warm-up), ${sizing.connects} connect + PING + close, and ${sizing.sets} SETs of ${sizing.setBytes / 1024 / 1024} MiB timed to +OK (MB = 10^6 bytes).`,
    `Compose open: prepareWorkspace + Session.start until the app VM runs (the db VM booted, its volume, its health check passed, the relays and the db:6379 forward up); cold = the first open of a new folder (new workspace record, volumes made), warm = its second open (volumes kept, no snapshot: both VMs boot afresh, having mounts or volumes). ` +
      `The images' pull and root disks are excluded: Image.build of both took ${ms(bench.imagesMs)} before the opens (a cache hit after the first run on this MICROVM_HOME). The baseline opens a folder whose devcontainer.json names the same node image without compose.`,
    `Compose memory (mean KiB, ${memory.app.length} warm open(s), read ${SETTLE_MS / 1000} s after each): ${split('app')}; ${split('db')}. Both VMs boot fresh with their RAM in a shared file, so every guest page touched since boot is resident and counted (the app VM's virtiofsd maps that file too but touches only its queues' buffers, so the pages stay private to QEMU).`,
  ];
}

function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

function ms(value: number | undefined, digits = 0): string {
  return `${value?.toFixed(digits) ?? '-'} ms`;
}

/** A VM's QEMU pid and the file of its guest RAM (vm.host); a VM restored from a snapshot has no RAM file of its own. */
function qemuOf(vm: Pick<Vm, 'host' | 'id'>): [number, string] {
  const { pid, memoryFile } = vm.host;
  if (pid === undefined || memoryFile === undefined) {
    throw new Error(
      `bench: VM ${vm.id} has no QEMU pid or RAM file of its own (it stopped, or it was restored from a snapshot)`,
    );
  }
  return [pid, memoryFile];
}
