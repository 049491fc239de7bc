import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { devcontainerId, substitute, VariableContext } from '../../engine/devcontainer/variables';
import { parseMount, splitFields } from '../../engine/devcontainer/mounts';
import { toLifecycleCommand } from '../../engine/devcontainer/lifecycle';
import {
  attributesFor,
  autoForwardAction,
  isDeclared,
  parseAppPort,
  parseForwardPort,
} from '../../engine/devcontainer/ports';
import { planWorkspace, recommendedExtensions, resolveConfig, resolveContainerEnv } from '../../engine/devcontainer';
import { detectLanguages } from '../../engine/devcontainer/language';
import { testPlanSettings } from '../helpers/plan-settings';

const ctx = (over: Partial<VariableContext> = {}): VariableContext => ({
  localWorkspaceFolder: '/home/u/my-app',
  containerWorkspaceFolder: '/workspaces/my-app',
  devcontainerId: 'ID',
  localEnv: { HOME: '/home/u', GITHUB_TOKEN: 'secret', EMPTY: '' },
  allowLocalEnv: new Set(['HOME', 'EMPTY']),
  ...over,
});

test('variables: every name of the spec, defaults, unknown names kept, keys untouched', () => {
  const input = {
    a: '${localWorkspaceFolder}|${localWorkspaceFolderBasename}|${containerWorkspaceFolder}|${containerWorkspaceFolderBasename}|${devcontainerId}',
    b: [
      '${localEnv:HOME}',
      '${env:HOME}',
      '${localEnv:MISSING:fallback}',
      '${localEnv:MISSING}',
      '${localEnv:EMPTY:x}',
    ],
    c: '${workspaceFolder} ${unknown:x} ${containerEnv:PATH}',
    '${localEnv:HOME}': 1,
    n: 5,
  };
  const out = substitute(input, ctx());
  assert.equal(out.a, '/home/u/my-app|my-app|/workspaces/my-app|my-app|ID');
  assert.deepEqual(out.b, ['/home/u', '/home/u', 'fallback', '', '']);
  assert.equal(
    out.c,
    '${workspaceFolder} ${unknown:x} ${containerEnv:PATH}',
    'names of later passes and unknown names stay as written',
  );
  assert.ok('${localEnv:HOME}' in out, 'object keys are not substituted');
  assert.equal(out.n, 5);
  assert.equal(
    substitute('${localEnv:URL:http://x}', ctx()),
    'http',
    'a default cannot hold a colon, as in the reference CLI',
  );
});

test('variables: a host variable the user did not allow resolves to its default or nothing, and is reported', () => {
  const refused: Array<{ name: string; path: Array<string | number> }> = [];
  const out = substitute(
    { containerEnv: { TOKEN: '${localEnv:GITHUB_TOKEN}', T2: '${localEnv:GITHUB_TOKEN:none}' } },
    ctx(),
    refused,
  );
  assert.deepEqual(out, { containerEnv: { TOKEN: '', T2: 'none' } });
  assert.deepEqual(
    refused.map((r) => r.path),
    [
      ['containerEnv', 'TOKEN'],
      ['containerEnv', 'T2'],
    ],
  );
  assert.equal(substitute('${localEnv:GITHUB_TOKEN}', ctx({ allowLocalEnv: new Set(['GITHUB_TOKEN']) })), 'secret');
});

test("variables: ${containerEnv} in the third pass; ${devcontainerId} is the reference CLI's", () => {
  assert.equal(
    substitute('${containerEnv:PATH}:/x', ctx({ containerEnv: { PATH: '/usr/bin:/bin' } })),
    '/usr/bin:/bin:/x',
  );
  assert.equal(substitute('${containerEnv:NOPE:/d}', ctx({ containerEnv: {} })), '/d');
  const id = devcontainerId('/p', '/p/.devcontainer/devcontainer.json');
  assert.match(id, /^[0-9a-v]{52}$/);
  assert.equal(id, devcontainerId('/p', '/p/.devcontainer/devcontainer.json'), 'stable');
  assert.notEqual(id, devcontainerId('/q', '/q/.devcontainer/devcontainer.json'));
});

