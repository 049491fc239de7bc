import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DevcontainerError, parseDevcontainer } from '../../extension/config/devcontainer';
import { commandsScript, isPythonProject, planSession, shellQuote } from '../../extension/config/plan';
import { DEFAULT_PROTECT } from '../../engine/mount/types';
import { readSettings } from '../../extension/config/settings';

const FILE = '.devcontainer/devcontainer.json';

function refused(text: string, ...fragments: RegExp[]): void {
  assert.throws(() => parseDevcontainer(FILE, text), (err) => {
    assert.ok(err instanceof DevcontainerError, String(err));
    for (const f of fragments) assert.match(err.message, f);
    assert.ok(err.message.startsWith(`${FILE}: `), err.message);
    return true;
  });
}

test('a full devcontainer.json with comments and trailing commas is normalized', () => {
  const { config, warnings } = parseDevcontainer(FILE, `{
    // comments are allowed
    "image": "docker.io/library/node:20",
    "forwardPorts": [3000, "localhost:8080"],
    "portsAttributes": { "3000": { "label": "web", "onAutoForward": "openBrowser" }, "9000-9010": { "onAutoForward": "ignore" } },
    "containerEnv": { "A": "1" },
    "remoteEnv": { "B": "2" },
    "workspaceFolder": "/src",
    "mounts": ["source=cache,target=/cache,type=volume", { "source": "data", "target": "/data", "type": "volume" }],
    "onCreateCommand": "npm ci",
    "updateContentCommand": ["npm", "run", "build"],
    "postCreateCommand": { "one": "echo 1", "two": ["echo", "2"] },
    "postStartCommand": "echo started",
    "hostRequirements": { "cpus": 4, "memory": "4gb" },
  }`);
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.forwardPorts, [3000, 8080]);
  assert.deepEqual(config.mounts, [{ name: 'cache', target: '/cache' }, { name: 'data', target: '/data' }]);
  assert.deepEqual(config.onCreateCommand, [{ argv: ['/bin/sh', '-c', 'npm ci'] }]);
  assert.deepEqual(config.updateContentCommand, [{ argv: ['npm', 'run', 'build'] }]);
  assert.deepEqual(config.postCreateCommand, [{ label: 'one', argv: ['/bin/sh', '-c', 'echo 1'] }, { label: 'two', argv: ['echo', '2'] }]);
  assert.equal(config.hostRequirements?.memory, 4096);
  assert.equal(config.portsAttributes['3000'].onAutoForward, 'openBrowser');
});

test('errors name the file, the JSON path and the expected value', () => {
  refused('{ "forwardPorts": [3000, "db:5432"] }', /\$\.forwardPorts\[1\]/, /expected a port number/, /"db:5432"/);
  refused('{ "portsAttributes": { "3000": { "onAutoForward": "popup" } } }', /\$\.portsAttributes\["3000"\]\.onAutoForward/, /expected one of "notify", "openBrowser", "silent", "ignore"/, /"popup"/);
  refused('{ "mounts": ["source=/home,target=/h,type=bind"] }', /\$\.mounts\[0\]/, /expected/);
  refused('{ "mounts": [{ "source": "x", "target": "/h", "type": "bind" }] }', /\$\.mounts\[0\]\.type/, /expected "volume"/, /"bind"/);
  refused('{ "workspaceFolder": "src" }', /\$\.workspaceFolder/, /absolute/);
  refused('{ "hostRequirements": { "cpus": "many" } }', /\$\.hostRequirements\.cpus/, /expected number/, /"many"/);
  refused('{ "postStartCommand": 42 }', /\$\.postStartCommand/, /expected a command string/, /42/);
  refused('{ "containerEnv": { "A": 1 } }', /\$\.containerEnv\.A/, /expected string/);
  refused('{ "image": "x", }  }', /line 1, column/, /invalid JSON/);
  refused('[1, 2]', /\$: expected an object/);
});

test('unsupported keys are listed in one warning; initializeCommand never runs on the host', () => {
  const { warnings } = parseDevcontainer(FILE, '{ "build": {}, "features": {}, "initializeCommand": "rm -rf ~", "name": "ok" }');
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], /initializeCommand is ignored: it would run on the host/);
  assert.match(warnings[1], /Unsupported keys are ignored: build, features\./);
});

test('settings fall back to defaults on bad values', () => {
  const values: Record<string, unknown> = { image: 'alpine', memoryMib: 'lots', cpus: 0, network: 'none', symlinks: 'sometimes', accelerator: 'kvm', allowEmulation: 'yes' };
  assert.deepEqual(readSettings((key) => values[key]), {
    image: 'alpine', memoryMib: 1024, cpus: 2, network: 'none', symlinks: 'opaque', accelerator: 'kvm', allowEmulation: false,
    maxMemoryMib: 0, maxCpus: 0, protectedNames: [], gitAccess: 'writable',
  });
});

test('the plan: devcontainer over settings, hostRequirements as minimums, node_modules on a per-workspace volume', () => {
  const settings = readSettings((key) => ({ image: 'alpine', memoryMib: 512, cpus: 1 } as Record<string, unknown>)[key]);
  const folder = { name: 'my app', fsPath: '/home/u/my app' };
  const volumeName = (name: string) => `ws-0123456789abcdef-${name}`;
  const bare = planSession(settings, undefined, folder, volumeName);
  assert.equal(bare.ref, 'alpine');
  assert.equal(bare.workspaceFolder, '/workspaces/my_app');
  assert.deepEqual(bare.mounts, [{ hostPath: '/home/u/my app', guestPath: '/workspaces/my_app', symlinks: 'opaque', readOnly: false, protect: [...DEFAULT_PROTECT], git: 'writable' }]);
  assert.equal(bare.volumes[0].name, 'ws-0123456789abcdef-node_modules');
  assert.equal(bare.volumes[0].mountPoint, '/workspaces/my_app/node_modules');
  assert.equal(bare.warmupTag, '');

  const { config } = parseDevcontainer(FILE, '{ "image": "node:20", "hostRequirements": { "cpus": 2, "memory": "256mb" }, "onCreateCommand": "make", "mounts": ["source=c,target=/c,type=volume"] }');
  const plan = planSession(settings, config, folder, volumeName);
  assert.equal(plan.ref, 'node:20');
  assert.equal(plan.vcpus, 2);
  assert.equal(plan.memoryMib, 512);
  assert.equal(plan.volumes[1].mountPoint, '/c');
  assert.equal(plan.volumes[1].name, 'ws-0123456789abcdef-c', 'a configuration names only its own workspace\'s volumes');
  const python = planSession(settings, undefined, { ...folder, python: isPythonProject(['README.md', 'pyproject.toml']) }, volumeName);
  assert.deepEqual(python.volumes.map((v) => v.mountPoint), ['/workspaces/my_app/node_modules', '/workspaces/my_app/.venv']);
  assert.equal(isPythonProject(['package.json']), false);
  assert.notEqual(plan.warmupTag, '');
});

test('post-start commands become one shell script that stops at the first failure', () => {
  const script = commandsScript([{ argv: ['/bin/sh', '-c', "echo it's ok"] }, { label: 'two', argv: ['npm', 'run', 'dev'] }]);
  assert.equal(script.split('\n')[0], 'set -e');
  assert.match(script, /&& \/bin\/sh -c 'echo it'\\''s ok'$/m);
  assert.match(script, /> %s\\033\[0m\\n' 'two: npm run dev' && npm run dev$/m);
  assert.equal(shellQuote('a b'), `'a b'`);
  assert.equal(shellQuote('/usr/bin/env'), '/usr/bin/env');
});
