import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { prepareWorkspace, PreparedWorkspace, Session, SessionEvents } from '../../engine';
import { testPlanSettings } from '../helpers/plan-settings';

/**
 * Issue 16: devcontainer.json's lifecycle and variables as the spec means them, with real VMs
 * (the embedded default image), driven the way the extension drives them but without VS Code:
 * prepareWorkspace, then a Session per open.
 */
const SETTINGS = testPlanSettings();
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-lifecycle-'));
const sessions: Session[] = [];

after(async () => {
  for (const session of sessions) await session.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

function project(name: string, config: unknown, files: Record<string, string> = {}): string {
  const dir = path.join(root, name);
  fs.mkdirSync(path.join(dir, '.devcontainer'), { recursive: true });
  fs.writeFileSync(path.join(dir, '.devcontainer', 'devcontainer.json'), JSON.stringify(config));
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text, { mode: 0o755 });
  }
  fs.chmodSync(dir, 0o755);
  return dir;
}

/** Session events that keep what a user would see: output per label, failures with their retry. */
class Events implements SessionEvents {
  readonly outputs = new Map<string, string>();
  readonly failures: Array<{ description: string; retry: () => Promise<void> }> = [];
  readonly logs: string[] = [];
  log(line: string): void {
    this.logs.push(line);
  }
  baking(): void {}
  booting(): void {}
  portsChanged(): void {}
  exited(error: Error): void {
    this.logs.push(`exited: ${error.message}`);
  }
  hookFailed(description: string, retry: () => Promise<void>): void {
    this.failures.push({ description, retry });
  }
  output(label: string, chunk: Buffer): void {
    this.outputs.set(label, (this.outputs.get(label) ?? '') + chunk.toString());
  }
}

async function open(
  folder: string,
  events = new Events(),
): Promise<{ session: Session; events: Events; prepared: PreparedWorkspace }> {
  const prepared = await prepareWorkspace({
    folder,
    settings: SETTINGS,
    allowLocalEnv: [],
    onConfigChanged: async () => 'apply',
    onOverLimits: async () => true,
  });
  assert.ok(prepared);
  const session = new Session(prepared.plan, events, prepared.lifecycle);
  sessions.push(session);
  await session.start();
  await session.hooksSettled();
  return { session, events, prepared };
}

const read = (folder: string, file: string) =>
  fs.existsSync(path.join(folder, file)) ? fs.readFileSync(path.join(folder, file), 'utf8') : '';

test('postCreateCommand runs once across three opens, postStartCommand and postAttachCommand each time', async () => {
  const folder = project('counters', {
    postCreateCommand: 'echo created >> created.txt',
    postStartCommand: ['sh', '-c', 'echo started >> started.txt'],
    postAttachCommand: 'echo attached >> attached.txt',
    onCreateCommand: '',
    updateContentCommand: [],
  });
  for (let i = 0; i < 3; i++) {
    const { session } = await open(folder);
    await session.stop();
  }
  assert.equal(read(folder, 'created.txt'), 'created\n');
  assert.equal(read(folder, 'started.txt'), 'started\nstarted\nstarted\n');
  assert.equal(read(folder, 'attached.txt'), 'attached\nattached\nattached\n');
});

/** What a command prints in the workspace, as a terminal of it would run it. */
async function inWorkspace(session: Session, script: string): Promise<string> {
  const child = session.spawn(['sh', '-c', script]);
  let out = '';
  for (let chunk = await child.readStdout(); chunk.length > 0; chunk = await child.readStdout())
    out += chunk.toString('utf8');
  await child.wait();
  return out;
}

test('updateContentCommand runs again after a lockfile change only; onCreate and postCreate do not', async () => {
  const folder = project(
    'content',
    {
      onCreateCommand: 'echo created >> oncreate.txt',
      updateContentCommand: 'echo updated >> update.txt',
      postCreateCommand: 'echo post >> post.txt',
    },
    { 'package-lock.json': '{"lockfileVersion": 3}\n' },
  );
  await (await open(folder)).session.stop();
  await (await open(folder)).session.stop();
  assert.equal(read(folder, 'update.txt'), 'updated\n', 'nothing changed: no rerun');
  fs.writeFileSync(path.join(folder, 'package-lock.json'), '{"lockfileVersion": 3, "packages": {"": {}}}\n');
  const { session, events } = await open(folder);
  await session.stop();
  assert.equal(read(folder, 'update.txt'), 'updated\nupdated\n');
  assert.ok(
    events.logs.includes('updateContentCommand runs again: package-lock.json changed since it last succeeded'),
    events.logs.join('\n'),
  );
  await (await open(folder)).session.stop();
  assert.equal(read(folder, 'update.txt'), 'updated\nupdated\n', 'once per change');
  assert.equal(read(folder, 'oncreate.txt'), 'created\n');
  assert.equal(read(folder, 'post.txt'), 'post\n');
});

