import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { planWorkspace, resolveConfig, resolveContainerEnv } from '../../engine/devcontainer';
import { testPlanSettings } from '../helpers/plan-settings';

/**
 * A dozen configurations shaped like the ones real projects keep (Dockerfile projects,
 * compose projects, features, variables in every field): none may have an error problem,
 * and no variable may be left in a field the engine uses once the image's environment is known.
 */
const CORPUS: Record<string, unknown> = {
  'node-dockerfile': {
    name: 'Node.js',
    build: { dockerfile: 'Dockerfile', args: { VARIANT: '20-bookworm' } },
    customizations: { vscode: { extensions: ['dbaeumer.vscode-eslint'] } },
    forwardPorts: [3000],
    postCreateCommand: 'npm ci',
    remoteUser: 'node',
  },
  'python-features': {
    image: 'mcr.microsoft.com/devcontainers/python:1-3.12-bookworm',
    features: {
      'ghcr.io/devcontainers/features/node:1': { version: 'lts' },
      'ghcr.io/devcontainers/features/github-cli:1': {},
    },
    postCreateCommand: 'pip3 install --user -r requirements.txt',
    portsAttributes: { 8000: { label: 'Django', onAutoForward: 'openBrowser' } },
  },
  'rails-compose': {
    name: 'Rails',
    dockerComposeFile: ['../docker-compose.yml', 'docker-compose.extend.yml'],
    service: 'app',
    runServices: ['app', 'db', 'redis'],
    workspaceFolder: '/workspaces/${localWorkspaceFolderBasename}',
    forwardPorts: [3000, 'db:5432'],
    postCreateCommand: 'bin/setup',
  },
  'dotnet-path': {
    image: 'mcr.microsoft.com/devcontainers/dotnet:8.0',
    remoteEnv: {
      PATH: '${containerWorkspaceFolder}/.dotnet:${containerEnv:PATH}',
      DOTNET_ROOT: '${containerWorkspaceFolder}/.dotnet',
    },
    onCreateCommand: ['bash', '-c', './eng/common/tools.sh'],
    hostRequirements: { cpus: 4, memory: '8gb', storage: '32gb' },
  },
  'rust-cache-volume': {
    image: 'mcr.microsoft.com/devcontainers/rust:1',
    mounts: [
      'source=${localWorkspaceFolderBasename}-cargo-${devcontainerId},target=/usr/local/cargo/registry,type=volume',
    ],
    postCreateCommand: { build: 'cargo build', fetch: ['cargo', 'fetch'] },
    updateContentCommand: '',
  },
  'go-docker-in-docker': {
    image: 'mcr.microsoft.com/devcontainers/go:1.22',
    mounts: [
      'source=/var/run/docker.sock,target=/var/run/docker-host.sock,type=bind',
      'source=${localEnv:HOME}/.ssh,target=/home/vscode/.ssh,type=bind,consistency=cached',
    ],
    runArgs: ['--cap-add=SYS_PTRACE', '--security-opt', 'seccomp=unconfined', '--init'],
    remoteUser: 'vscode',
  },
  'java-gradle': {
    build: { dockerfile: '../Dockerfile.dev', context: '..', target: 'dev', cacheFrom: 'ghcr.io/acme/app:cache' },
    containerEnv: { JAVA_TOOL_OPTIONS: '-Xmx2g', GRADLE_USER_HOME: '${containerWorkspaceFolder}/.gradle' },
    postStartCommand: './gradlew --version',
    waitFor: 'postCreateCommand',
  },
  'monorepo-workspace-mount': {
    image: 'node:20',
    workspaceMount: 'source=${localWorkspaceFolder},target=/src/${localWorkspaceFolderBasename},type=bind',
    workspaceFolder: '/src/${localWorkspaceFolderBasename}',
    mounts: ['type=bind,source=${localWorkspaceFolder}/packages,target=/packages,readonly'],
  },
  'env-file-and-hosts': {
    image: 'ubuntu:24.04',
    runArgs: [
      '--env-file',
      '.devcontainer/devcontainer.env',
      '--add-host',
      'api.local:10.1.2.3',
      '-p',
      '8080:80',
      '--memory=4g',
    ],
    containerEnv: { TZ: 'UTC', TOKEN: '${localEnv:MY_TOKEN:unset}' },
  },
  'legacy-dockerfile-keys': {
    dockerFile: 'Dockerfile',
    context: '..',
    extensions: ['ms-python.python'],
    settings: { 'editor.tabSize': 2 },
    appPort: [3000, '9229:9229'],
    postAttachCommand: 'echo attached',
    shutdownAction: 'stopContainer',
    overrideCommand: true,
  },
  'tmpfs-and-anonymous': {
    image: 'node:20',
    mounts: [{ type: 'volume', target: '/home/node/.cache' }, 'type=tmpfs,target=/run/scratch,tmpfs-size=128m'],
    userEnvProbe: 'loginShell',
    updateRemoteUserUID: false,
    containerUser: 'node',
  },
  'variables-everywhere': {
    name: '${localWorkspaceFolderBasename} (${devcontainerId})',
    image: 'debian:bookworm',
    containerEnv: {
      PROJECT: '${localWorkspaceFolderBasename}',
      WS: '${containerWorkspaceFolder}',
      ID: '${devcontainerId}',
    },
    remoteEnv: { LD_LIBRARY_PATH: '${containerEnv:LD_LIBRARY_PATH:}:/opt/lib', HOME_COPY: '${containerEnv:HOME}' },
    postCreateCommand: 'echo ${containerWorkspaceFolderBasename} > /tmp/name',
    portsAttributes: { '3000-3010': { label: 'dev servers' }, '.+/vite': { onAutoForward: 'silent' } },
    otherPortsAttributes: { onAutoForward: 'ignore' },
  },
};

