import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  containerRootVolume,
  openWorkspace,
  PlanSettings,
  prepareWorkspace,
  Session,
  WarmSnapshots,
} from '../../engine';
import { volumeFile } from '../../engine/mount';
import { homePaths } from '../../engine/paths';
import { GuestLines } from '../helpers/guest-lines';
import { watchToolsImageLayout } from '../helpers/host-tools-image';
import { loggingEvents } from '../helpers/session-events';
import { spawn } from 'node:child_process';
import { buildBundles, waitFor } from './cli-helpers';
import { liveProcessesMentioning } from './qemu-proc';
import { testPlanSettings } from '../helpers/plan-settings';

/**
 * Issue 17, warm reopen of mounted workspaces, with real VMs (the embedded default image):
 * a workspace VM is suspended at stop and resumed at the next open (no boot), the folder is
 * attached again and current, the once-only hooks do not run again, an input change boots
 * afresh, and a lockfile change reruns updateContentCommand on the resumed VM. Prints the times of a cold boot and a warm reopen.
 */
const SETTINGS = testPlanSettings();
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-warm-'));
const live: Session[] = [];
const folders: string[] = [];

after(async () => {
  for (const session of live) await session.stop();
  for (const folder of folders) await new WarmSnapshots(folder).discard();
  fs.rmSync(root, { recursive: true, force: true });
});

/** postCreateCommand counts its runs on the container's disk (/var/lib/created) and in the folder. */
function config(extra: Record<string, unknown> = {}): unknown {
  return {
    postCreateCommand:
      'mkdir -p /var/lib && n=$(cat /var/lib/created 2>/dev/null || echo 0); echo $((n + 1)) > /var/lib/created && echo created >> created.txt',
    mounts: ['source=deps,target=${containerWorkspaceFolder}/node_modules,type=volume'],
    ...extra,
  };
}

function project(name: string): string {
  const dir = path.join(root, name);
  fs.mkdirSync(path.join(dir, '.devcontainer'), { recursive: true });
  fs.writeFileSync(path.join(dir, '.devcontainer', 'devcontainer.json'), JSON.stringify(config()));
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'v1\n');
  fs.chmodSync(dir, 0o755);
  folders.push(dir);
  return dir;
}

interface Opened {
  session: Session;
  logs: string[];
  booted: boolean;
  ms: number;
}

async function open(folder: string, settings: PlanSettings = SETTINGS): Promise<Opened> {
  const prepared = await prepareWorkspace({
    folder,
    settings,
    allowLocalEnv: [],
    onConfigChanged: async () => 'apply',
    onOverLimits: async () => true,
  });
  assert.ok(prepared);
  const logs: string[] = [];
  let booted = false;
  const session = new Session(
    prepared.plan,
    {
      ...loggingEvents(logs),
      booting: () => {
        booted = true;
      },
    },
    prepared.lifecycle,
    { warm: new WarmSnapshots(folder) },
  );
  live.push(session);
  const started = Date.now();
  await session.start();
  const ms = Date.now() - started;
  await session.hooksSettled();
  return { session, logs, booted, ms };
}

async function inGuest(session: Session, script: string, logs: string[] = []): Promise<string> {
  const result = await session.running.exec({ argv: ['sh', '-c', script], cwd: session.plan.workspaceFolder });
  assert.equal(result.exitCode, 0, `${script}: ${result.stderr}\n${logs.join('\n')}`);
  return result.stdout;
}