test("mount strings in Docker's --mount syntax and the object form", () => {
  assert.deepEqual(splitFields('type=bind,"source=/a,b",target=/t'), ['type=bind', 'source=/a,b', 'target=/t']);
  assert.deepEqual(parseMount('source=cache,target=/cache'), {
    type: 'volume',
    source: 'cache',
    target: '/cache',
    readOnly: false,
    ignored: [],
  });
  assert.deepEqual(parseMount('type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock,consistency=cached'), {
    type: 'bind',
    source: '/var/run/docker.sock',
    target: '/var/run/docker.sock',
    readOnly: false,
    ignored: ['consistency'],
  });
  assert.deepEqual(parseMount('type=tmpfs,destination=/scratch,tmpfs-size=64m'), {
    type: 'tmpfs',
    target: '/scratch',
    readOnly: false,
    sizeMib: 64,
    ignored: [],
  });
  assert.deepEqual(parseMount('type=volume,target=/anon,readonly'), {
    type: 'volume',
    target: '/anon',
    readOnly: true,
    ignored: [],
  });
  assert.deepEqual(parseMount({ type: 'bind', source: './data', target: '/data', readonly: true }), {
    type: 'bind',
    source: './data',
    target: '/data',
    readOnly: true,
    ignored: [],
  });
  assert.match((parseMount('source=x') as { error: string }).error, /no target/);
  assert.match((parseMount('type=npipe,source=x,target=/x') as { error: string }).error, /not bind, volume or tmpfs/);
  assert.match((parseMount('source=x,target=/x,bogus=1') as { error: string }).error, /unknown mount option "bogus"/);
});

test('lifecycle forms: shell string, exec array, parallel object; empty ones are no-ops', () => {
  assert.deepEqual(toLifecycleCommand('npm ci'), { kind: 'single', command: { kind: 'shell', script: 'npm ci' } });
  assert.deepEqual(toLifecycleCommand(['npm', 'ci']), {
    kind: 'single',
    command: { kind: 'exec', argv: ['npm', 'ci'] },
  });
  assert.deepEqual(toLifecycleCommand({ server: 'npm start', db: ['make', 'db'], nothing: '' }), {
    kind: 'parallel',
    entries: [
      { name: 'server', command: { kind: 'shell', script: 'npm start' } },
      { name: 'db', command: { kind: 'exec', argv: ['make', 'db'] } },
    ],
  });
  for (const empty of ['', '  ', [], {}]) assert.equal(toLifecycleCommand(empty), undefined);
  assert.throws(() => toLifecycleCommand(5), /expected a command string/);
});

test('ports: forwardPorts forms, appPort, attributes by port, range, process pattern and otherPortsAttributes', () => {
  assert.deepEqual(parseForwardPort(3000), { port: 3000 });
  assert.deepEqual(parseForwardPort('localhost:8080'), { port: 8080 });
  assert.deepEqual(parseForwardPort('db:5432'), { service: 'db', port: 5432 });
  assert.deepEqual(parseForwardPort('postgres_db:5432'), { service: 'postgres_db', port: 5432 });
  assert.deepEqual(parseForwardPort('api.v2:8080'), { service: 'api.v2', port: 8080 });
  assert.deepEqual(parseForwardPort('127.0.0.1:8080'), { port: 8080 });
  assert.equal(parseForwardPort('3000'), undefined, 'a port is a number');
  assert.equal(parseForwardPort('_db:5432'), undefined);
  assert.equal(parseForwardPort(70000), undefined);
  assert.deepEqual(parseAppPort([3000, '8000:8010']), [
    { hostPort: 3000, guestPort: 3000 },
    { hostPort: 8000, guestPort: 8010 },
  ]);
  const ports = {
    forward: [9229],
    attributes: { 3000: { label: 'web' }, '4000-4010': { label: 'range' }, '.+\\/server\\.js': { label: 'node' } },
    otherAttributes: { onAutoForward: 'silent' as const },
  };
  assert.equal(attributesFor(3000, ports).label, 'web');
  assert.equal(attributesFor(4005, ports).label, 'range');
  assert.equal(attributesFor(5000, ports, 'node /app/server.js').label, 'node');
  assert.deepEqual(attributesFor(5000, ports), { onAutoForward: 'silent' });
  assert.ok(isDeclared(9229, ports) && isDeclared(4010, ports) && !isDeclared(5000, ports));
  const overlap = { attributes: { '9000-9010': { onAutoForward: 'ignore' as const }, 9005: { label: 'exact wins' } } };
  assert.equal(attributesFor(9005, overlap).label, 'exact wins');
  assert.equal(autoForwardAction(9002, overlap), 'ignore');
  assert.equal(autoForwardAction(9005, overlap), 'notify', 'notify is the default');
});

