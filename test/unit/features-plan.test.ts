import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { planDockerfile } from '../../engine/build/dockerfile';
import { withImageMetadata } from '../../engine/devcontainer/image-metadata';
import { planWorkspace } from '../../engine/devcontainer/plan';
import { Problems } from '../../engine/devcontainer/problems';
import { emptyConfig } from '../../engine/devcontainer/config';
import type { ResolvedConfig } from '../../engine/devcontainer/resolve';
import { featuresDockerfile } from '../../engine/features/dockerfile';
import { envName, optionsEnvFile } from '../../engine/features/options';
import { installOrder, type OrderNode } from '../../engine/features/order';
import type { ResolvedFeature } from '../../engine/features/types';
import { hookRuns } from '../../engine/workspace/lifecycle';
import { testPlanSettings } from '../helpers/plan-settings';

test('option names become env names exactly as the spec digest states', () => {
  assert.deepEqual(['version', 'installGradle', 'node-version', '2fa', '__x', 'a.b c'].map(envName), [
    'VERSION',
    'INSTALLGRADLE',
    'NODE_VERSION',
    '_FA',
    '_X',
    'A_B_C',
  ]);
  assert.equal(
    optionsEnvFile({ version: '20', q: 'say "hi" `id` $HOME', on: true }),
    'VERSION="20"\nQ="say \\"hi\\" \\`id\\` $HOME"\nON="true"\n',
  );
});

test('the generated Dockerfile: ENV per feature, a RUN carrying the folder digest, the image user back, the label; buildah 1.28 can build it', () => {
  const text = featuresDockerfile({
    from: 'docker.io/library/debian:bookworm',
    imageUser: 'dev',
    steps: [
      {
        folder: 'node_0',
        containerEnv: { NVM_DIR: '/usr/local/nvm', PATH: '${NVM_DIR}/bin:${PATH}' },
        digest: 'sha256:aa',
        userId: 'node',
      },
    ],
    metadata: [{ id: 'node', postCreateCommand: 'echo "$HOME"' }],
  });
  assert.match(text, /^ENV NVM_DIR="\/usr\/local\/nvm" PATH="\$\{NVM_DIR\}\/bin:\$\{PATH\}"$/m);
  assert.match(
    text,
    /^RUN --mount=type=bind,target=\/tmp\/dev-container-features,rw cd \/tmp\/dev-container-features\/node_0 && \.\/devcontainer-features-install\.sh # sha256:aa$/m,
  );
  assert.match(
    text,
    /^USER dev\nLABEL devcontainer.metadata="\[\{\\"id\\":\\"node\\",\\"postCreateCommand\\":\\"echo \\\\\\"\\\$HOME\\\\\\"\\"\}\]"$/m,
  );
  const plan = planDockerfile(text, 'Dockerfile', {});
  assert.deepEqual(
    plan.images.map((i) => i.ref),
    ['docker.io/library/debian:bookworm'],
  );
  assert.throws(
    () =>
      featuresDockerfile({
        from: 'x',
        imageUser: '',
        metadata: [],
        steps: [{ folder: 'a_0', containerEnv: { 'BAD NAME': 'v' }, digest: 'd', userId: 'a' }],
      }),
    /"a": its containerEnv name "BAD NAME"/,
  );
});

const node = (key: string, extra: Partial<OrderNode> = {}): OrderNode => ({
  key,
  userId: key,
  softKeys: [key],
  dependsOn: [],
  installsAfter: [],
  sortKey: key,
  ...extra,
});

test('install order: rounds, hard before soft, soft links to absent features dropped, override priority', () => {
  const order = (nodes: OrderNode[], override: string[] = []) => installOrder(nodes, override).map((n) => n.key);
  assert.deepEqual(order([node('c', { dependsOn: ['a'] }), node('b', { installsAfter: ['c', 'absent'] }), node('a')]), [
    'a',
    'c',
    'b',
  ]);
  assert.deepEqual(order([node('a'), node('b'), node('z')], ['z']), ['z', 'a', 'b']);
  assert.deepEqual(
    order([node('a', { installsAfter: ['b'] }), node('b')], ['a']),
    ['b', 'a'],
    'priority never beats a dependency',
  );
  assert.throws(
    () => order([node('a', { installsAfter: ['b'] }), node('b', { dependsOn: ['a'] })]),
    (err: Error & { code?: string }) =>
      err.code === 'E_FEATURE_ORDER' && /"a" waits for "b"; "b" waits for "a"/.test(err.message),
  );
});

