import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { mergeConfiguration } from '../../engine/devcontainer/merge';

test("the spec's merge: hooks collected in order, last one wins for users, unions and per-key objects", () => {
  const image = {
    remoteUser: 'node',
    postCreateCommand: 'image-hook',
    capAdd: ['SYS_PTRACE'],
    containerEnv: { A: 'image', B: 'image' },
    forwardPorts: [3000],
    mounts: ['source=a,target=/x'],
  };
  const feature = {
    id: 'ghcr.io/x/f:1',
    onCreateCommand: 'feature-hook',
    capAdd: ['SYS_PTRACE', 'NET_ADMIN'],
    init: true,
    customizations: { vscode: { extensions: ['f.e'] } },
  };
  const config = {
    image: 'i',
    remoteUser: 'dev',
    postCreateCommand: 'config-hook',
    containerEnv: { B: 'config' },
    forwardPorts: ['localhost:3000', 8080],
    mounts: ['source=b,target=/x'],
    overrideCommand: false,
    customizations: { vscode: { settings: {} } },
  };
  const merged = mergeConfiguration(config, [image, feature]);
  assert.deepEqual(merged.postCreateCommands, ['image-hook', 'config-hook']);
  assert.deepEqual(merged.onCreateCommands, ['feature-hook']);
  assert.equal(merged.remoteUser, 'dev');
  assert.deepEqual(merged.capAdd, ['SYS_PTRACE', 'NET_ADMIN']);
  assert.equal(merged.init, true);
  assert.deepEqual(merged.containerEnv, { A: 'image', B: 'config' });
  assert.deepEqual(merged.forwardPorts, [3000, 8080]);
  assert.deepEqual(merged.mounts, ['source=b,target=/x'], 'a later mount at the same target wins');
  assert.equal(merged.overrideCommand, false);
  assert.deepEqual(merged.customizations, { vscode: [{ extensions: ['f.e'] }, { settings: {} }] });
  assert.equal('postCreateCommand' in merged, false);
});

test('microvm read-configuration prints the configuration, the merged one and every problem; exit 1 on an error', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-readconf-'));
  try {
    fs.mkdirSync(path.join(dir, '.devcontainer'));
    const cli = (...args: string[]) =>
      spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          path.join(__dirname, '..', '..', 'engine', 'cli', 'main.ts'),
          'read-configuration',
          '--workspace-folder',
          dir,
          ...args,
        ],
        { encoding: 'utf8', env: { ...process.env, SECRET_FOR_TEST: 's' } },
      );
    fs.writeFileSync(
      path.join(dir, '.devcontainer', 'devcontainer.json'),
      '{ "image": "x", "containerEnv": { "S": "${localEnv:SECRET_FOR_TEST}" }, "postStartCommand": "go", }',
    );
    const denied = cli('--include-merged-configuration');
    assert.equal(denied.status, 0, denied.stderr);
    const out = JSON.parse(denied.stdout);
    assert.equal(out.configuration.containerEnv.S, '');
    assert.deepEqual(out.mergedConfiguration.postStartCommands, ['go']);
    assert.equal(out.problems[0].code, 'local-env-not-allowed');
    assert.equal(JSON.parse(cli('--allow-local-env', 'SECRET_FOR_TEST').stdout).configuration.containerEnv.S, 's');
    fs.writeFileSync(path.join(dir, '.devcontainer', 'devcontainer.json'), '{ "image": ');
    const broken = cli();
    assert.equal(broken.status, 1);
    assert.equal(JSON.parse(broken.stdout).problems[0].code, 'invalid-json');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
