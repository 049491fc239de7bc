import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildBundles, Bundles, privateHome, runCli, waitFor } from './cli-helpers';
import { isGone, liveProcessesMentioning } from './qemu-proc';
import { homePaths } from '../../engine/paths';
import { reapStaleStateDirs } from '../../engine/vm/state-dir';

/**
 * No QEMU outlives the Node process that started it, even when that process is killed with
 * SIGKILL and gets no chance to clean up; the state directory it leaves behind is reaped by
 * the next Image.build(). A private MICROVM_HOME keeps run/ to this test.
 */
let bundles: Bundles;
let home: string;
const children: ChildProcess[] = [];
/** State directories of the VMs whose owner the tests killed. */
const staleStateDirs: string[] = [];

before(async () => {
  bundles = await buildBundles();
  home = privateHome(['assets', 'images', 'rootfs']);
});

after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  fs.rmSync(bundles.dir, { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
  // The engine may keep run/ outside MICROVM_HOME (on tmpfs); it is private to this home too.
  const runDir = staleStateDirs[0] && path.dirname(staleStateDirs[0]);
  if (runDir && !runDir.startsWith(home)) fs.rmSync(runDir, { recursive: true, force: true });
});

const env = () => ({ ...process.env, MICROVM_HOME: home });

/** Boots one VM with the engine bundle, prints its id, then waits to be killed. */
const OWNER_SCRIPT = `
const { Image } = require(process.argv[1]);
(async () => {
  const image = await Image.build({});
  const pool = image.pool({ min: 1, max: 1 });
  const vm = await pool.acquire();
  process.stdout.write('ready ' + vm.id + '\\n');
  setInterval(() => undefined, 1 << 30);
})().catch((err) => { console.error(err); process.exit(1); });
`;

interface QemuProcess {
  pid: number;
  stateDir: string;
}

/** QEMU processes whose parent is `ppid`, with the state directory their agent socket is in. */
function qemuChildrenOf(ppid: number): QemuProcess[] {
  const found: QemuProcess[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent !== ppid) continue;
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!/qemu-system/.test(argv[0]!)) continue;
      const socket = argv.join(' ').match(/path=([^,\s]+\/agent\.sock)/)?.[1];
      assert.ok(socket, `no agent socket in QEMU's argv: ${argv.join(' ')}`);
      found.push({ pid: Number(entry), stateDir: path.dirname(socket) });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ESRCH')
        throw err;
    }
  }
  return found;
}

/** Kills the owner and checks that every QEMU it started (a pool may hold spares) dies too. */
async function killOwnerAndExpectQemuGone(owner: ChildProcess): Promise<QemuProcess[]> {
  const qemus = qemuChildrenOf(owner.pid as number);
  assert.ok(qemus.length > 0, 'the owner runs a QEMU child');
  for (const qemu of qemus) assert.ok(fs.existsSync(qemu.stateDir), 'the VM has a state directory');
  const started = Date.now();
  owner.kill('SIGKILL');
  for (const qemu of qemus) {
    assert.ok(
      await waitFor(() => isGone(qemu.pid), 5000 - (Date.now() - started)),
      `QEMU ${qemu.pid} still runs 5 s after its owner was SIGKILLed`,
    );
    assert.ok(fs.existsSync(qemu.stateDir), 'a SIGKILLed owner leaves its state directory behind');
    staleStateDirs.push(qemu.stateDir);
  }
  return qemus;
}

function waitForLine(child: ChildProcess, pattern: RegExp, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    let errors = '';
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} within ${ms} ms; stdout: ${text}; stderr: ${errors}`)),
      ms,
    );
    child.stderr?.on('data', (chunk: Buffer) => {
      errors += chunk.toString();
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = pattern.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve(match[0]);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code ?? signal}) before ${pattern}; stdout: ${text}; stderr: ${errors}`));
    });
  });
}