test('the container outlives its VM: what postCreateCommand installed outside the folder is there at the next open; a new container starts from the image', async () => {
  const config = {
    containerEnv: { FLAVOUR: 'a' },
    postCreateCommand: 'mkdir -p /opt/tool && echo v1 > /opt/tool/version && echo ran >> /opt/created',
  };
  const folder = project('container', config);
  const probe = 'cat /opt/tool/version /opt/created /opt/extra 2>/dev/null; ls -A /tmp | wc -l';
  const first = await open(folder);
  assert.equal(
    await inWorkspace(first.session, 'echo kept > /opt/extra; touch /tmp/scratch; ' + probe),
    'v1\nran\nkept\n1\n',
  );
  assert.ok(
    first.events.logs.some((l) => l.startsWith('a new container from sha256:')),
    first.events.logs.join('\n'),
  );
  await first.session.stop();

  const second = await open(folder);
  assert.equal(
    await inWorkspace(second.session, probe),
    'v1\nran\nkept\n0\n',
    "the root's changes stayed, /tmp did not, postCreateCommand did not run again",
  );
  assert.ok(
    second.events.logs.some((l) => l.startsWith('the container of sha256:')),
    second.events.logs.join('\n'),
  );
  await second.session.stop();

  // What makes the container changed: a new one, from the image alone, and its hooks run once more.
  fs.writeFileSync(
    path.join(folder, '.devcontainer', 'devcontainer.json'),
    JSON.stringify({ ...config, containerEnv: { FLAVOUR: 'b' } }),
  );
  const third = await open(folder);
  assert.equal(await inWorkspace(third.session, probe), 'v1\nran\n0\n');
  await third.session.stop();
});

test("PATH prepended with ${containerEnv:PATH} finds both the workspace's tool and the image's tools", async () => {
  const folder = project(
    'path',
    {
      remoteEnv: {
        PATH: '${containerWorkspaceFolder}/bin:${containerEnv:PATH}',
        GREETING: 'hello from ${localWorkspaceFolderBasename}',
      },
      postStartCommand: 'mytool > path.txt && command -v ls >> path.txt && echo "$GREETING" >> path.txt',
    },
    { 'bin/mytool': '#!/bin/sh\necho mytool ran\n' },
  );
  const { session } = await open(folder);
  await session.stop();
  const lines = read(folder, 'path.txt').split('\n');
  assert.equal(lines[0], 'mytool ran');
  assert.match(lines[1]!, /^\/(usr\/)?(local\/)?s?bin\/ls$/);
  assert.equal(lines[2], 'hello from path');
});

test('the object form runs its entries in parallel; a failing one does not stop the other, and is reported by name', async () => {
  const folder = project('parallel', {
    postStartCommand: {
      slow: 'echo slow-start >> order.txt; sleep 2; echo slow-end >> order.txt',
      failing: 'echo failing-start >> order.txt; sleep 1; echo oops; exit 3',
    },
  });
  const { session, events } = await open(folder);
  await session.stop();
  const order = read(folder, 'order.txt').trim().split('\n');
  assert.deepEqual(order.slice(0, 2).sort(), ['failing-start', 'slow-start'], 'both started before either ended');
  assert.equal(order[2], 'slow-end', 'the failing entry did not stop the other');
  assert.equal(events.failures.length, 1);
  assert.match(events.failures[0]!.description, /^postStartCommand \(failing\) 'echo failing-start.*' exited 3$/);
  assert.match(events.outputs.get('postStartCommand: failing') ?? '', /oops/);
});

test('a failing onCreateCommand leaves a usable VM with its output; Retry runs it and the hooks after it', async () => {
  const folder = project('failing', {
    onCreateCommand: 'test -f fixed || { echo "not fixed yet" >&2; exit 1; }',
    postCreateCommand: 'echo after >> after.txt',
  });
  const { session, events } = await open(folder);
  try {
    assert.equal(events.failures.length, 1);
    assert.match(events.failures[0]!.description, /onCreateCommand 'test -f fixed.*' exited 1/);
    assert.match(events.outputs.get('onCreateCommand') ?? '', /not fixed yet/);
    assert.equal(read(folder, 'after.txt'), '', 'the hooks after the failing one did not run');
    assert.equal(
      (await session.running.exec({ argv: ['echo', 'still here'] })).stdout,
      'still here\n',
      'the VM is usable',
    );
    fs.writeFileSync(path.join(folder, 'fixed'), '');
    await events.failures[0]!.retry();
    assert.equal(read(folder, 'after.txt'), 'after\n');
  } finally {
    await session.stop();
  }
  const again = await open(folder);
  await again.session.stop();
  assert.equal(read(folder, 'after.txt'), 'after\n', 'onCreate and postCreate are recorded once they succeed');
});

test('a docker.sock bind and a ${devcontainerId} volume: the folder opens, with one clear warning', async () => {
  const folder = project('dind', {
    mounts: [
      'source=/var/run/docker.sock,target=/var/run/docker.sock,type=bind',
      'source=cache-${devcontainerId},target=/cache,type=volume',
    ],
    postStartCommand: 'touch /cache/ok && ls /var/run/docker.sock >/dev/null 2>&1; echo $? > sock.txt',
  });
  const { session, prepared } = await open(folder);
  await session.stop();
  const warnings = prepared.problems.filter((p) => p.severity === 'warning');
  assert.equal(warnings.length, 1, JSON.stringify(warnings));
  assert.equal(warnings[0]!.path, '$.mounts[0]');
  assert.match(warnings[0]?.consequence ?? '', /skipped/);
  const cache = prepared.plan.volumes.find((v) => v.mountPoint === '/cache');
  assert.ok(cache?.name.startsWith(`ws-${prepared.record.id}-cache-`), JSON.stringify(prepared.plan.volumes));
  assert.notEqual(read(folder, 'sock.txt').trim(), '0', 'no host docker socket in the guest');
});
