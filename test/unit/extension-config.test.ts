import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  builderImageEnv,
  mirrorsEnv,
  readSettings,
  settingValue,
  SETTING_KEYS,
  USER_ONLY_SETTINGS,
} from '../../extension/config/settings';
import { isMicrovmError } from '../../engine/errors';

test('settings fall back to defaults on bad values; localEnv.allow is read under its own name', () => {
  const values: Record<string, unknown> = {
    image: 'alpine',
    memoryMib: 'lots',
    cpus: 0,
    network: 'none',
    symlinks: 'sometimes',
    accelerator: 'kvm',
    allowEmulation: 'yes',
    'localEnv.allow': ['GITHUB_TOKEN', 'not a name'],
    trustHostCertificates: 'sometimes',
    typeProjection: 'off',
  };
  assert.deepEqual(
    readSettings((key) => values[key]),
    {
      image: 'alpine',
      memoryMib: 1024,
      cpus: 2,
      network: 'none',
      symlinks: 'opaque',
      accelerator: 'kvm',
      allowEmulation: false,
      maxMemoryMib: 0,
      maxCpus: 0,
      protectedNames: [],
      gitAccess: 'writable',
      localEnvAllow: [],
      defaultImages: {},
      registryMirrors: {},
      builderImage: '',
      trustHostCertificates: 'auto',
      allowedHosts: [],
      allowedHostsPresets: true,
      askForHosts: true,
      typeProjection: true,
      idleStopMinutes: 30,
    },
  );
  assert.deepEqual(
    readSettings((key) => (key === 'trustHostCertificates' ? ['/etc/corp/ca.pem'] : undefined)).trustHostCertificates,
    ['/etc/corp/ca.pem'],
  );
  assert.deepEqual(
    readSettings((key) => (key === 'localEnv.allow' ? ['GITHUB_TOKEN', 'NPM_TOKEN'] : undefined)).localEnvAllow,
    ['GITHUB_TOKEN', 'NPM_TOKEN'],
  );
});

test('microvm.defaultImages takes known languages only; a bad value is ignored as a whole', () => {
  assert.deepEqual(
    readSettings((key) => (key === 'defaultImages' ? { node: 'node:20', python: '' } : undefined)).defaultImages,
    { node: 'node:20', python: '' },
  );
  assert.deepEqual(readSettings((key) => (key === 'defaultImages' ? { cobol: 'x' } : undefined)).defaultImages, {});
});

test("microvm.registryMirrors come before the environment's, each mirror once; a bad one is an error naming the setting", () => {
  const settings = readSettings((key) =>
    key === 'registryMirrors'
      ? { 'docker.io': ['https://mirror.example'], 'ghcr.io': ['http://127.0.0.1:5000'] }
      : undefined,
  );
  assert.equal(
    mirrorsEnv(settings, 'docker.io=http://127.0.0.1:6000,docker.io=https://mirror.example'),
    'docker.io=https://mirror.example,docker.io=http://127.0.0.1:6000,ghcr.io=http://127.0.0.1:5000',
  );
  assert.equal(
    mirrorsEnv(
      readSettings(() => undefined),
      undefined,
    ),
    undefined,
  );
  assert.equal(
    mirrorsEnv(
      readSettings(() => undefined),
      'quay.io=http://127.0.0.1:7000',
    ),
    'quay.io=http://127.0.0.1:7000',
  );
  const bad = readSettings((key) => (key === 'registryMirrors' ? { 'docker.io': ['ftp://nope'] } : undefined));
  assert.throws(
    () => mirrorsEnv(bad, undefined),
    (err) => isMicrovmError(err, 'E_BAD_OPTION') && err.message.includes('microvm.registryMirrors'),
  );
});

test('microvm.builderImage comes before the MICROVM_BUILDER_IMAGE VS Code started with; empty leaves the default', () => {
  const own = readSettings((key) => (key === 'builderImage' ? ' registry.example/buildah:1 ' : undefined));
  assert.equal(builderImageEnv(own, 'other:1'), 'registry.example/buildah:1');
  assert.equal(
    builderImageEnv(
      readSettings(() => undefined),
      'other:1',
    ),
    'other:1',
  );
  assert.equal(
    builderImageEnv(
      readSettings(() => undefined),
      undefined,
    ),
    undefined,
  );
});

test("every setting read is declared; a folder's own settings cannot name host variables for ${localEnv}", () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    capabilities: { untrustedWorkspaces: { restrictedConfigurations: string[] } };
    contributes: { configuration: { properties: Record<string, { scope?: string }> } };
  };
  const declared = manifest.contributes.configuration.properties;
  const read: string[] = [];
  readSettings((name) => {
    read.push(name);
    return undefined;
  });
  assert.equal(read.length, SETTING_KEYS.length);
  // An undeclared setting has no scope: VS Code hands out a repository's .vscode/settings.json value for it.
  for (const name of read) assert.ok(declared[`microvm.${name}`], `microvm.${name} is declared in package.json`);
  for (const name of USER_ONLY_SETTINGS) {
    assert.equal(declared[`microvm.${name}`]?.scope, 'machine', `microvm.${name} is machine-scoped`);
    assert.ok(manifest.capabilities.untrustedWorkspaces.restrictedConfigurations.includes(`microvm.${name}`));
  }
  const fromRepository = { workspaceValue: ['GITHUB_TOKEN'], workspaceFolderValue: ['AWS_SECRET_ACCESS_KEY'] };
  const settings = readSettings((name) =>
    settingValue(name, ['GITHUB_TOKEN', 'AWS_SECRET_ACCESS_KEY'], name === 'localEnv.allow' ? fromRepository : {}),
  );
  assert.deepEqual(settings.localEnvAllow, [], "the folder's values are not read");
  assert.deepEqual(
    readSettings((name) => settingValue(name, undefined, { ...fromRepository, globalValue: ['NPM_TOKEN'] }))
      .localEnvAllow,
    ['NPM_TOKEN'],
    "the user's value is",
  );
});
