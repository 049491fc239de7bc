import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ContentStore } from '../../engine/image/content-store';
import { parseMirrorList } from '../../engine/image/registry/mirrors';
import { resolveFeatures, type ResolveFeaturesOptions } from '../../engine/features/resolve';
import { wrapperScript } from '../../engine/features/dockerfile';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry';
import { feature, featureArtifact, writeFeature } from '../helpers/feature-artifacts';

/**
 * Resolving features on the host against a registry on loopback (reached as ghcr.io through a
 * mirror) and local folders: metadata from the annotation or the layer, options with typed
 * checks, dependsOn, the install order, and each error naming its feature.
 */
let tmp: string;
let registry: FakeRegistry;
let store: ContentStore;
let ws: string;
const savedHome = process.env.MICROVM_HOME;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-features-'));
  process.env.MICROVM_HOME = path.join(tmp, 'home');
  store = new ContentStore(path.join(tmp, 'store'));
  registry = await startFakeRegistry();
  const publish = (id: string, json: Record<string, unknown>, opts: { gzip?: boolean; annotate?: boolean } = {}) =>
    registry.add(
      `devcontainers/features/${id}`,
      '1',
      featureArtifact(feature({ id, version: '1.0.0', ...json }, 'true'), opts),
    );
  publish('common-utils', {
    options: {
      installZsh: { type: 'boolean', default: true },
      username: { type: 'string', default: 'automatic', proposals: ['vscode'] },
    },
  });
  publish(
    'node',
    {
      options: {
        version: { type: 'string', default: 'lts', proposals: ['lts', '20'] },
        nodeGypDependencies: { type: 'boolean', default: true },
      },
      installsAfter: ['ghcr.io/devcontainers/features/common-utils'],
      containerEnv: { NVM_DIR: '/usr/local/share/nvm' },
    },
    { gzip: true, annotate: false },
  );
  publish('github-cli', {
    options: { installDirectlyFromGitHubRelease: { type: 'boolean', default: true } },
    dependsOn: { 'ghcr.io/devcontainers/features/common-utils:1': { installZsh: false } },
  });
  publish('python', { options: { version: { type: 'string', enum: ['3.11', '3.12'], default: '3.12' } } });
  publish('loop-a', { dependsOn: { 'ghcr.io/devcontainers/features/loop-b:1': {} } });
  publish('loop-b', { dependsOn: { 'ghcr.io/devcontainers/features/loop-a:1': {} } });
  ws = path.join(tmp, 'ws');
  writeFeature(
    path.join(ws, '.devcontainer', 'features', 'local-tool'),
    feature({ id: 'local-tool', version: '0.1.0', installsAfter: ['ghcr.io/devcontainers/features/node'] }, 'true'),
  );
  writeFeature(path.join(ws, 'elsewhere'), feature({ id: 'elsewhere', version: '0.1.0' }, 'true'));
  writeFeature(
    path.join(ws, '.devcontainer', 'local-features', 'setup-user'),
    feature(
      { id: 'setup-user', name: 'Set up the user', options: { shell: { type: 'string', default: 'zsh' } } },
      'true',
    ),
  );
});

after(async () => {
  await registry.close();
  if (savedHome === undefined) delete process.env.MICROVM_HOME;
  else process.env.MICROVM_HOME = savedHome;
  fs.rmSync(tmp, { recursive: true, force: true });
});

function resolve(features: Record<string, unknown>, extra: Partial<ResolveFeaturesOptions> = {}) {
  return resolveFeatures({
    features,
    folder: ws,
    configDir: path.join(ws, '.devcontainer'),
    store,
    mirrors: parseMirrorList(`ghcr.io=${registry.base}`),
    ...extra,
  });
}

test('features resolve through the mirror: options over defaults, dependsOn added, installsAfter and local features ordered', async () => {
  const result = await resolve({
    './features/local-tool': {},
    'ghcr.io/devcontainers/features/node:1': '20',
    'ghcr.io/devcontainers/features/github-cli:1': true,
  });
  assert.deepEqual(result.errors, []);
  assert.deepEqual(
    result.features.map((f) => f.userId),
    [
      'ghcr.io/devcontainers/features/common-utils:1',
      'ghcr.io/devcontainers/features/github-cli:1',
      'ghcr.io/devcontainers/features/node:1',
      './features/local-tool',
    ],
  );
  const node = result.features.find((f) => f.json.id === 'node');
  assert.deepEqual(node?.options, { version: '20', nodeGypDependencies: true });
  assert.equal(node?.source.kind, 'oci');
  assert.deepEqual(
    result.features[0]!.options,
    { installZsh: false, username: 'automatic' },
    'dependsOn brings its own options',
  );
  const blobReads = registry.log.filter((r) => r.path.includes('/blobs/')).map((r) => r.path.split('/')[4]);
  assert.deepEqual(
    [...new Set(blobReads)],
    ['node'],
    'only the feature without the annotation (node) was read from its layer',
  );
});

test('a local feature without a version (as devcontainers/images keeps them) resolves, as in the reference CLI', async () => {
  const result = await resolve({ './local-features/setup-user': {} });
  assert.deepEqual(result.errors, []);
  assert.equal(result.features[0]?.json.version, undefined);
  assert.deepEqual(result.features[0]?.options, { shell: 'zsh' });
  assert.match(
    wrapperScript('./local-features/setup-user', result.features[0]!.json),
    /^feature='Set up the user \(\.\/local-features\/setup-user\)'$/m,
  );
});