const feature = (userId: string, json: Record<string, unknown>): ResolvedFeature => ({
  userId,
  source: { kind: 'local', dir: `/w/.devcontainer/${userId}` },
  json: { id: userId, version: '1', ...json },
  options: {},
});
const SETTINGS = testPlanSettings({ memoryMib: 512, protect: [] });

test("feature metadata in the plan: hooks before devcontainer.json's, the image label's first of all; mounts, customizations, entrypoint", () => {
  const config = {
    ...emptyConfig(),
    hooks: { postCreateCommand: { kind: 'single' as const, command: { kind: 'shell' as const, script: 'own' } } },
    mounts: ['type=volume,source=cache,target=/cache'],
    customizations: { vscode: { extensions: ['own.ext'] } },
  };
  const resolved: ResolvedConfig = {
    folder: '/w',
    configPath: '/w/.devcontainer/devcontainer.json',
    config,
    containerWorkspaceFolder: '/workspaces/w',
    devcontainerId: 'id52',
    problems: [],
  };
  const features = [
    feature('a', {
      postCreateCommand: 'from-a',
      mounts: [
        { type: 'volume', source: 'data-${devcontainerId}', target: '/data' },
        { type: 'volume', source: 'lost', target: '/cache' },
      ],
      customizations: { vscode: { extensions: ['a.ext'] } },
    }),
    feature('b', { postCreateCommand: ['from', 'b'], entrypoint: '/usr/local/bin/start-b' }),
  ];
  const plan = planWorkspace(resolved, SETTINGS, { languages: [] }, { features, warnings: [], errors: [] });
  assert.deepEqual(
    hookRuns(plan, 'postCreateCommand').map((r) => r.origin),
    ['a', 'b', 'devcontainer.json'],
  );
  assert.deepEqual(
    plan.volumes.filter((v) => ['/data', '/cache'].includes(v.mountPoint)).map((v) => v.name),
    ['data-id52', 'cache'],
    "the file's mount at /cache wins",
  );
  assert.deepEqual(plan.customizations.vscode, [{ extensions: ['a.ext'] }, { extensions: ['own.ext'] }]);
  assert.ok(plan.problems.some((p) => p.code === 'feature-entrypoint' && p.path === '$.features.b.entrypoint'));
  assert.ok(!plan.problems.some((p) => p.code.startsWith('features-not')));
  const withLabel = withImageMetadata(
    plan,
    [
      { id: 'ghcr.io/x/base:1', postCreateCommand: 'from-label' },
      { remoteUser: 'vscode', remoteEnv: { A: '1' } },
    ],
    new Problems(),
  );
  assert.deepEqual(
    hookRuns(withLabel, 'postCreateCommand').map((r) => r.origin),
    ['ghcr.io/x/base:1', 'a', 'b', 'devcontainer.json'],
  );
  assert.equal(withLabel.remoteUser, 'vscode');
  assert.deepEqual(withLabel.remoteEnv, { A: '1' });
});

test('resolution errors become error problems at $.features["<reference>"]', () => {
  const resolved: ResolvedConfig = {
    folder: '/w',
    config: emptyConfig(),
    containerWorkspaceFolder: '/workspaces/w',
    devcontainerId: 'id',
    problems: [],
  };
  const error = Object.assign(new Error('feature "x" was not found'), { code: 'E_FEATURE_NOT_FOUND' }) as never;
  const plan = planWorkspace(
    resolved,
    SETTINGS,
    { languages: [] },
    { features: [], warnings: [], errors: [{ feature: 'ghcr.io/x/y:1', error }] },
  );
  assert.deepEqual(
    plan.problems.map((p) => [p.severity, p.path]),
    [['error', '$.features["ghcr.io/x/y:1"]']],
  );
});