const SETTINGS = testPlanSettings({ memoryMib: 1024, cpus: 2, network: 'outbound' });

function folderWith(config: unknown, files: Record<string, string> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-spec-'));
  fs.mkdirSync(path.join(dir, '.devcontainer'));
  fs.writeFileSync(
    path.join(dir, '.devcontainer', 'devcontainer.json'),
    typeof config === 'string' ? config : JSON.stringify(config),
  );
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return fs.realpathSync(dir);
}

test('every problem at once, each with its path, its value and what happens instead; the rest of the file is used', () => {
  const dir = folderWith({
    image: 'node:20',
    forwardPorts: [3000, 'nope', 70000, '8080'],
    containerEnv: { A: 1, B: { x: 1 } },
    remoteUser: true,
    postCreateCommand: 42,
    hostRequirements: { memory: 'lots' },
    typo: true,
    customizations: { vscode: { extensions: ['a.b'] } },
    initializeCommand: 'rm -rf ~',
    secrets: { OPENAI_API_KEY: { description: 'for the samples' } },
  });
  const resolved = resolveConfig({ folder: dir, env: {} });
  const bySeverity = (s: string) => resolved.problems.filter((p) => p.severity === s).map((p) => p.path);
  assert.deepEqual(bySeverity('error'), []);
  assert.deepEqual(
    bySeverity('warning').sort(),
    [
      '$.containerEnv.B',
      '$.forwardPorts[1]',
      '$.forwardPorts[2]',
      '$.forwardPorts[3]',
      '$.hostRequirements.memory',
      '$.initializeCommand',
      '$.postCreateCommand',
      '$.remoteUser',
      '$.typo',
    ].sort(),
  );
  assert.deepEqual(bySeverity('info'), ['$.customizations', '$.secrets']);
  assert.match(
    resolved.problems.find((p) => p.code === 'secrets')?.message ?? '',
    /^secrets OPENAI_API_KEY are ones a hosting service \(Codespaces\) asks the user for$/,
  );
  const ports = resolved.problems.find((p) => p.path === '$.forwardPorts[1]');
  assert.match(ports?.message ?? '', /got "nope"/);
  assert.equal(ports?.consequence, 'this entry is ignored');
  assert.equal(
    resolved.problems.find((p) => p.path === '$.forwardPorts[3]')?.consequence,
    'this entry is ignored; write the port as a number: 8080',
  );
  assert.deepEqual(resolved.config.ports.forward, [3000]);
  assert.match(
    resolved.problems.find((p) => p.path === '$.initializeCommand')?.message ?? '',
    /^initializeCommand "rm -rf ~" runs on the host in other tools$/,
    'the command is quoted: what it would have made is missing here',
  );
  assert.deepEqual(resolved.config.containerEnv, { A: '1' });
  assert.equal(resolved.config.image, 'node:20');
});

test('syntax errors are every one with line and column; an empty lifecycle command is a no-op, not an error', () => {
  const broken = resolveConfig({ folder: folderWith('{\n  "image": "a",\n  "x": ,\n  "y": }\n'), env: {} });
  assert.ok(broken.problems.filter((p) => p.code === 'invalid-json').length >= 2, JSON.stringify(broken.problems));
  assert.match(broken.problems[0]!.path, /^line 3, column \d+$/);
  const empty = resolveConfig({ folder: folderWith({ image: 'a', postCreateCommand: '' }), env: {} });
  assert.deepEqual(empty.problems, []);
  assert.deepEqual(empty.config.hooks, {});
});

