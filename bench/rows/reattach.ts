import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_PROTECT, type PlanSettings, SupervisorClient, WarmSnapshots } from '../../engine';
import { buildBundles } from '../../test/vm/cli-helpers';
import { GroupResult } from '../types';

/** The settings `microvm up` opens a folder with (engine/cli/workspace-session.ts), with outbound network. */
const CLI_SETTINGS: PlanSettings = {
  image: '',
  memoryMib: 1024,
  cpus: 2,
  network: 'outbound',
  allowedHosts: [],
  trusted: false,
  symlinks: 'opaque',
  protect: [...DEFAULT_PROTECT],
  git: 'writable',
  trustCertificates: 'auto',
};
const NO_QUESTIONS = { configChanged: async () => 'cancel' as const, overLimits: async () => false };

/**
 * A window reload's reattach to a running workspace VM (connect to its supervisor, hello with
 * the event backlog, list the ptys, attach one with its replay), against opening the same
 * workspace cold (`up`: supervisor start, image lookup, boot, hooks; its suspended state
 * discarded before each) in the same run; and a
 * second client's `up` of the running workspace (connect, hello, up, close: what `microvm up`
 * and the extension do on a reload) against a raw unix-socket connect and round trip on the
 * same host, alternating.
 */
export async function measureReattach(
  sizes: { attaches: number; coldOpens: number },
  log: (line: string) => void,
): Promise<GroupResult> {
  const bundles = await buildBundles();
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-reattach-'));
  fs.mkdirSync(path.join(folder, '.devcontainer'));
  fs.writeFileSync(
    path.join(folder, '.devcontainer', 'devcontainer.json'),
    JSON.stringify({ postStartCommand: 'true' }),
  );
  const connect = (start: boolean) =>
    SupervisorClient.connect(folder, { kind: 'extension', start, cliPath: bundles.cli, idleStopMinutes: 5 });
  const up = {
    settings: CLI_SETTINGS,
    allowLocalEnv: [],
  };
  const attaches: number[] = [];
  const cold: number[] = [];
  const ups: number[] = [];
  const socketTrips: number[] = [];
  const echo = await startEcho();
  let owner: SupervisorClient | undefined;
  try {
    for (let i = 0; i < sizes.coldOpens; i++) {
      const started = performance.now();
      const client = (await connect(true)) as SupervisorClient;
      await client.up({ ...up, waitForHooks: true }, NO_QUESTIONS);
      cold.push(performance.now() - started);
      log(`cold up ${i + 1}/${sizes.coldOpens}: ${cold[i]?.toFixed(0)} ms`);
      if (i < sizes.coldOpens - 1) {
        await client.down();
        // `down` suspends the VM: without its suspended state the next up is a cold one.
        await new WarmSnapshots(folder).discard();
      } else owner = client;
      if (i < sizes.coldOpens - 1) client.close();
    }
    const terminal = await (owner as SupervisorClient).spawn({
      argv: ['sh', '-c', 'seq 1 2000; exec sleep 1000'],
      tty: true,
      persistent: true,
    });
    await new Promise<void>((resolve) =>
      terminal.onOutput((_s, data) => {
        if (data.includes('2000')) resolve();
      }),
    );
    for (let i = 0; i < sizes.attaches; i++) {
      const started = performance.now();
      const client = (await connect(false)) as SupervisorClient;
      const [pty] = await client.list();
      if (!pty) throw new Error('bench: the supervisor lists no terminal to reattach to');
      const { replay } = await client.attach(pty.id);
      attaches.push(performance.now() - started);
      if (replay.length === 0) throw new Error('bench: the reattach replayed nothing');
      client.close();
    }
    for (let i = 0; i < sizes.attaches; i++) {
      const started = performance.now();
      const client = (await connect(false)) as SupervisorClient;
      await client.up({ ...up, waitForHooks: true }, NO_QUESTIONS);
      ups.push(performance.now() - started);
      client.close();
      socketTrips.push(await echo.roundTrip());
    }
    log(`reattach: ${attaches.length} attaches, ${ups.length} ups of the running workspace`);
  } finally {
    echo.close();
    await owner?.down().catch(() => undefined);
    owner?.close();
    fs.rmSync(folder, { recursive: true, force: true });
    fs.rmSync(bundles.dir, { recursive: true, force: true });
  }
  return {
    measurements: [
      {
        ours: {
          name: 'reattach after a window reload (connect, backlog, ptys, replay)',
          unit: 'ms',
          better: 'lower',
          values: attaches,
        },
        baseline: { name: 'cold up of the same workspace', unit: 'ms', better: 'lower', values: cold },
      },
      {
        ours: { name: 'up of the running workspace (connect, hello, up)', unit: 'ms', better: 'lower', values: ups },
        baseline: {
          name: 'raw unix-socket connect + round trip',
          unit: 'ms',
          better: 'lower',
          values: socketTrips,
        },
      },
    ],
    notes: [
      'Reattach: a client of the workspace supervisor (engine/supervisor) connects, gets the event backlog, lists the ptys and attaches one, its ~9 KB of recent output replayed; the VM and the pty keep running throughout. The up row is the `up` of a second client of the running workspace (JSON-RPC over the unix socket of the supervisor), against a connect, a 64-byte write and its echo on a unix socket served by the bench process itself.',
    ],
  };
}

/** A unix-socket echo server in a private temp dir: `roundTrip()` connects, writes 64 bytes, waits for them back, closes. */
async function startEcho(): Promise<{ roundTrip(): Promise<number>; close(): void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-echo-'));
  const socket = path.join(dir, 'echo.sock');
  const server = net.createServer((c) => c.pipe(c));
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  const payload = Buffer.alloc(64, 'x');
  return {
    roundTrip: () =>
      new Promise((resolve, reject) => {
        const started = performance.now();
        let got = 0;
        const c = net.connect(socket, () => c.write(payload));
        c.on('data', (chunk: Buffer) => {
          got += chunk.length;
          if (got >= payload.length) {
            c.destroy();
            resolve(performance.now() - started);
          }
        });
        c.on('error', reject);
      }),
    close: () => {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