test('a workspace reopens by resuming its suspended VM: no boot, folder current, once-only hooks once; an input change boots afresh', async () => {
  const folder = project('warm');
  const first = await open(folder);
  assert.ok(first.booted, first.logs.join('\n'));
  assert.ok(
    first.logs.some((l) => l.includes('warm reopen: booting afresh')),
    first.logs.join('\n'),
  );
  assert.equal((await inGuest(first.session, 'cat /var/lib/created', first.logs)).trim(), '1');
  await inGuest(first.session, 'echo kept > node_modules/dep.txt');
  // A terminal whose cwd is the folder holds it: suspending kills it, and says so.
  const terminal = first.session.spawn(['sleep', '1000']);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const vmId = first.session.running.id;
  await first.session.stop({ suspend: true });
  assert.ok(
    first.logs.some((l) => /killed 1 guest process\(es\).*sleep/.test(l)),
    first.logs.join('\n'),
  );
  assert.ok(
    first.logs.some((l) => l.includes('warm reopen: suspended VM')),
    first.logs.join('\n'),
  );
  assert.equal((await terminal.wait()).signal, 'SIGKILL');
  assert.deepEqual(
    [...liveProcessesMentioning(vmId), ...liveProcessesMentioning(folder)],
    [],
    'a suspended workspace leaves no QEMU or virtiofsd running',
  );

  fs.writeFileSync(path.join(folder, 'hello.txt'), 'v2 edited while closed\n');
  const times: number[] = [];
  for (let i = 0; i < 2; i++) {
    const again = await open(folder);
    times.push(again.ms);
    console.log(`${again.logs.find((l) => l.includes('warm reopen: resumed VM'))} (Session.start ${again.ms} ms)`);
    assert.equal(again.booted, false, again.logs.join('\n'));
    assert.ok(
      again.logs.some((l) => l.includes('warm reopen: resumed VM')),
      again.logs.join('\n'),
    );
    assert.equal(await inGuest(again.session, 'cat hello.txt'), 'v2 edited while closed\n');
    assert.equal((await inGuest(again.session, 'cat /var/lib/created')).trim(), '1');
    assert.equal(await inGuest(again.session, 'cat node_modules/dep.txt'), 'kept\n');
    await inGuest(again.session, `echo from-guest-${i} > guest-${i}.txt`);
    assert.equal(fs.readFileSync(path.join(folder, `guest-${i}.txt`), 'utf8'), `from-guest-${i}\n`);
    await again.session.stop({ suspend: true });
  }
  assert.equal(fs.readFileSync(path.join(folder, 'created.txt'), 'utf8'), 'created\n');
  assert.deepEqual(liveProcessesMentioning(folder), [], 'no virtiofsd outlives a suspend');

  // A configuration change (a new container environment) is a new container: boot afresh, hooks again.
  fs.writeFileSync(
    path.join(folder, '.devcontainer', 'devcontainer.json'),
    JSON.stringify(config({ containerEnv: { WARM: '1' } })),
  );
  const changed = await open(folder);
  assert.ok(changed.booted, changed.logs.join('\n'));
  assert.ok(
    changed.logs.some((l) => l.includes('warm reopen: booting afresh, since its inputs changed')),
    changed.logs.join('\n'),
  );
  assert.equal(fs.readFileSync(path.join(folder, 'created.txt'), 'utf8'), 'created\ncreated\n');
  await changed.session.stop();
  console.log(
    `warm reopen: cold open ${first.ms} ms (${changed.ms} ms after the change), warm opens ${times.join(', ')} ms`,
  );
});

test('a disk changed while the workspace was suspended discards the suspended VM: it boots afresh and says why', async () => {
  const folder = project('changed-disk');
  const first = await open(folder);
  await first.session.stop({ suspend: true });
  assert.ok(
    first.logs.some((l) => l.includes('warm reopen: suspended VM')),
    first.logs.join('\n'),
  );
  // Another writer (a VM of the same workspace without warm reopen, say) touched the container's disk.
  const disk = volumeFile(containerRootVolume(openWorkspace(folder)));
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(disk, later, later);
  const second = await open(folder);
  assert.ok(second.booted, second.logs.join('\n'));
  assert.ok(
    second.logs.some((l) =>
      l.includes(`warm reopen: booting afresh, since the disk ${disk} changed since it was suspended`),
    ),
    second.logs.join('\n'),
  );
  assert.equal((await inGuest(second.session, 'cat /var/lib/created')).trim(), '1', 'the container and its disk go on');
  await second.session.stop();
  assert.equal(openWorkspace(folder).suspended, undefined, 'a plain stop leaves nothing suspended');
});

/**
 * updateContentCommand counts its runs on the container's disk and "installs" the lockfile
 * into the node_modules volume; postStart and postAttach count theirs.
 */
const COUNTING_HOOKS = {
  updateContentCommand:
    'mkdir -p /var/lib && n=$(cat /var/lib/updated 2>/dev/null || echo 0); echo $((n + 1)) > /var/lib/updated && cp package-lock.json node_modules/installed-lock.json',
  postStartCommand: 'mkdir -p /var/lib && echo started >> /var/lib/started',
  postAttachCommand: 'mkdir -p /var/lib && echo attached >> /var/lib/attached',
};

