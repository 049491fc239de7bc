import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { planWorkspace } from '../../engine/devcontainer/plan';
import { resolveConfig } from '../../engine/devcontainer/resolve';
import { composeOf } from '../../engine/workspace/prepare';
import { waitHealthy } from '../../engine/workspace/services/health';
import { ServiceRelay } from '../../engine/workspace/services/relay';
import { TailLines } from '../../engine/workspace/services/tail-lines';
import { imageConfigOf } from '../../engine/image/oci-layout';
import { mainArgv } from '../../engine/compose/command';
import { testPlanSettings } from '../helpers/plan-settings';
import { coveredHostPaths, hostPathsInside } from '../../engine/mount/view';
import { serviceShare } from '../../engine/workspace/services/start';

const SETTINGS = testPlanSettings({ memoryMib: 1024, cpus: 2, network: 'outbound' });

/** A folder as the Dev Containers templates lay out a compose workspace. */
function folderWith(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-plan-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return fs.realpathSync(dir);
}

function plan(folder: string) {
  const resolved = resolveConfig({ folder, env: {} });
  return planWorkspace(
    resolved,
    SETTINGS,
    { languages: [] },
    undefined,
    composeOf(resolved, { allowLocalEnv: [], env: {} }),
  );
}

const TEMPLATE = {
  '.devcontainer/devcontainer.json': JSON.stringify({
    name: 'app and db',
    dockerComposeFile: 'docker-compose.yml',
    service: 'app',
    workspaceFolder: '/workspaces/${localWorkspaceFolderBasename}',
    forwardPorts: ['db:5432', 3000, 'cache:6379'],
    containerEnv: { FROM_CONFIG: '1', SHARED: 'config' },
  }),
  '.devcontainer/Dockerfile': 'FROM debian:bookworm\n',
  '.devcontainer/docker-compose.yml': [
    'services:',
    '  app:',
    '    build: { context: .., dockerfile: .devcontainer/Dockerfile }',
    '    volumes: ["../..:/workspaces:cached", "cargo:/usr/local/cargo"]',
    '    environment: { PGHOST: db, SHARED: compose }',
    '    command: sleep infinity',
    '    user: vscode',
    '    ports: ["8080:80"]',
    '    depends_on: { db: { condition: service_healthy } }',
    '  db:',
    '    image: postgres:16',
    '    volumes: ["pgdata:/var/lib/postgresql/data"]',
    '    healthcheck: { test: ["CMD", "pg_isready"], interval: 2s, retries: 5 }',
    '  cache:',
    '    image: redis:7',
    '    profiles: [extra]',
    'volumes: { pgdata: {}, cargo: {} }',
  ].join('\n'),
};

test('a compose workspace: the primary service becomes the workspace VM, the others its services, forwardPorts by service', () => {
  const folder = folderWith(TEMPLATE);
  const p = plan(folder);
  assert.deepEqual(
    p.problems.filter((x) => x.severity === 'error'),
    [],
  );
  assert.equal(p.source.kind, 'dockerfile');
  if (p.source.kind === 'dockerfile') {
    assert.equal(p.source.build.context, folder);
    assert.equal(p.source.build.dockerfile, path.join(folder, '.devcontainer/Dockerfile'));
  }
  // `../..:/workspaces` holds the folder: the folder alone is shared where it would appear.
  assert.equal(p.mounts[0]!.hostPath, folder);
  assert.equal(p.mounts[0]!.guestPath, `/workspaces/${path.basename(folder)}`);
  assert.equal(p.mounts[0]!.fileEvents, true);
  assert.deepEqual(
    p.containerEnv,
    { PGHOST: 'db', SHARED: 'config', FROM_CONFIG: '1' },
    'containerEnv wins over the service environment',
  );
  assert.equal(p.containerUser, 'vscode');
  assert.ok(
    p.volumes.some((v) => v.mountPoint === '/usr/local/cargo' && v.name.endsWith('_cargo')),
    JSON.stringify(p.volumes),
  );
  assert.deepEqual(p.ports.publish, [{ hostPort: 8080, guestPort: 80 }]);
  assert.ok(p.ports.forward.includes(3000));
  const compose = p.compose;
  assert.ok(compose);
  assert.equal(compose.primary, 'app');
  assert.deepEqual(
    compose.services.map((s) => s.name),
    ['db'],
    'the profiled service does not start',
  );
  assert.deepEqual(compose.forwards, [{ service: 'db', port: 5432 }]);
  assert.deepEqual(compose.primaryDependsOn, { db: { condition: 'service_healthy', required: true } });
  assert.deepEqual(compose.primaryPorts, [80]);
  assert.equal(compose.primaryMain, undefined, 'overrideCommand defaults to true: the keep-alive replaces the command');
  const cache = p.problems.find((x) => x.code === 'service-port');
  assert.match(cache?.message ?? '', /cache:6379.*does not start/);
});