test('the plan: PATH prepended through ${containerEnv:PATH}, workspaceFolder from a variable, mounts as VM parts, host paths skipped', () => {
  const dir = folderWith(
    {
      image: 'mcr.microsoft.com/devcontainers/base',
      workspaceFolder: '/workspaces/${localWorkspaceFolderBasename}',
      remoteEnv: {
        PATH: '${containerWorkspaceFolder}/.dotnet:${containerEnv:PATH}',
        TOKEN: '${localEnv:GITHUB_TOKEN}',
      },
      mounts: [
        'source=/var/run/docker.sock,target=/var/run/docker.sock,type=bind',
        'source=${devcontainerId}-cache,target=/cache,type=volume',
        'type=bind,source=${localWorkspaceFolder}/data,target=/data,readonly',
        { type: 'bind', source: `${os.homedir()}/.ssh`, target: '/root/.ssh' },
        'type=tmpfs,target=/scratch',
        'target=/anon',
        'source=deps,target=/workspaces/${localWorkspaceFolderBasename}/node_modules',
      ],
      hostRequirements: { cpus: 4, memory: '4gb' },
      runArgs: ['--cap-add=SYS_PTRACE', '-e', 'FOO=bar', '--add-host', 'db:10.0.0.5', '--memory=6g', '--network=host'],
    },
    { 'data/x': '1' },
  );
  const resolved = resolveConfig({ folder: dir, env: { GITHUB_TOKEN: 't' } });
  const plan = planWorkspace(resolved, SETTINGS, { languages: [] });
  const name = path.basename(dir);
  assert.equal(plan.workspaceFolder, `/workspaces/${name}`);
  assert.equal(plan.remoteEnv.PATH, `/workspaces/${name}/.dotnet:\${containerEnv:PATH}`);
  assert.equal(
    resolveContainerEnv(plan.remoteEnv, { PATH: '/usr/bin:/bin' }).PATH,
    `/workspaces/${name}/.dotnet:/usr/bin:/bin`,
  );
  assert.equal(plan.remoteEnv.TOKEN, '', 'a host variable not allowed');
  assert.deepEqual(
    plan.mounts.map((m) => [m.hostPath, m.guestPath, m.readOnly]),
    [
      [dir, `/workspaces/${name}`, false],
      [path.join(dir, 'data'), '/data', true],
    ],
  );
  assert.deepEqual(
    plan.mounts.map((m) => m.fileEvents === true),
    [true, false],
    'host edits raise guest file events in the workspace folder only',
  );
  assert.deepEqual(
    plan.volumes.map((v) => [v.name, v.mountPoint]),
    [
      [`${resolved.devcontainerId}-cache`, '/cache'],
      [plan.volumes[1]?.name, '/anon'],
      ['deps', `/workspaces/${name}/node_modules`],
    ],
  );
  assert.match(plan.volumes[1]!.name, /^anon-[0-9a-f]{12}$/);
  assert.deepEqual(plan.tmpfs, [{ target: '/scratch' }]);
  assert.equal(plan.memoryMib, 6144);
  assert.equal(plan.vcpus, 4);
  assert.deepEqual(plan.containerEnv, { FOO: 'bar' });
  assert.deepEqual(plan.hosts, [{ name: 'db', address: '10.0.0.5' }]);
  const warnings = plan.problems.filter((p) => p.severity === 'warning');
  assert.deepEqual(warnings.map((p) => p.code).sort(), [
    'bind-outside-folder',
    'bind-outside-folder',
    'local-env-not-allowed',
    'run-arg',
  ]);
  assert.match(
    warnings.find((p) => p.path === '$.mounts[0]')?.consequence ?? '',
    /skipped: the VM gets nothing from the host beyond its folder/,
  );
  assert.equal(
    plan.problems.filter((p) => p.severity === 'error').length,
    0,
    'one unsupported mount never refuses the file',
  );
});