test('a lockfile changed while the workspace was suspended resumes the VM and reruns updateContentCommand on it, once', async () => {
  const folder = project('lockfile');
  fs.writeFileSync(path.join(folder, '.devcontainer', 'devcontainer.json'), JSON.stringify(config(COUNTING_HOOKS)));
  fs.writeFileSync(path.join(folder, 'package-lock.json'), '{"lockfileVersion": 3}\n');
  const counts = 'cat /var/lib/updated; wc -l < /var/lib/started; wc -l < /var/lib/attached; cat /var/lib/created';
  const rerunNote = 'updateContentCommand runs again: package-lock.json changed since it last succeeded';

  const first = await open(folder);
  assert.ok(first.booted, first.logs.join('\n'));
  assert.equal(await inGuest(first.session, counts, first.logs), '1\n1\n1\n1\n');
  // Only the guest's RAM keeps this (/tmp is a tmpfs): it is there after a resume, gone after a boot.
  await inGuest(first.session, 'echo before-suspend > /tmp/warm-marker');
  await first.session.stop({ suspend: true });

  const lock = '{"lockfileVersion": 3, "packages": {"": {"name": "lockfile"}}}\n';
  fs.writeFileSync(path.join(folder, 'package-lock.json'), lock);
  const changed = await open(folder);
  assert.equal(changed.booted, false, changed.logs.join('\n'));
  assert.ok(
    changed.logs.some((l) => l.includes('warm reopen: resumed VM')),
    changed.logs.join('\n'),
  );
  assert.ok(changed.logs.includes(rerunNote), changed.logs.join('\n'));
  assert.equal(await inGuest(changed.session, 'cat /tmp/warm-marker'), 'before-suspend\n');
  // updateContent ran again (postCreate and postStart did not: the same container, not started again), postAttach did.
  assert.equal(await inGuest(changed.session, counts, changed.logs), '2\n1\n2\n1\n');
  assert.equal(await inGuest(changed.session, 'cat node_modules/installed-lock.json'), lock);
  await changed.session.stop({ suspend: true });

  const unchanged = await open(folder);
  assert.equal(unchanged.booted, false, unchanged.logs.join('\n'));
  assert.ok(!unchanged.logs.includes(rerunNote), unchanged.logs.join('\n'));
  assert.equal(await inGuest(unchanged.session, counts, unchanged.logs), '2\n1\n3\n1\n');
  await unchanged.session.stop();
  console.log(
    `lockfile change: cold open ${first.ms} ms, resumed with updateContentCommand ${changed.ms} ms, resumed ${unchanged.ms} ms`,
  );
});

test('host edits raise inotify events in the guest after a warm resume: the watcher is attached again', async () => {
  const folder = project('events');
  // The default base with inotifywait (and node): a guest file watcher.
  const settings = { ...SETTINGS, image: watchToolsImageLayout() };
  const first = await open(folder, settings);
  await first.session.stop({ suspend: true });
  const again = await open(folder, settings);
  assert.equal(again.booted, false, again.logs.join('\n'));
  const vm = again.session.running;
  const dir = again.session.plan.workspaceFolder;
  // A pty: inotifywait's stdout is then line-buffered.
  const inotify = new GuestLines(
    vm.spawn({ argv: ['inotifywait', '-m', '-q', '-r', '--format', '%e %f', dir], tty: true, timeoutMs: 0 }),
  );
  try {
    await new Promise((resolve) => setTimeout(resolve, 1000)); // inotifywait has no ready line
    const edits: Array<[string, () => void, RegExp]> = [
      ['modify', () => fs.appendFileSync(path.join(folder, 'hello.txt'), 'more\n'), /^MODIFY hello\.txt$/],
      ['create', () => fs.writeFileSync(path.join(folder, 'new.txt'), 'new\n'), /^CREATE new\.txt$/],
      ['delete', () => fs.rmSync(path.join(folder, 'new.txt')), /^DELETE new\.txt$/],
      [
        'editor save',
        () => {
          fs.writeFileSync(path.join(folder, '.hello.txt.swp'), 'saved\n');
          fs.renameSync(path.join(folder, '.hello.txt.swp'), path.join(folder, 'hello.txt'));
        },
        /^(CREATE|MOVED_TO|MODIFY) hello\.txt$/,
      ],
    ];
    for (const [what, edit, event] of edits) {
      const mark = inotify.mark;
      const started = performance.now();
      edit();
      const line = await inotify.waitFor(event, mark, 10_000).catch((err: Error) => {
        throw new Error(`${what}: ${err.message}\n${again.logs.join('\n')}`);
      });
      console.log(`after a warm resume, host ${what} -> guest ${line.text}: ${(line.at - started).toFixed(0)} ms`);
    }
    assert.equal(await inGuest(again.session, 'cat hello.txt'), 'saved\n');
  } finally {
    inotify.child.signal('SIGKILL');
  }
  await again.session.stop();
});