test('bad compose input fails the plan with every problem at once, each naming its file', () => {
  const missingFile = folderWith({
    '.devcontainer/devcontainer.json': JSON.stringify({ dockerComposeFile: 'nope.yml', service: 'app' }),
  });
  const p1 = plan(missingFile);
  assert.ok(
    p1.problems.some((x) => x.severity === 'error' && x.code === 'compose-file' && x.file?.includes('nope.yml')),
    JSON.stringify(p1.problems),
  );
  assert.equal(p1.compose, undefined);

  const unknown = folderWith({
    ...TEMPLATE,
    '.devcontainer/devcontainer.json': JSON.stringify({ dockerComposeFile: 'docker-compose.yml', service: 'web' }),
  });
  const p2 = plan(unknown);
  assert.ok(
    p2.problems.some((x) => x.severity === 'error' && x.code === 'compose-no-service' && /"web"/.test(x.message)),
    JSON.stringify(p2.problems),
  );

  const noContext = folderWith({
    '.devcontainer/devcontainer.json': JSON.stringify({ dockerComposeFile: 'docker-compose.yml', service: 'app' }),
    '.devcontainer/docker-compose.yml': 'services:\n  app:\n    build: ./missing\n',
  });
  const p3 = plan(noContext);
  assert.ok(
    p3.problems.some((x) => x.severity === 'error' && /missing/.test(x.message)),
    JSON.stringify(p3.problems),
  );

  const yaml = folderWith({
    '.devcontainer/devcontainer.json': JSON.stringify({ dockerComposeFile: 'docker-compose.yml', service: 'app' }),
    '.devcontainer/docker-compose.yml': 'services:\n  app:\n    image: x\n   bad: [\n',
  });
  const p4 = plan(yaml);
  assert.ok(
    p4.problems.some((x) => x.severity === 'error' && /line \d+/.test(`${x.path} ${x.message}`)),
    JSON.stringify(p4.problems),
  );
});

test("overrideCommand false runs the primary service's own command; no bind of the folder still shares it at workspaceFolder", () => {
  const folder = folderWith({
    '.devcontainer/devcontainer.json': JSON.stringify({
      dockerComposeFile: 'docker-compose.yml',
      service: 'app',
      overrideCommand: false,
      workspaceFolder: '/srv/app',
    }),
    '.devcontainer/docker-compose.yml':
      'services:\n  app:\n    image: node:22\n    entrypoint: ["node"]\n    command: ["server.js"]\n    expose: ["9229"]\n',
  });
  const p = plan(folder);
  assert.deepEqual(p.compose?.primaryMain, { entrypoint: ['node'], command: ['server.js'] });
  assert.deepEqual(p.compose?.primaryPorts, [9229]);
  assert.equal(p.mounts[0]!.hostPath, folder);
  assert.equal(p.mounts[0]!.guestPath, '/srv/app');
  assert.ok(p.problems.some((x) => x.code === 'compose-folder-shared'));
  assert.deepEqual(p.source, { kind: 'image', ref: 'node:22' });
});