test("workspaceMount of the folder's parent shares the folder alone where it appears in that mount; another host path is refused", () => {
  const folder = folderWith({
    image: 'debian:12',
    workspaceMount: 'source=${localWorkspaceFolder}/..,target=/ws,type=bind,consistency=cached',
    workspaceFolder: '/ws/${localWorkspaceFolderBasename}',
  });
  const name = path.basename(folder);
  const plan = planWorkspace(resolveConfig({ folder, env: {} }), SETTINGS, { languages: [] });
  assert.deepEqual(
    plan.mounts.map((m) => [m.hostPath, m.guestPath]),
    [[folder, `/ws/${name}`]],
  );
  assert.equal(plan.workspaceFolder, `/ws/${name}`, 'the folder is where workspaceFolder says');
  const note = plan.problems.find((p) => p.path === '$.workspaceMount');
  assert.deepEqual([note?.severity, note?.code], ['info', 'workspace-mount-parent']);
  assert.equal(note?.consequence, `only the opened folder is shared, at /ws/${name}; the rest stays on the host`);

  const elsewhere = planWorkspace(
    resolveConfig({
      folder: folderWith({ image: 'debian:12', workspaceMount: `source=${os.tmpdir()},target=/src,type=bind` }),
      env: {},
    }),
    SETTINGS,
    { languages: [] },
  );
  assert.equal(elsewhere.problems.find((p) => p.path === '$.workspaceMount')?.code, 'workspace-mount-parent');
  const unrelated = fs.mkdtempSync(path.join(os.tmpdir(), 'unrelated-'));
  const refused = planWorkspace(
    resolveConfig({
      folder: folderWith({ image: 'debian:12', workspaceMount: `source=${unrelated},target=/src,type=bind` }),
      env: {},
    }),
    SETTINGS,
    { languages: [] },
  );
  assert.equal(refused.problems.find((p) => p.path === '$.workspaceMount')?.code, 'bind-outside-folder');
  assert.equal(refused.mounts[0]!.guestPath, '/src');
});

test('editor extensions recommended by the configuration: well-formed ids, the legacy key too, once each', () => {
  const dir = folderWith({
    image: 'a',
    extensions: ['ms-python.python'],
    customizations: { vscode: { extensions: ['dbaeumer.vscode-eslint', 'ms-python.python', '[x](command:a)', 5] } },
  });
  const resolved = resolveConfig({ folder: dir, env: {} });
  assert.deepEqual(recommendedExtensions(resolved.config, resolved.raw), [
    'dbaeumer.vscode-eslint',
    'ms-python.python',
  ]);
});

test('a Dockerfile or context outside the opened folder, or missing, is an error naming the key', () => {
  const outside = folderWith(
    { build: { dockerfile: 'Dockerfile', context: '../..' } },
    { '.devcontainer/Dockerfile': 'FROM x\n' },
  );
  const p1 = planWorkspace(resolveConfig({ folder: outside, env: {} }), SETTINGS, { languages: [] });
  assert.deepEqual(
    p1.problems.filter((p) => p.severity === 'error').map((p) => [p.code, p.path]),
    [['build-outside-folder', '$.build.context']],
  );
  const missing = folderWith({ build: { dockerfile: 'Nope' } });
  const p2 = planWorkspace(resolveConfig({ folder: missing, env: {} }), SETTINGS, { languages: [] });
  assert.deepEqual(
    p2.problems.filter((p) => p.severity === 'error').map((p) => [p.code, p.path]),
    [['missing-dockerfile', '$.build.dockerfile']],
  );
  const loose = folderWith(
    { build: { dockerfile: 'Dockerfile', target: '', args: { PY: 3.12, NODE: true, NAME: 'x' } } },
    { '.devcontainer/Dockerfile': 'FROM x\n' },
  );
  const p4 = planWorkspace(resolveConfig({ folder: loose, env: {} }), SETTINGS, { languages: [] });
  assert.deepEqual(
    p4.problems.filter((p) => p.severity !== 'info'),
    [],
    'the reference CLI takes these too',
  );
  assert.ok(p4.source.kind === 'dockerfile');
  assert.deepEqual(p4.source.build.args, { PY: '3.12', NODE: 'true', NAME: 'x' }, 'as --build-arg text');
  assert.equal(p4.source.build.target, undefined, '"" is no target');
  const inside = folderWith({ build: { dockerfile: '../Dockerfile', context: '..' } }, { Dockerfile: 'FROM x\n' });
  const p3 = planWorkspace(resolveConfig({ folder: inside, env: {} }), SETTINGS, { languages: [] });
  assert.equal(p3.source.kind, 'dockerfile');
});

