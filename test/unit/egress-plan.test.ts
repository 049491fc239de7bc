import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planEgress, presetsFor } from '../../engine/devcontainer/egress';
import { Problems } from '../../engine/devcontainer/problems';

const node = [{ language: 'node' as const, marker: 'package.json' }];

test('a configuration may narrow the network; it widens it only in a trusted folder', () => {
  const p = new Problems();
  assert.equal(planEgress({ network: 'outbound' }, { microvm: { network: 'allowlist' } }, [], p).network, 'allowlist');
  assert.equal(planEgress({ network: 'allowlist' }, { microvm: { network: 'outbound' } }, [], p).network, 'allowlist');
  assert.equal(p.list[0]!.code, 'network-not-widened');
  assert.equal(
    planEgress({ network: 'allowlist', trusted: true }, { microvm: { network: 'outbound' } }, [], new Problems())
      .network,
    'outbound',
  );
  assert.equal(planEgress({ network: 'learn' }, { microvm: { network: 'none' } }, [], new Problems()).network, 'none');
});

test("allowed hosts: settings, the presets of the folder's languages and GitHub; the configuration's only when trusted", () => {
  const p = new Problems();
  const plan = planEgress(
    { network: 'allowlist', allowedHosts: ['Registry.Example.com', '*'] },
    { microvm: { allowedHosts: ['evil.example', 'pypi.org'] } },
    node,
    p,
  );
  assert.ok(plan.allow.includes('registry.example.com'));
  assert.ok(plan.allow.includes('registry.npmjs.org') && plan.allow.includes('github.com'));
  assert.ok(!plan.allow.includes('evil.example') && !plan.allow.includes('pypi.org'));
  assert.deepEqual(p.list.map((x) => x.code).sort(), ['hosts-not-allowed', 'invalid-allowed-host']);
  assert.match(p.list.find((x) => x.code === 'hosts-not-allowed')?.message ?? '', /evil\.example, pypi\.org/);
  const trusted = planEgress(
    { network: 'allowlist', trusted: true, presets: false },
    { microvm: { allowedHosts: ['pypi.org'] } },
    node,
    new Problems(),
  );
  assert.deepEqual(trusted.allow, ['pypi.org']);
  assert.ok(presetsFor([{ language: 'python', marker: 'pyproject.toml' }]).includes('files.pythonhosted.org'));
});