const SETTINGS = testPlanSettings({ memoryMib: 1024, cpus: 2, network: 'outbound' });
const IMAGE_ENV = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/root' };

test('a dozen real-world-shaped configurations: no error, no variable left in what the engine uses', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-corpus-'));
  try {
    for (const [name, config] of Object.entries(CORPUS)) {
      const folder = path.join(root, name);
      fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
      fs.mkdirSync(path.join(folder, 'packages'));
      fs.writeFileSync(path.join(folder, '.devcontainer', 'devcontainer.json'), JSON.stringify(config, null, 2));
      fs.writeFileSync(path.join(folder, '.devcontainer', 'devcontainer.env'), 'FROM_FILE=1\n# comment\n');
      for (const dockerfile of ['.devcontainer/Dockerfile', 'Dockerfile.dev'])
        fs.writeFileSync(path.join(folder, dockerfile), 'FROM debian\n');
      const resolved = resolveConfig({ folder, env: { HOME: '/home/u', MY_TOKEN: 't' } });
      const plan = planWorkspace(resolved, SETTINGS, { languages: [] });
      const errors = plan.problems.filter((p) => p.severity === 'error');
      assert.deepEqual(errors, [], `${name}: ${JSON.stringify(errors)}`);
      const used = resolveContainerEnv(
        {
          containerEnv: plan.containerEnv,
          remoteEnv: plan.remoteEnv,
          workspaceFolder: plan.workspaceFolder,
          hooks: plan.hooks,
          mounts: plan.mounts,
          volumes: plan.volumes,
          tmpfs: plan.tmpfs,
          source: plan.source,
        },
        { ...IMAGE_ENV, ...plan.containerEnv },
      );
      assert.doesNotMatch(
        JSON.stringify(used),
        /\$\{(localEnv|env|localWorkspaceFolder|containerWorkspaceFolder|devcontainerId|containerEnv)/,
        name,
      );
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('the corpus as the engine plans it: what each project gets', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-corpus-'));
  const plan = (name: string) => {
    const folder = path.join(root, name);
    fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
    fs.mkdirSync(path.join(folder, 'packages'), { recursive: true });
    fs.writeFileSync(path.join(folder, '.devcontainer', 'devcontainer.json'), JSON.stringify(CORPUS[name]));
    fs.writeFileSync(path.join(folder, '.devcontainer', 'devcontainer.env'), 'FROM_FILE=1\n');
    for (const dockerfile of ['.devcontainer/Dockerfile', 'Dockerfile.dev'])
      fs.writeFileSync(path.join(folder, dockerfile), 'FROM debian\n');
    return planWorkspace(resolveConfig({ folder, env: {} }), SETTINGS, { languages: [] });
  };
  try {
    assert.equal(plan('node-dockerfile').source.kind, 'dockerfile');
    const java = plan('java-gradle').source;
    assert.ok(
      java.kind === 'dockerfile' &&
        java.build.dockerfile === path.join(root, 'java-gradle', 'Dockerfile.dev') &&
        java.build.target === 'dev',
    );
    assert.deepEqual(plan('rust-cache-volume').hooks.postCreateCommand?.kind, 'parallel');
    assert.equal(plan('rust-cache-volume').hooks.updateContentCommand, undefined, 'an empty command is a no-op');
    const outside = plan('go-docker-in-docker').problems.filter((p) => p.code === 'bind-outside-folder');
    assert.deepEqual(
      outside.map((p) => p.path),
      ['$.mounts[0]', '$.mounts[1]'],
    );
    assert.equal(
      outside[1]!.message,
      'a bind mount of "/.ssh" (written "${localEnv:HOME}/.ssh"), outside the opened folder',
      'a variable that resolved to nothing is shown as written',
    );
    assert.doesNotMatch(outside[0]!.message, /written/);
    const monorepo = plan('monorepo-workspace-mount');
    assert.equal(monorepo.mounts[0]!.guestPath, '/src/monorepo-workspace-mount');
    assert.equal(monorepo.mounts[1]!.readOnly, true);
    const env = plan('env-file-and-hosts');
    assert.deepEqual(env.containerEnv, { FROM_FILE: '1', TZ: 'UTC', TOKEN: 'unset' });
    assert.deepEqual(env.hosts, [{ name: 'api.local', address: '10.1.2.3' }]);
    assert.deepEqual(env.ports.publish, [{ hostPort: 8080, guestPort: 80 }]);
    assert.equal(env.memoryMib, 4096);
    const legacy = plan('legacy-dockerfile-keys');
    assert.equal(legacy.source.kind, 'dockerfile');
    assert.deepEqual(legacy.ports.publish, [
      { hostPort: 3000, guestPort: 3000 },
      { hostPort: 9229, guestPort: 9229 },
    ]);
    assert.equal(
      legacy.problems.filter((p) => p.severity === 'info').length,
      2,
      'extensions and settings go to the log',
    );
    assert.equal(plan('tmpfs-and-anonymous').tmpfs[0]!.sizeMib, 128);
    assert.equal(
      plan('rails-compose').problems.some((p) => p.code === 'compose-not-loaded' && p.severity === 'info'),
      true,
      'compose files are read when the workspace opens',
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
