import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readSettings } from '../../extension/config/settings';

test('settings fall back to defaults on bad values; localEnv.allow is read under its own name', () => {
  const values: Record<string, unknown> = {
    image: 'alpine', memoryMib: 'lots', cpus: 0, network: 'none', symlinks: 'sometimes', accelerator: 'kvm', allowEmulation: 'yes',
    'localEnv.allow': ['GITHUB_TOKEN', 'not a name'],
  };
  assert.deepEqual(readSettings((key) => values[key]), {
    image: 'alpine', memoryMib: 1024, cpus: 2, network: 'none', symlinks: 'opaque', accelerator: 'kvm', allowEmulation: false,
    maxMemoryMib: 0, maxCpus: 0, protectedNames: [], gitAccess: 'writable', localEnvAllow: [],
  });
  assert.deepEqual(readSettings((key) => (key === 'localEnv.allow' ? ['GITHUB_TOKEN', 'NPM_TOKEN'] : undefined)).localEnvAllow, ['GITHUB_TOKEN', 'NPM_TOKEN']);
});