test('image, Dockerfile and compose picked as the reference CLI picks them: a second one is a warning, not a refusal', () => {
  const dockerfile = { '.devcontainer/Dockerfile': 'FROM debian\n' };
  const planOf = (config: string | Record<string, unknown>, files: Record<string, string> = dockerfile) => {
    const resolved = resolveConfig({ folder: folderWith(config, files), env: {} });
    return { resolved, plan: planWorkspace(resolved, SETTINGS, { languages: [] }) };
  };
  const issues = (plan: { problems: Array<{ severity: string; code: string; path: string }> }) =>
    plan.problems.filter((p) => p.severity !== 'info').map((p) => [p.severity, p.code, p.path]);

  const both = planOf({ image: 'ghcr.io/acme/dev:1', build: { dockerfile: 'Dockerfile' } }).plan;
  assert.equal(both.source.kind, 'dockerfile', 'the Dockerfile is built; image only names it elsewhere');
  assert.deepEqual(issues(both), [['warning', 'image-and-build', '$.image']]);

  // Key order does not matter: build's args may come before the legacy dockerFile.
  const legacy = planOf('{ "build": { "args": { "V": "1" } }, "dockerFile": "Dockerfile" }').plan;
  assert.ok(legacy.source.kind === 'dockerfile' && legacy.source.build.args.V === '1');
  assert.deepEqual(issues(legacy), []);

  const argsOnly = planOf({ image: 'debian:12', build: { args: { V: '1' } } }).plan;
  assert.deepEqual(argsOnly.source, { kind: 'image', ref: 'debian:12' });
  assert.deepEqual(issues(argsOnly), [['warning', 'build-without-dockerfile', '$.build']]);
  assert.deepEqual(issues(planOf({ build: { args: { V: '1' } } }).plan), [
    ['error', 'missing-dockerfile', '$.build.dockerfile'],
  ]);

  const imageAndCompose = planOf({ image: 'debian:12', dockerComposeFile: 'compose.yml', service: 'app' });
  assert.equal(imageAndCompose.resolved.config.compose, undefined, 'the compose files are not read');
  assert.deepEqual(issues(imageAndCompose.plan), [['warning', 'compose-and-image', '$.dockerComposeFile']]);

  const noService = planOf({ dockerComposeFile: 'compose.yml' }).plan;
  assert.deepEqual(issues(noService), [['error', 'missing-service', '$.service']]);
  assert.deepEqual(issues(planOf({ image: 'debian:12', service: 'app' }).plan), [
    ['warning', 'service-without-compose', '$.service'],
  ]);
});