test("QEMU dies within 5 s when the engine's Node process is SIGKILLed", async () => {
  const owner = spawn(process.execPath, ['-e', OWNER_SCRIPT, bundles.engine], {
    env: env(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(owner);
  const ready = await waitForLine(owner, /ready (\w+)\n/, 60_000);
  const qemus = await killOwnerAndExpectQemuGone(owner);
  const id = ready.split(' ')[1]!.trim();
  assert.ok(
    qemus.some((q) => path.basename(q.stateDir) === id),
    'the VM the script acquired was among the QEMUs found',
  );
});

test('QEMU dies within 5 s when `microvm run -- sleep 100` is SIGKILLed', async () => {
  const cli = spawn(process.execPath, [bundles.cli, 'run', '--', 'sh', '-c', 'echo started; sleep 100'], {
    env: env(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(cli);
  await waitForLine(cli, /started\n/, 60_000);
  await killOwnerAndExpectQemuGone(cli);
});

test('the next Image.build() in a fresh process reaps the stale state directories', async () => {
  // The CLI in the test above already reaped the first owner's directories when it built its image.
  assert.ok(staleStateDirs.length >= 2, 'the tests above left state directories');
  assert.ok(
    staleStateDirs.some((dir) => fs.existsSync(dir)),
    'the killed CLI left its state directory behind',
  );
  const build = `require(process.argv[1]).Image.build({}).then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });`;
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['-e', build, bundles.engine], {
      env: env(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('close', (code) => resolve({ code, stderr }));
  });
  assert.equal(result.code, 0, result.stderr);
  for (const dir of staleStateDirs) assert.ok(!fs.existsSync(dir), `${dir} was not reaped`);
});

test("a live owner's state directory is not reaped", async () => {
  const owner = spawn(process.execPath, ['-e', OWNER_SCRIPT, bundles.engine], {
    env: env(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(owner);
  await waitForLine(owner, /ready (\w+)\n/, 60_000);
  const qemu = qemuChildrenOf(owner.pid as number)[0];
  assert.ok(qemu, 'the owner runs a QEMU child');
  const result = await runCli(bundles.cli, ['run', '--', 'true'], { env: { MICROVM_HOME: home } });
  assert.equal(result.code, 0, result.stderr);
  assert.ok(fs.existsSync(qemu.stateDir), 'a VM in use by a live process keeps its state directory');
  assert.ok(!isGone(qemu.pid));
  owner.kill('SIGKILL');
  assert.ok(await waitFor(() => isGone(qemu.pid), 5000));
});

test('an owner that died but was not reaped by its parent (a zombie) counts as dead', async () => {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-zombie-run-'));
  const stateDirModule = path.resolve(__dirname, '..', '..', 'engine', 'vm', 'state-dir.ts');
  try {
    // sh starts the owner in the background, then becomes `sleep`, which never waits for it.
    const parent = spawn(
      'sh',
      [
        '-c',
        '"$0" --import tsx -e "require(process.argv[1]).createStateDir()" "$1" & exec sleep 30',
        process.execPath,
        stateDirModule,
      ],
      {
        env: { ...process.env, MICROVM_RUN_DIR: runDir },
        stdio: 'ignore',
      },
    );
    children.push(parent);
    const ownerFile = () =>
      fs
        .readdirSync(runDir)
        .map((name) => path.join(runDir, name, 'owner.json'))
        .find((file) => fs.existsSync(file));
    assert.ok(await waitFor(() => ownerFile() !== undefined, 30_000), 'the owner made its state directory');
    const stateDir = path.dirname(ownerFile() as string);
    const { pid } = JSON.parse(fs.readFileSync(ownerFile() as string, 'utf8')) as { pid: number };
    const isZombie = () => {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
    };
    assert.ok(await waitFor(isZombie, 30_000), `owner ${pid} is a zombie`);
    const saved = process.env.MICROVM_RUN_DIR;
    process.env.MICROVM_RUN_DIR = runDir;
    try {
      assert.deepEqual(reapStaleStateDirs(), [stateDir]);
    } finally {
      if (saved === undefined) delete process.env.MICROVM_RUN_DIR;
      else process.env.MICROVM_RUN_DIR = saved;
    }
    assert.deepEqual(fs.readdirSync(runDir), []);
    parent.kill('SIGKILL');
  } finally {
    fs.rmSync(runDir, { recursive: true, force: true });
  }
});

/** Boots one VM with a `symlinks: 'follow'` share of argv[2] (virtiofsd behind the filter view), then waits to be killed. */
const FOLLOW_OWNER_SCRIPT = `
const { Image } = require(process.argv[1]);
(async () => {
  const image = await Image.build({ mounts: [{ hostPath: process.argv[2], guestPath: '/w', symlinks: 'follow' }] });
  const vm = await image.pool({ min: 1, max: 1 }).acquire();
  const { stdout } = await vm.exec({ argv: ['ls', '/w'] });
  process.stdout.write('ready ' + stdout.trim() + '\\n');
  setInterval(() => undefined, 1 << 30);
})().catch((err) => { console.error(err); process.exit(1); });
`;

test('no virtiofsd or filter view survives a SIGKILLed owner of a symlinks: follow share', async () => {
  const folder = fs.mkdtempSync(path.join(home, 'follow-'));
  fs.writeFileSync(path.join(folder, 'marker-file'), 'x');
  const owner = spawn(process.execPath, ['-e', FOLLOW_OWNER_SCRIPT, bundles.engine, folder], {
    env: env(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(owner);
  await waitForLine(owner, /ready .*marker-file/, 90_000);
  const helpers = liveProcessesMentioning(folder);
  const programs = new Set(helpers.map((p) => p.program));
  assert.ok(
    programs.has('microvm-fsview') && programs.has('virtiofsd'),
    `the filter view and virtiofsd run for the share: ${JSON.stringify(helpers)}`,
  );
  await killOwnerAndExpectQemuGone(owner);
  assert.ok(
    await waitFor(() => liveProcessesMentioning(folder).length === 0, 5000),
    `still running 5 s after the owner was SIGKILLed: ${JSON.stringify(liveProcessesMentioning(folder))}`,
  );

  // The owner's MICROVM_HOME may never be used again (a deleted temp home): a start of this
  // user with any other home (this process has the real one) reaps the state it left on
  // /dev/shm, guest RAM on tmpfs included.
  const left = stateDirsOf(home);
  assert.equal(left.length, 1, `the killed owner left its state directory: ${left}`);
  assert.notEqual(homePaths.runDir(), path.dirname(left[0]!));
  assert.ok(reapStaleStateDirs().includes(left[0]!), 'reaped by a start with another MICROVM_HOME');
  assert.equal(fs.existsSync(left[0]!), false);
});

/** The VM state directories in the run dir of MICROVM_HOME `dir`. */
function stateDirsOf(dir: string): string[] {
  const saved = process.env.MICROVM_HOME;
  process.env.MICROVM_HOME = dir;
  try {
    const runDir = homePaths.runDir();
    return fs.existsSync(runDir) ? fs.readdirSync(runDir).map((name) => path.join(runDir, name)) : [];
  } finally {
    process.env.MICROVM_HOME = saved;
  }
}

/** Bakes into a private snapshots dir with a warmup that waits, so the test can kill it mid-bake. */
const BAKER_SCRIPT = `
const { Image } = require(process.argv[1]);
Image.build({
  snapshotsDir: process.argv[2],
  warmupTag: String(Date.now()),
  warmup: async (vm) => {
    process.stdout.write('baking\\n');
    await vm.exec({ argv: ['sleep', '60'] });
  },
}).catch((err) => { console.error(err); process.exit(1); });
`;

test('SIGKILL in the middle of a bake leaves no QEMU; a half-written snapshot of a dead writer is reaped at the next bake', async () => {
  const snapshotsDir = fs.mkdtempSync(path.join(home, 'snapshots-'));
  const baker = spawn(process.execPath, ['-e', BAKER_SCRIPT, bundles.engine, snapshotsDir], {
    env: env(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(baker);
  await waitForLine(baker, /baking\n/, 60_000);
  await killOwnerAndExpectQemuGone(baker);

  const deadPid = await new Promise<number>((resolve) => {
    const shortLived = spawn('true');
    shortLived.once('exit', () => resolve(shortLived.pid as number));
  });
  const abandoned = path.join(snapshotsDir, `.tmp-${deadPid}-abcd1234`);
  fs.mkdirSync(abandoned);
  fs.writeFileSync(path.join(abandoned, 'state'), 'half written');
  const bake = `require(process.argv[1]).Image.build({ snapshotsDir: process.argv[2] }).then((i) => { process.stdout.write(i.snapshot.dir + '\\n'); process.exit(0); }, (err) => { console.error(err); process.exit(1); });`;
  const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['-e', bake, bundles.engine, snapshotsDir], {
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  assert.equal(result.code, 0, result.stderr);
  assert.ok(fs.existsSync(path.join(result.stdout.trim(), 'meta.json')), 'the next build baked a complete snapshot');
  assert.ok(!fs.existsSync(abandoned), "the dead writer's temp snapshot was removed");
  assert.deepEqual(
    fs.readdirSync(snapshotsDir).filter((name) => name.startsWith('.tmp-')),
    [],
  );
});
