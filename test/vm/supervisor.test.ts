import { after, before, test } from 'node:test';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as net from 'node:net';
import * as path from 'node:path';
import { createMessageConnection, SocketMessageReader, SocketMessageWriter } from 'vscode-jsonrpc/node';
import { buildBundles, Bundles, CliResult, privateHome, runCli, waitFor } from './cli-helpers';
import { isGone, liveProcessesMentioning, qemuPidOf } from './qemu-proc';
import { SupervisorClient } from '../../engine/supervisor/client';
import { supervisorFiles } from '../../engine/supervisor/paths';
import { Requests } from '../../engine/supervisor/protocol';
import { openWorkspace } from '../../engine/workspace/record';
import { exitIfLingering } from '../helpers/lingering';
import { homePaths } from '../../engine/paths';

/**
 * The workspace VM outlives its clients: `microvm up` leaves it to a per-workspace
 * supervisor, `exec` runs through it, a pty's process survives its client leaving and a second
 * client reattaches with the output replayed; two `up`s at once share one VM; a SIGKILLed
 * supervisor takes its QEMU and virtiofsd with it; the VM stops when idle; `rm` takes its disks.
 * A private MICROVM_HOME keeps records, sockets and volumes to this test.
 */
let bundles: Bundles;
let home: string;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-sup-'));
fs.chmodSync(tmp, 0o755);
const previousHome = process.env.MICROVM_HOME;

before(async () => {
  bundles = await buildBundles();
  home = privateHome(['assets', 'images', 'rootfs']);
  // The in-test client reads its paths from the same home as the CLI it talks to.
  process.env.MICROVM_HOME = home;
});

after(async () => {
  // At once, each bounded: a down that hangs must not hold the file to its timeout.
  await Promise.all(
    fs.readdirSync(tmp).map((folder) =>
      runCli(bundles.cli, ['down', '--workspace-folder', path.join(tmp, folder)], {
        env: { MICROVM_HOME: home },
        timeoutMs: 60_000,
      }).catch(() => undefined),
    ),
  );
  // The suspended VMs' RAM sits on /dev/shm, outside the private home.
  fs.rmSync(homePaths.suspended(), { recursive: true, force: true });
  if (previousHome === undefined) delete process.env.MICROVM_HOME;
  else process.env.MICROVM_HOME = previousHome;
  fs.rmSync(bundles.dir, { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
  exitIfLingering('supervisor.test.ts');
});

const cli = (args: string[], input?: string) =>
  runCli(bundles.cli, args, { env: { MICROVM_HOME: home }, ...(input === undefined ? {} : { input }) });

function workspace(name: string, config: Record<string, unknown>): string {
  const folder = path.join(tmp, name);
  fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
  fs.writeFileSync(path.join(folder, '.devcontainer', 'devcontainer.json'), JSON.stringify(config));
  return folder;
}

interface UpOutput {
  outcome: string;
  containerId: string;
  remoteUser: string;
  remoteWorkspaceFolder: string;
}

function upOutput(result: CliResult): UpOutput {
  assert.equal(result.code, 0, `up exited ${result.code}; stderr: ${result.stderr}`);
  const lines = result.stdout.toString().trim().split('\n');
  assert.equal(lines.length, 1, `one JSON line: ${result.stdout.toString()}`);
  const output = JSON.parse(lines[0]!) as UpOutput;
  assert.equal(output.outcome, 'success');
  assert.match(output.containerId, /^[0-9a-f]{12}$/);
  return output;
}

async function listed(): Promise<Array<{ folder: string; id: string; state: string; pid?: number; vmId?: string }>> {
  const result = await cli(['ls', '--json']);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout.toString());
}

/** More than a client may fall behind (MAX_CLIENT_QUEUE_BYTES, 8 MiB, base64 makes it 4/3 larger). */
const FLOOD_BYTES = 12 * 1024 * 1024;

const connect = async (folder: string) =>
  SupervisorClient.connect(folder, { kind: 'extension', start: false, cliPath: bundles.cli });

/** Runs a command line under script(1), so its stdin and stdout are a terminal (stty sets the size); its output. */
function runScript(command: string, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'script',
      ['-qec', `stty rows ${env.LINES} cols ${env.COLUMNS}; ${command}`, '/dev/null'],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout) => {
        if (err) reject(new Error(`${command}: ${err.message}; output: ${stdout}`));
        else resolve(stdout);
      },
    );
  });
}

/** Every live process whose command line names the VM (QEMU and virtiofsd run with its state directory). */
const vmProcesses = (vmId: string) => liveProcessesMentioning(`/${vmId}/`);