test("working_dir of the workspace's service: the directory its own command runs in (overrideCommand false); with the keep-alive it is reported unused, terminals start in workspaceFolder", () => {
  const files = (overrideCommand: boolean | undefined) =>
    folderWith({
      '.devcontainer/devcontainer.json': JSON.stringify({
        dockerComposeFile: 'docker-compose.yml',
        service: 'app',
        workspaceFolder: '/workspaces/app',
        ...(overrideCommand === undefined ? {} : { overrideCommand }),
      }),
      '.devcontainer/docker-compose.yml':
        'services:\n  app:\n    image: node:22\n    working_dir: /srv/app\n    command: ["npm", "start"]\n',
    });
  const own = plan(files(false));
  assert.deepEqual(own.compose?.primaryMain, { command: ['npm', 'start'], workingDir: '/srv/app' });
  assert.ok(!own.problems.some((x) => x.code === 'compose-working-dir-unused'));
  const kept = plan(files(undefined));
  assert.equal(kept.compose?.primaryMain, undefined);
  const unused = kept.problems.find((x) => x.code === 'compose-working-dir-unused');
  assert.equal(unused?.severity, 'info');
  assert.match(unused?.message ?? '', /service "app" sets working_dir "\/srv\/app"/);
  assert.match(
    unused?.consequence ?? '',
    /terminals and lifecycle commands start in workspaceFolder \(\/workspaces\/app\)/,
  );
});

test('shutdownAction: the services live as long as the workspace VM; "none" is honoured, stopCompose is reported as not stopping them at the window\'s close', () => {
  const withAction = (shutdownAction?: string) => {
    const config = JSON.parse(TEMPLATE['.devcontainer/devcontainer.json']) as Record<string, unknown>;
    return plan(
      folderWith({
        ...TEMPLATE,
        '.devcontainer/devcontainer.json': JSON.stringify({
          ...config,
          ...(shutdownAction ? { shutdownAction } : {}),
        }),
      }),
    ).problems.filter((x) => x.code === 'compose-shutdown-action');
  };
  assert.deepEqual(withAction(), [], 'nothing to say when the file says nothing');
  const [none] = withAction('none');
  assert.equal(none?.severity, 'info');
  assert.match(none?.consequence ?? '', /^honoured: the services live as long as the workspace VM/);
  assert.match(none?.consequence ?? '', /idleStopMinutes/);
  const [stop] = withAction('stopCompose');
  assert.match(stop?.message ?? '', /"stopCompose"/);
  assert.match(stop?.consequence ?? '', /^not at the window's close: .*the next window finds them running$/);
});

test("a service's main process is combined with its image's as docker does", () => {
  const image = { entrypoint: ['docker-entrypoint.sh'], cmd: ['postgres'] };
  assert.deepEqual(mainArgv({}, image), ['docker-entrypoint.sh', 'postgres'], "the image's own");
  assert.deepEqual(
    mainArgv({ command: ['postgres', '-c', 'fsync=off'] }, image),
    ['docker-entrypoint.sh', 'postgres', '-c', 'fsync=off'],
    "a command keeps the image's entrypoint",
  );
  assert.deepEqual(
    mainArgv({ entrypoint: ['sh', '-c', 'x'] }, image),
    ['sh', '-c', 'x'],
    "an entrypoint drops the image's command",
  );
  assert.deepEqual(mainArgv({ entrypoint: ['tini', '--'], command: ['redis-server'] }, image), [
    'tini',
    '--',
    'redis-server',
  ]);
  assert.deepEqual(mainArgv({ entrypoint: [] }, image), [], 'an empty entrypoint clears both');
  assert.deepEqual(mainArgv({}, { entrypoint: [], cmd: [] }), []);
});

test('a service relay: no socket until its service runs, then each connection is carried by its target; stopping the service removes the socket and cuts them', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-'));
  const relay = ServiceRelay.in(dir, 'db', 5432, 0);
  assert.equal(relay.path, path.join(dir, '0.sock'));
  const talk = (text: string) =>
    new Promise<string>((resolve, reject) => {
      let connected = false;
      const socket = net.connect(relay.path, () => {
        connected = true;
        socket.end(text);
      });
      let got = '';
      socket.on('data', (d) => {
        got += String(d);
      });
      socket.on('close', () => resolve(got));
      // Once connected, a relay that closes may make the write fail (EPIPE): what came back counts.
      socket.on('error', (err) => (connected ? undefined : reject(err)));
    });
  await assert.rejects(talk('early'), /ENOENT/);
  const held: net.Socket[] = [];
  // A stand-in for vm.connectTcp: echoes, and resolves when the connection ends.
  await relay.setTarget(async (socket) => {
    held.push(socket);
    socket.pipe(socket);
    socket.resume();
    await new Promise((resolve) => socket.once('close', resolve));
  });
  assert.equal((fs.statSync(relay.path).mode & 0o777).toString(8), '600');
  assert.equal(await talk('hello'), 'hello');
  assert.equal(relay.carried, 1);
  // A target that refuses (E_FORWARD_LIMIT, a released VM): the connection is closed.
  await relay.setTarget(() => Promise.reject(new Error('refused')));
  assert.equal(await talk('refused'), '');
  const open = new Promise<void>((resolve) => {
    void relay.setTarget(async (socket) => {
      resolve();
      await new Promise((r) => socket.once('close', r));
    });
  });
  const cut = talk('cut');
  await open;
  await relay.setTarget(undefined);
  assert.equal(await cut, '');
  assert.equal(fs.existsSync(relay.path), false);
  await assert.rejects(talk('late'), /ENOENT/);
  await relay.close();
  fs.rmSync(dir, { recursive: true });
});