test("a resumed guest that missed the hot-plug notice of its folder's device finds it by a PCI rescan", async () => {
  const folder = project('missed-notice');
  const first = await open(folder);
  // q35 announces PCI hot-plug with ACPI GPE 1 (\\_GPE._E01). A guest job disables it as soon as
  // the suspend has unplugged the folder's device (whose removal needs it), before the state is
  // saved: the resumed guest then never hears of the device plugged back, as now and then a
  // notice that lands while a restored guest settles is lost.
  await inGuest(
    first.session,
    'cd / && setsid sh -c "while ls /sys/bus/virtio/drivers/virtiofs | grep -q virtio; do :; done; ' +
      'echo disable > /sys/firmware/acpi/interrupts/gpe01" </dev/null >/dev/null 2>&1 &',
    first.logs,
  );
  await first.session.stop({ suspend: true });
  fs.writeFileSync(path.join(folder, 'hello.txt'), 'after the rescan\n');
  const again = await open(folder);
  assert.ok(!again.booted, `resumed, not booted afresh:\n${again.logs.join('\n')}`);
  assert.equal(await inGuest(again.session, 'cat hello.txt', again.logs), 'after the rescan\n');
  process.stderr.write(`a resume whose hot-plug notice was lost: ${again.ms} ms\n`);
  await again.session.stop();
});

test('suspended VMs stay within MICROVM_SUSPENDED_MAX_MIB: suspending one drops the oldest other, whose next open boots afresh and says why', async () => {
  const previous = process.env.MICROVM_SUSPENDED_MAX_MIB;
  process.env.MICROVM_SUSPENDED_MAX_MIB = '0';
  try {
    const older = project('budget-older');
    const newer = project('budget-newer');
    const a = await open(older);
    await a.session.stop({ suspend: true });
    const b = await open(newer);
    await b.session.stop({ suspend: true });
    assert.ok(
      b.logs.some((l) =>
        /warm reopen: dropped the suspended VM of workspace \w+ \(\d+ MiB\) to keep suspended VMs within 0 MiB/.test(l),
      ),
      b.logs.join('\n'),
    );
    const again = await open(older);
    assert.ok(again.booted, 'the dropped one boots afresh');
    assert.ok(
      again.logs.some((l) =>
        /warm reopen: booting afresh, since its memory was dropped to keep suspended workspace VMs within 0 MiB/.test(
          l,
        ),
      ),
      again.logs.join('\n'),
    );
    await again.session.stop();
    const resumed = await open(newer);
    assert.ok(!resumed.booted, 'the latest one still resumes');
    await resumed.session.stop();
  } finally {
    if (previous === undefined) delete process.env.MICROVM_SUSPENDED_MAX_MIB;
    else process.env.MICROVM_SUSPENDED_MAX_MIB = previous;
  }
});

/** Resumes a suspended workspace VM with the engine bundle, prints its id, then waits to be killed. */
const OWNER_SCRIPT = `
const path = require('node:path');
const { Image } = require(process.argv[1]);
const folder = process.argv[2], dir = process.argv[3];
(async () => {
  const image = await Image.build({ mounts: [{ hostPath: folder, guestPath: '/workspace' }] });
  const files = { stateFile: path.join(dir, 'state'), memFile: path.join(dir, 'memory') };
  await (await image.workspaceVm()).suspend(files.stateFile, files.memFile);
  const vm = await image.workspaceVm({ kind: 'suspended', ...files });
  process.stdout.write('ready ' + vm.id + '\\n');
  setInterval(() => undefined, 1 << 30);
})().catch((err) => { console.error(err); process.exit(1); });
`;

test('a resumed workspace VM leaves no QEMU or virtiofsd when its owner is SIGKILLed', async () => {
  const bundles = await buildBundles();
  const folder = project('owner-killed');
  // The RAM file moves by rename: the suspended state must sit on the run dir's file system.
  fs.mkdirSync(homePaths.suspended(), { recursive: true, mode: 0o700 });
  const dir = fs.mkdtempSync(path.join(homePaths.suspended(), 'test-'));
  const owner = spawn(process.execPath, ['-e', OWNER_SCRIPT, bundles.engine, folder, dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let out = '';
    let err = '';
    owner.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    owner.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    assert.ok(
      await waitFor(() => /ready \w+\n/.test(out) || owner.exitCode !== null, 120_000),
      'the owner resumed its VM',
    );
    const id = /ready (\w+)\n/.exec(out)?.[1];
    assert.ok(id, `no VM: ${err}`);
    assert.ok(
      liveProcessesMentioning(id).length > 0 && liveProcessesMentioning(folder).length > 0,
      'QEMU and virtiofsd run',
    );
    owner.kill('SIGKILL');
    assert.ok(
      await waitFor(
        () => liveProcessesMentioning(id).length === 0 && liveProcessesMentioning(folder).length === 0,
        5000,
      ),
      `still running 5 s after the owner was SIGKILLed: ${JSON.stringify([...liveProcessesMentioning(id), ...liveProcessesMentioning(folder)])}`,
    );
  } finally {
    if (owner.exitCode === null && owner.signalCode === null) owner.kill('SIGKILL');
    fs.rmSync(bundles.dir, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