test('overrideFeatureInstallOrder puts a feature first when its dependencies allow', async () => {
  const result = await resolve(
    { 'ghcr.io/devcontainers/features/python:1': {}, 'ghcr.io/devcontainers/features/node:1': {} },
    { overrideFeatureInstallOrder: ['ghcr.io/devcontainers/features/python'] },
  );
  assert.deepEqual(
    result.features.map((f) => f.json.id),
    ['python', 'node'],
  );
});

test('deprecated short ids map to ghcr.io/devcontainers/features/<id>:1', async () => {
  const result = await resolve({ node: 'lts' });
  assert.deepEqual(result.errors, []);
  assert.equal(
    result.features[0]?.source.kind === 'oci' && result.features[0]?.source.ref,
    'ghcr.io/devcontainers/features/node:1',
  );
});

test('a value outside the declared type or enum is passed as written with a warning, as the reference CLI passes it', async () => {
  const result = await resolve({
    'ghcr.io/devcontainers/features/python:1': { version: '3.10' },
    'ghcr.io/devcontainers/features/node:1': { version: 22, nodeGypDependencies: 'yes' },
  });
  assert.deepEqual(result.errors, []);
  const options = Object.fromEntries(result.features.map((f) => [f.json.id, f.options]));
  assert.deepEqual(options.python, { version: '3.10' });
  assert.deepEqual(options.node, { version: '22', nodeGypDependencies: 'yes' });
  assert.deepEqual(
    result.warnings.map((w) => [w.feature, w.message]),
    [
      [
        'ghcr.io/devcontainers/features/python:1',
        'option "version" is "3.10", and the feature declares one of "3.11", "3.12"',
      ],
      [
        'ghcr.io/devcontainers/features/node:1',
        'option "nodeGypDependencies" is "yes", and the feature declares true or false',
      ],
    ],
  );
  assert.match(result.warnings[0]!.consequence, /install\.sh gets "3\.10" as written/);
});

test('each error names the feature, the option and the value, and what to do', async () => {
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [
      { 'ghcr.io/devcontainers/features/missing:1': {} },
      'E_FEATURE_NOT_FOUND',
      /feature "ghcr.io\/devcontainers\/features\/missing:1" was not found.*check its name and version tag/,
    ],
    [
      { 'ghcr.io/devcontainers/features/node:1': { nodeGypDependencies: { on: true } } },
      'E_FEATURE_OPTION',
      /option "nodeGypDependencies" is a boolean option, and \{"on":true\} is not a valid value; write true or false/,
    ],
    [
      { 'ghcr.io/devcontainers/features/loop-a:1': {} },
      'E_FEATURE_ORDER',
      /cycle: .*loop-a.* waits for .*loop-b.*; .*loop-b.* waits for .*loop-a/,
    ],
    [{ '../elsewhere': {} }, 'E_FEATURE_REF', /outside .*\.devcontainer.*move it there/],
    [{ 'https://example.com/devcontainer-feature-go.tgz': {} }, 'E_FEATURE_REF', /tarball URL/],
    [{ frobnicate: {} }, 'E_FEATURE_REF', /short feature id/],
    [
      { 'codspace/myfeatures/helloworld@1.0.0': {} },
      'E_FEATURE_REF',
      /"codspace\/myfeatures\/helloworld@1.0.0" is the deprecated GitHub-release form .*ghcr\.io\/<owner>\/<repo>\/<feature>:1/,
    ],
  ];
  for (const [features, code, pattern] of cases) {
    const result = await resolve(features);
    assert.equal(result.features.length, 0);
    assert.equal(result.errors[0]?.error.code, code, JSON.stringify(features));
    assert.match(result.errors[0].error.message, pattern);
  }
});

test('an undeclared option is a warning, and install.sh still gets it', async () => {
  const result = await resolve({ 'ghcr.io/devcontainers/features/python:1': { extra: 'x' } });
  assert.equal(result.features[0]?.options.extra, 'x');
  assert.match(result.warnings[0]!.message, /option "extra" is not one the feature declares/);
});

test('aborting stops a stalled feature manifest request at once with E_ABORTED, not a feature error', async () => {
  let stalled!: () => void;
  const reached = new Promise<void>((resolve) => (stalled = resolve));
  // The registry takes the request and never answers.
  registry.intercept = (req) => {
    if (!/manifests/.test(req.url ?? '')) return false;
    stalled();
    return true;
  };
  try {
    const controller = new AbortController();
    const resolving = resolve({ 'ghcr.io/devcontainers/features/python:1': {} }, { signal: controller.signal });
    await reached;
    const aborted = performance.now();
    controller.abort();
    const result = await resolving;
    const elapsed = performance.now() - aborted;
    assert.ok(elapsed < 2000, `the request stopped ${elapsed.toFixed(0)} ms after the abort`);
    assert.equal(result.errors.length, 1);
    assert.equal(result.errors[0]!.error.code, 'E_ABORTED', result.errors[0]!.error.message);
  } finally {
    delete registry.intercept;
  }
});