test('a service relay whose target throws at once (its VM is stopping) closes the connection and the process goes on; a failed listen does not wedge later changes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-'));
  const relay = ServiceRelay.in(dir, 'cache', 6379, 0);
  await relay.setTarget(() => {
    throw new Error('service cache is not running');
  });
  const closed = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(relay.path, () => socket.end('x'));
    let got = '';
    socket.on('data', (d) => (got += String(d)));
    socket.on('close', () => resolve(got));
    socket.on('error', (err) => (/EPIPE|ECONNRESET/.test(err.message) ? undefined : reject(err)));
  });
  assert.equal(closed, '', 'the connection was closed, and no exception escaped');
  await relay.close();
  // A relay whose socket cannot be made (its directory is gone): that change fails, the next ones run.
  const gone = ServiceRelay.in(path.join(dir, 'missing'), 'db', 5432, 1);
  await assert.rejects(
    gone.setTarget(async () => undefined),
    /EACCES|ENOENT/,
  );
  await gone.close();
  assert.equal(gone.listening, false);
  fs.rmSync(dir, { recursive: true });
});

test('health: failures in the start period do not count, retries failures in a row make it unhealthy, one success healthy', async () => {
  // The start period is long beside the 5 ms interval, so that a loaded machine's slow timers
  // cannot end it before the fourth failure (it failed so under load with 40 ms).
  const check = {
    test: ['true'],
    intervalMs: 5,
    timeoutMs: 100,
    retries: 2,
    startPeriodMs: 10_000,
    startIntervalMs: 5,
  };
  let n = 0;
  const healthyAfter = (k: number) => async () => ({ ok: ++n > k, output: `try ${n}` });
  const ok = await waitHealthy(check, healthyAfter(4), () => undefined);
  assert.equal(ok.state, 'healthy');
  n = 0;
  const never = await waitHealthy({ ...check, startPeriodMs: 0 }, healthyAfter(1000), () => undefined);
  assert.deepEqual([never.state, never.checks, never.lastOutput], ['unhealthy', 2, 'try 2']);
  const gone = await waitHealthy(check, healthyAfter(1000), () => 'its main process exited with code 1');
  assert.equal(gone.state, 'unhealthy');
  assert.match(gone.lastOutput, /exited with code 1/);
});

test("a crashed service's last lines: escape sequences shown escaped, long lines cut, only the last ones kept", () => {
  const tail = new TailLines(3);
  tail.push(Buffer.from('one\ntwo\n\x1b[2J\x1b]8;;http://x\x07fake\r\nfour'));
  tail.push(Buffer.from(`\n${'x'.repeat(1000)}`));
  const lines = tail.lines();
  assert.equal(lines.length, 3);
  assert.equal(lines[0], '\\x1b[2J\\x1b]8;;http://x\\x07fake\\x0d');
  assert.equal(lines[1], 'four');
  assert.equal(lines[2]!.length, 400);
});