test('build.options as docker build takes them: build args and target win, --pull and --network shape the build, host secrets never pass', () => {
  const dir = folderWith(
    {
      build: {
        dockerfile: 'Dockerfile',
        args: { A: '1', B: '2' },
        target: 'dev',
        options: [
          '--build-arg',
          'B=3',
          '--build-arg=C=x=y',
          '--target=test',
          '--pull',
          '--network=none',
          '--no-cache',
          '--progress=plain',
          '--ssh',
          'default',
          '--secret',
          'id=npm,src=/home/me/.npmrc',
          '--build-arg',
          'HOST_TOKEN',
          '--platform',
          'linux/arm64',
          '--bogus',
        ],
      },
    },
    { '.devcontainer/Dockerfile': 'FROM x\n' },
  );
  const plan = planWorkspace(resolveConfig({ folder: dir, env: {} }), SETTINGS, { languages: [] });
  assert.equal(plan.source.kind, 'dockerfile');
  const { build } = plan.source as Extract<typeof plan.source, { kind: 'dockerfile' }>;
  assert.deepEqual(build.args, { A: '1', B: '3', C: 'x=y' });
  assert.equal(build.target, 'test');
  assert.equal(build.pull, true);
  assert.equal(build.network, 'none');
  const at = (i: number) => plan.problems.find((p) => p.path === `$.build.options[${i}]`);
  assert.equal(at(6)?.severity, 'info', '--no-cache is moot');
  assert.equal(at(7)?.severity, 'info', '--progress is moot');
  assert.match(at(8)?.consequence ?? '', /not passed/, '--ssh');
  assert.match(at(10)?.consequence ?? '', /not passed/, '--secret');
  assert.match(at(12)?.message ?? '', /HOST_TOKEN without a value would take it from the host environment/);
  assert.match(at(14)?.message ?? '', /linux\/arm64.*not this VM's architecture/);
  assert.match(at(16)?.message ?? '', /"--bogus" is not a build option/);
  assert.equal(plan.problems.filter((p) => p.severity === 'error').length, 0, 'build options never refuse the file');
});

test("runArgs' --platform picks the image's platform; a Dockerfile is built for this machine's", () => {
  const image = planWorkspace(
    resolveConfig({ folder: folderWith({ image: 'debian:12', runArgs: ['--platform=linux/aarch64'] }), env: {} }),
    SETTINGS,
    { languages: [] },
  );
  assert.equal(image.platform, 'linux/arm64', 'normalized as docker does');
  const bad = planWorkspace(
    resolveConfig({ folder: folderWith({ image: 'debian:12', runArgs: ['--platform', 'linux/'] }), env: {} }),
    SETTINGS,
    { languages: [] },
  );
  assert.equal(bad.platform, undefined);
  assert.match(bad.problems.find((p) => p.path === '$.runArgs[0]')?.message ?? '', /--platform "linux\/" is not OS/);
  const built = planWorkspace(
    resolveConfig({
      folder: folderWith(
        { build: { dockerfile: 'Dockerfile' }, runArgs: ['--platform', 'linux/arm64'] },
        { '.devcontainer/Dockerfile': 'FROM x\n' },
      ),
      env: {},
    }),
    SETTINGS,
    { languages: [] },
  );
  assert.equal(built.platform, undefined);
  assert.match(
    built.problems.find((p) => p.path === '$.runArgs')?.consequence ?? '',
    /Dockerfile is built in a VM of this machine's platform/,
  );
});

test('users written as uids, numbers among runArgs and `-e NAME=value` as one word are taken as the reference CLI takes them', () => {
  const resolved = resolveConfig({
    folder: folderWith({
      image: 'debian:12',
      remoteUser: 1000,
      containerUser: 'root',
      runArgs: ['--cpus', 2, '-e DISPLAY=:0'],
    }),
    env: {},
  });
  assert.deepEqual(resolved.problems, []);
  assert.equal(resolved.config.remoteUser, '1000');
  const plan = planWorkspace(resolved, SETTINGS, { languages: [] });
  assert.equal(plan.vcpus, 2);
  assert.deepEqual(plan.containerEnv, { DISPLAY: ':0' });
});

test("runArgs' --add-host: IP addresses become /etc/hosts lines; Docker's host-gateway (this machine) is reported, not written", () => {
  const plan = planWorkspace(
    resolveConfig({
      folder: folderWith({
        image: 'debian:12',
        runArgs: [
          '--add-host=host.docker.internal:host-gateway',
          '--add-host',
          'api.local:10.1.2.3',
          '--add-host=v6.local:[fd00::1]',
          '--add-host=eq.local=10.9.9.9',
          '--add-host=typo.local:not-an-ip',
        ],
      }),
      env: {},
    }),
    SETTINGS,
    { languages: [] },
  );
  assert.deepEqual(plan.hosts, [
    { name: 'api.local', address: '10.1.2.3' },
    { name: 'v6.local', address: 'fd00::1' },
    { name: 'eq.local', address: '10.9.9.9' },
  ]);
  const gateway = plan.problems.find((p) => p.path === '$.runArgs[0]');
  assert.equal(gateway?.severity, 'warning');
  assert.match(
    gateway?.message ?? '',
    /"host\.docker\.internal:host-gateway" points host\.docker\.internal at this machine/,
  );
  assert.match(gateway?.consequence ?? '', /^not added: services on this machine are out of the VM's reach/);
  assert.match(
    plan.problems.find((p) => p.path === '$.runArgs[5]')?.message ?? '',
    /"typo\.local:not-an-ip" is not NAME:ADDRESS/,
  );
});

test('an image naming a host folder or archive is refused: the repository may not put host files in the VM', () => {
  for (const image of [
    '/home/me/backups',
    'oci:/srv/layout',
    'docker-archive:/tmp/x.tar',
    'oci-archive:secret.tar',
    './img',
    '../img',
    '~/img',
  ]) {
    const plan = planWorkspace(
      resolveConfig({ folder: folderWith({ image }), env: {} }),
      { ...SETTINGS, image: '' },
      { languages: [] },
    );
    assert.deepEqual(
      plan.problems.filter((p) => p.severity === 'error').map((p) => [p.code, p.path]),
      [['image-host-path', '$.image']],
      image,
    );
    assert.deepEqual(plan.source, { kind: 'image', ref: undefined }, `${image} never reaches the image resolver`);
  }
  for (const image of ['debian:bookworm', 'ghcr.io/a/b:1', 'localhost:5000/x', 'docker://node:20']) {
    const plan = planWorkspace(resolveConfig({ folder: folderWith({ image }), env: {} }), SETTINGS, { languages: [] });
    assert.deepEqual(
      plan.problems.filter((p) => p.code === 'image-host-path'),
      [],
      image,
    );
  }
});

function plainFolder(files: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-lang-'));
  for (const name of files) fs.writeFileSync(path.join(dir, name), '');
  return dir;
}

test("languages: the top level's marker files, most specific first; nothing for an empty or missing folder", () => {
  assert.deepEqual(detectLanguages(plainFolder(['package.json', 'README.md'])), [
    { language: 'node', marker: 'package.json' },
  ]);
  assert.deepEqual(
    detectLanguages(plainFolder(['package.json', 'go.mod'])).map((l) => l.language),
    ['go', 'node'],
  );
  assert.deepEqual(
    detectLanguages(plainFolder(['requirements.txt', 'package.json'])).map((l) => l.language),
    ['python', 'node'],
  );
  assert.deepEqual(detectLanguages(plainFolder(['App.csproj'])), [{ language: 'dotnet', marker: 'App.csproj' }]);
  assert.deepEqual(detectLanguages(plainFolder(['.csproj'])), [], 'a suffix alone is no project file');
  assert.deepEqual(detectLanguages(plainFolder(['build.gradle.kts'])), [
    { language: 'java', marker: 'build.gradle.kts' },
  ]);
  assert.deepEqual(detectLanguages(plainFolder([])), []);
  assert.deepEqual(detectLanguages('/nonexistent/microvm-lang'), []);
});

test("a folder without devcontainer.json opens on its language's image, said why; microvm.image and a devcontainer.json come first", () => {
  const folder = plainFolder(['package.json', 'requirements.txt']);
  const facts = { languages: detectLanguages(folder) };
  const plan = planWorkspace(resolveConfig({ folder, env: {} }), SETTINGS, facts);
  assert.deepEqual(plan.source, {
    kind: 'image',
    ref: 'python:3.12-bookworm',
    language: { language: 'python', marker: 'requirements.txt' },
  });
  const info = plan.problems.find((p) => p.code === 'language-image');
  assert.ok(
    info &&
      info.severity === 'info' &&
      info.message.includes('requirements.txt') &&
      info.message.includes('python:3.12-bookworm'),
    JSON.stringify(plan.problems),
  );
  assert.ok(
    plan.volumes.some((v) => v.name === 'venv'),
    'a Python folder gets its .venv volume',
  );
  const own = planWorkspace(
    resolveConfig({ folder, env: {} }),
    { ...SETTINGS, defaultImages: { python: '', node: 'registry.example/node:20' } },
    facts,
  );
  assert.deepEqual(
    own.source,
    { kind: 'image', ref: 'registry.example/node:20', language: { language: 'node', marker: 'package.json' } },
    'an empty entry skips that language',
  );
  assert.deepEqual(
    planWorkspace(resolveConfig({ folder, env: {} }), { ...SETTINGS, image: 'alpine:3' }, facts).source,
    { kind: 'image', ref: 'alpine:3' },
  );
  assert.deepEqual(
    planWorkspace(resolveConfig({ folder: plainFolder(['README.md']), env: {} }), SETTINGS, { languages: [] }).source,
    { kind: 'image', ref: undefined },
  );
  const configured = folderWith({ image: 'debian:12' }, { 'package.json': '{}' });
  assert.deepEqual(
    planWorkspace(resolveConfig({ folder: configured, env: {} }), SETTINGS, { languages: detectLanguages(configured) })
      .source,
    { kind: 'image', ref: 'debian:12' },
  );
});