test('up, exec, ls; a pty running sleep 1000 survives its client and is reattached with its output replayed; down stops it all', async () => {
  const folder = workspace('app', {
    postCreateCommand: 'echo made >> made.txt',
    remoteEnv: { GREETING: 'hi from ${localWorkspaceFolderBasename}' },
  });
  const up = upOutput(await cli(['up', '--workspace-folder', folder]));
  assert.equal(up.remoteWorkspaceFolder, '/workspaces/app');
  assert.equal(up.remoteUser, 'root');

  const ran = await cli([
    'exec',
    '--workspace-folder',
    folder,
    'sh',
    '-c',
    'cat made.txt; echo "$GREETING"; pwd; echo oops >&2; exit 3',
  ]);
  assert.equal(ran.code, 3, ran.stderr);
  assert.equal(ran.stdout.toString(), 'made\nhi from app\n/workspaces/app\n');
  assert.match(ran.stderr, /oops/);
  const piped = await cli(['exec', '--workspace-folder', folder, '--', 'cat'], 'through stdin\n');
  assert.equal(piped.stdout.toString(), 'through stdin\n', piped.stderr);

  // A signal to the CLI reaches the guest command, whose end is the CLI's exit status.
  const sleeper = spawn(
    process.execPath,
    [bundles.cli, 'exec', '--workspace-folder', folder, 'sh', '-c', 'echo ready; exec sleep 100'],
    { env: { ...process.env, MICROVM_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let sleeperOut = '';
  sleeper.stdout.on('data', (chunk: Buffer) => {
    sleeperOut += chunk.toString();
  });
  assert.ok(await waitFor(() => sleeperOut.includes('ready'), 30_000), 'the exec started');
  sleeper.kill('SIGTERM');
  const [code] = await once(sleeper, 'exit');
  assert.equal(code, 128 + 15, 'SIGTERM ended the guest command: 143');
  // With a terminal on stdin and stdout, exec gets a pty of the terminal's size.
  const tty = await runScript(
    `${process.execPath} ${bundles.cli} exec --workspace-folder ${folder} sh -c 'test -t 0 && stty size'`,
    { MICROVM_HOME: home, COLUMNS: '91', LINES: '33' },
  );
  assert.match(tty, /33 91/, `a pty: ${tty}`);

  const [entry] = (await listed()).filter((w) => w.folder === fs.realpathSync(folder));
  assert.ok(entry, 'ls lists the folder');
  assert.equal(entry.state, 'running');
  assert.equal(entry.vmId, up.containerId);
  assert.ok(entry.pid && !isGone(entry.pid), 'ls names the live supervisor');

  const first = await connect(folder);
  assert.ok(first, 'the supervisor is running');
  assert.equal(first.hello.vmId, up.containerId);
  const terminal = await first.spawn({
    argv: ['sh', '-c', 'echo "started $$"; exec sleep 1000'],
    tty: true,
    size: { rows: 24, cols: 80 },
    persistent: true,
    name: 'sleeper',
  });
  let seen = '';
  terminal.onOutput((_stream, data) => {
    seen += data.toString();
  });
  assert.ok(await waitFor(() => /started \d+/.test(seen), 30_000), `the pty printed its pid: ${JSON.stringify(seen)}`);
  const pid = Number(/started (\d+)/.exec(seen)?.[1]);
  first.close();
  await new Promise((resolve) => setTimeout(resolve, 300));

  const started = performance.now();
  const second = await connect(folder);
  assert.ok(second);
  const [live] = await second.list();
  const { replay } = await second.attach(live!.id);
  const reattachMs = performance.now() - started;
  process.stderr.write(`reattach (connect, hello, list, attach with replay): ${reattachMs.toFixed(1)} ms\n`);
  assert.equal(second.hello.vmId, up.containerId, 'the same VM');
  assert.equal(live!.name, 'sleeper');
  assert.match(replay.toString(), new RegExp(`started ${pid}`), 'the replay shows the output from before the reattach');
  const alive = await cli([
    'exec',
    '--workspace-folder',
    folder,
    'sh',
    '-c',
    `kill -0 ${pid} && cat /proc/${pid}/cmdline | tr '\\0' ' '`,
  ]);
  assert.equal(alive.code, 0, `sleep 1000 is still alive: ${alive.stderr}`);
  assert.match(alive.stdout.toString(), /sleep 1000/);
  assert.ok(
    second.hello.backlog.some((e) => e.type === 'log' && /postCreateCommand exited 0/.test(e.line)),
    'a late client gets the log it missed',
  );

  // A client that stops reading is dropped, and neither the pty nor the other client waits for it.
  const slowSocket = net.connect(supervisorFiles(second.hello.workspaceId).socket);
  const slow = createMessageConnection(new SocketMessageReader(slowSocket), new SocketMessageWriter(slowSocket));
  slow.listen();
  await slow.sendRequest(Requests.hello, { kind: 'extension' });
  const flood = await second.spawn({
    argv: ['sh', '-c', `yes ${'x'.repeat(99)} | head -c ${FLOOD_BYTES}; echo; echo flood-done`],
    tty: true,
    persistent: true,
  });
  let received = 0;
  let tail = '';
  flood.onOutput((_stream, data) => {
    received += data.length;
    tail = (tail + data.toString()).slice(-64);
  });
  await slow.sendRequest(Requests.attach, { id: flood.id });
  slowSocket.pause();
  const slowClosed = new Promise<void>((resolve) => slowSocket.once('close', () => resolve()));
  const floodStarted = performance.now();
  assert.ok(
    await waitFor(() => tail.includes('flood-done'), 300_000),
    `the reading client got all of the output (${received} bytes)`,
  );
  process.stderr.write(
    `pty flood of ${FLOOD_BYTES} bytes through the supervisor: ${((performance.now() - floodStarted) / 1000).toFixed(1)} s\n`,
  );
  assert.ok(received >= FLOOD_BYTES, `${received} bytes`);
  slowSocket.resume();
  await slowClosed;
  assert.match(
    fs.readFileSync(supervisorFiles(second.hello.workspaceId).log, 'utf8'),
    /fell \d+ bytes behind .*dropped/,
  );
  slow.dispose();
  second.close();

  // What lives outside the folder (a process started in /, a file in the guest's /tmp) waits in the suspended VM.
  const kept = await cli([
    'exec',
    '--workspace-folder',
    folder,
    'sh',
    '-c',
    'cd / && sleep 1000 >/dev/null 2>&1 & echo $!; echo in-memory > /tmp/marker',
  ]);
  const keptPid = kept.stdout.toString().trim();
  const qemu = qemuPidOf(up.containerId);
  const down = await cli(['down', '--workspace-folder', folder]);
  assert.equal(down.code, 0, down.stderr);
  assert.ok(await waitFor(() => isGone(qemu), 10_000), 'down stopped QEMU');
  assert.ok(await waitFor(() => isGone(entry?.pid as number), 10_000), 'the supervisor process ended with down');
  const [after] = (await listed()).filter((w) => w.folder === fs.realpathSync(folder));
  assert.equal(after!.state, 'suspended');
  const supervisorLog = fs.readFileSync(supervisorFiles(after!.id).log, 'utf8');
  assert.match(supervisorLog, /warm reopen: suspended VM/);
  assert.match(
    supervisorLog,
    /killed \d+ guest process\(es\) that held the shared folder/,
    'the pty in the folder was ended, and said so',
  );
  assert.ok(!fs.existsSync(supervisorFiles(after!.id).socket), 'the socket went with the supervisor');
  const execStopped = await cli(['exec', '--workspace-folder', folder, 'true']);
  assert.equal(execStopped.code, 125);
  assert.match(execStopped.stderr, /E_SUPERVISOR.*not running.*microvm up/);

  // up again: resumed, not booted; the folder is live and current; what waited in memory is there.
  fs.writeFileSync(path.join(folder, 'made.txt'), 'edited while suspended\n');
  const resumed = upOutput(await cli(['up', '--workspace-folder', folder]));
  assert.match(
    fs.readFileSync(supervisorFiles(after!.id).log, 'utf8'),
    /warm reopen: resumed VM \S+ from its suspended state/,
  );
  const check = await cli([
    'exec',
    '--workspace-folder',
    folder,
    'sh',
    '-c',
    `cat made.txt; cat /tmp/marker; kill -0 ${keptPid} && echo alive`,
  ]);
  assert.equal(check.stdout.toString(), 'edited while suspended\nin-memory\nalive\n', check.stderr);
  assert.ok(resumed.containerId);
  const downAgain = await cli(['down', '--workspace-folder', folder]);
  assert.equal(downAgain.code, 0, downAgain.stderr);
});

test('two ups at once end with one supervisor and one VM; a SIGKILLed supervisor leaves no QEMU, virtiofsd or socket in use, and the next up works and idles out', async () => {
  const folder = workspace('twice', { postStartCommand: 'true' });
  const [a, b] = await Promise.all([
    cli(['up', '--workspace-folder', folder]),
    cli(['up', '--workspace-folder', folder]),
  ]);
  const upA = upOutput(a);
  assert.equal(upOutput(b).containerId, upA.containerId, 'both ups got the same VM');
  const supervisors = liveProcessesMentioning('__supervise').filter((p) =>
    fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').includes(folder),
  );
  assert.equal(supervisors.length, 1, `one supervisor: ${JSON.stringify(supervisors)}`);
  const children = vmProcesses(upA.containerId);
  assert.ok(
    children.some((p) => /qemu-system/.test(p.program)),
    `QEMU runs: ${JSON.stringify(children)}`,
  );
  assert.ok(
    children.some((p) => /virtiofsd|fsjail|fsview/.test(p.program)),
    `the share's server runs: ${JSON.stringify(children)}`,
  );

  process.kill(supervisors[0]!.pid, 'SIGKILL');
  assert.ok(
    await waitFor(() => children.every((p) => isGone(p.pid)), 10_000),
    `no QEMU or virtiofsd outlives the supervisor: ${JSON.stringify(children.filter((p) => !isGone(p.pid)))}`,
  );
  const { socket } = supervisorFiles(openWorkspace(folder).id);
  assert.ok(fs.existsSync(socket), 'SIGKILL left the socket file (the next start replaces it)');

  const again = upOutput(await cli(['up', '--workspace-folder', folder, '--idle-stop-minutes', '0.05']));
  assert.notEqual(again.containerId, upA.containerId, 'a new VM');
  const ran = await cli(['exec', '--workspace-folder', folder, 'echo', 'back']);
  assert.equal(ran.stdout.toString(), 'back\n', ran.stderr);
  const qemu = qemuPidOf(again.containerId);
  // 0.05 min = 3 s with nothing attached.
  assert.ok(await waitFor(() => isGone(qemu) && !fs.existsSync(socket), 30_000), 'the VM stopped after the idle time');
  const [entry] = (await listed()).filter((w) => w.folder === fs.realpathSync(folder));
  assert.equal(entry!.state, 'suspended', 'idle stop suspends');
});

/** The live processes below `pid` (children, their children, ...). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The field after the parenthesised command name, which may itself hold spaces or ')'.
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // the process exited while we looked
    }
  }
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const [child, ppid] of parents)
      if (ppid === parent) {
        found.push(child);
        walk(child);
      }
  };
  walk(pid);
  return found;
}

test('Ctrl-C on the up that started a workspace stops it at the step under way: exit 130, no supervisor, no QEMU', async () => {
  const folder = workspace('interrupted', { onCreateCommand: 'touch hook-started && sleep 600' });
  const child = spawn(process.execPath, [bundles.cli, 'up', '--workspace-folder', folder], {
    env: { ...process.env, MICROVM_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.resume();
  const closed = once(child, 'close') as Promise<[number | null]>;
  try {
    assert.ok(
      await waitFor(() => fs.existsSync(path.join(folder, 'hook-started')), 120_000),
      `the onCreateCommand started; stderr: ${stderr}`,
    );
    const supervisors = liveProcessesMentioning('__supervise').filter((p) =>
      fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').includes(folder),
    );
    assert.equal(supervisors.length, 1, `one supervisor: ${JSON.stringify(supervisors)}`);
    const started = [supervisors[0]!.pid, ...descendants(supervisors[0]!.pid)];
    assert.ok(started.length > 1, 'the supervisor runs the VM');
    child.kill('SIGINT');
    const [code] = await closed;
    assert.equal(code, 130, `exit status 130 for Ctrl-C; stderr: ${stderr}`);
    assert.match(stderr, /interrupted; stopping what was started/);
    assert.ok(
      await waitFor(() => started.every((pid) => isGone(pid)), 15_000),
      `the supervisor, QEMU and the share's server are gone: ${JSON.stringify(started.filter((pid) => !isGone(pid)))}`,
    );
  } finally {
    child.kill('SIGKILL');
  }
});

test('rm refuses a running workspace without --force, then removes its record, volumes and container disk', async () => {
  const folder = workspace('gone', {
    mounts: ['source=data,target=/data,type=volume'],
    postCreateCommand: 'echo kept > /data/f',
  });
  upOutput(await cli(['up', '--workspace-folder', folder]));
  const { id } = openWorkspace(folder);
  const disks = () =>
    fs
      .readdirSync(homePaths.volumes())
      .filter((n) => n.includes(id) && n.endsWith('.ext4'))
      .sort();
  const made = disks();
  assert.ok(
    made.includes(`ws-${id}-data.ext4`) && made.includes(`wsroot-${id}.ext4`),
    `the volume and the container disk exist: ${made.join(', ')}`,
  );

  const refused = await cli(['rm', '--workspace-folder', folder]);
  assert.equal(refused.code, 125);
  assert.match(refused.stderr, /E_WORKSPACE_RUNNING.*running.*--force/);
  assert.deepEqual(disks(), made, 'nothing removed');

  const removed = await cli(['rm', '--workspace-folder', folder, '--force']);
  assert.equal(removed.code, 0, removed.stderr);
  assert.deepEqual(disks(), []);
  assert.ok(!(await listed()).some((w) => w.id === id), 'ls no longer lists it');
  assert.ok(!fs.existsSync(supervisorFiles(id).socket));
});