test("an image's EXPOSE'd TCP ports are read from its config (UDP and nonsense left out), for the ports other services reach", () => {
  const config = imageConfigOf({
    config: { ExposedPorts: { '5432/tcp': {}, '53/udp': {}, '80': {}, 'x/tcp': {}, '70000/tcp': {} } },
  });
  assert.deepEqual(config.exposedPorts, [80, 5432]);
  assert.equal(imageConfigOf({ config: {} }).exposedPorts, undefined);
});

test("a service's bind of the folder keeps the workspace VM's covered folders (node_modules, .venv) read-only; a second bind in the workspace VM covers them too", () => {
  const folder = folderWith({
    '.devcontainer/devcontainer.json': JSON.stringify({
      dockerComposeFile: 'docker-compose.yml',
      service: 'app',
      workspaceFolder: '/workspaces/app',
    }),
    '.devcontainer/docker-compose.yml': [
      'services:',
      '  app:',
      '    image: node:20',
      '    volumes: ["..:/workspaces/app", "..:/mirror"]',
      '  worker:',
      '    image: node:20',
      '    volumes: ["..:/src", "../web:/web"]',
      '',
    ].join('\n'),
    'requirements.txt': '',
    'web/index.html': '',
  });
  const workspace = plan(folder);
  assert.deepEqual(
    workspace.problems.filter((x) => x.severity === 'error'),
    [],
  );
  const share0 = workspace.mounts[0]!;
  assert.ok(workspace.volumes.some((v) => v.mountPoint === `${share0.guestPath}/node_modules`));
  const covered = coveredHostPaths(
    workspace.mounts,
    workspace.volumes.map((v) => v.mountPoint),
  );
  assert.deepEqual(covered, [path.join(folder, 'node_modules')]);
  const second = workspace.mounts.find((m) => m.hostPath === folder && m !== share0);
  assert.ok(second, 'the second bind of the folder');
  assert.deepEqual(hostPathsInside(second, covered), ['node_modules'], 'covered in the second bind too');
  const share = serviceShare(workspace);
  assert.deepEqual(share(folder, '/src', false).protectPaths, ['node_modules']);
  assert.deepEqual(share(path.join(folder, 'web'), '/web', false).protectPaths, []);
});

test('a bind at or inside a protected name (.git, .vscode, .devcontainer, a hooks directory) is shared read-only: the view protects names below a share root only', () => {
  const folder = folderWith({
    '.devcontainer/devcontainer.json': JSON.stringify({
      dockerComposeFile: 'docker-compose.yml',
      service: 'app',
      workspaceFolder: '/workspaces/app',
      mounts: [
        'source=${localWorkspaceFolder}/.vscode,target=/v,type=bind',
        'source=${localWorkspaceFolder}/.githooks,target=/h,type=bind',
        'source=${localWorkspaceFolder}/src,target=/s,type=bind',
      ],
    }),
    '.devcontainer/docker-compose.yml': [
      'services:',
      '  app:',
      '    image: node:20',
      '    volumes: ["..:/workspaces/app", "../.git:/g", "./:/dc"]',
      '  worker:',
      '    image: node:20',
      '    volumes: ["../.git/hooks:/hooks", "../src:/src"]',
      '',
    ].join('\n'),
    '.git/config': '[core]\n\thooksPath = .githooks\n',
    '.git/hooks/pre-commit': '',
    '.vscode/tasks.json': '{}',
    '.githooks/pre-commit': '',
    'src/index.ts': '',
  });
  const workspace = plan(folder);
  const readOnly = Object.fromEntries(workspace.mounts.map((m) => [m.guestPath, m.readOnly]));
  assert.deepEqual(readOnly, {
    '/workspaces/app': false,
    '/g': true,
    '/dc': true,
    '/v': true,
    '/h': true,
    '/s': false,
  });
  assert.ok(workspace.problems.some((p) => p.code === 'mount-protected' && /\.vscode/.test(p.message)));
  const share = serviceShare(workspace);
  assert.equal(share(path.join(folder, '.git', 'hooks'), '/hooks', false).readOnly, true);
  assert.equal(share(path.join(folder, 'src'), '/src', false).readOnly, false);
});
