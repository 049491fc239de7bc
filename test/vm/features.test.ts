import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { prepareWorkspace, Session, SessionEvents } from '../../engine';
import { microvmHome } from '../../engine/paths';
import { debianImage, debianMinbase } from '../helpers/debian-images';
import { feature, featureArtifact, pushFeature, writeFeature } from '../helpers/feature-artifacts';
import { pushImage } from '../helpers/registry-push';
import { startRegistry, type TestRegistry } from '../helpers/registry-server';
import { liveProcessesMentioning } from './qemu-proc';
import { SLOW } from '../helpers/slow';
import { testPlanSettings } from '../helpers/plan-settings';

/**
 * Dev container features installed for real: published as OCI artifacts (the spec's media
 * types) on Debian's docker-registry on loopback, reached as ghcr.io through
 * MICROVM_REGISTRY_MIRRORS (debian:bookworm as docker.io the same way), and a local feature
 * under .devcontainer/. The builder VM installs them on the image; the workspace VM runs on it.
 */
const SETTINGS = testPlanSettings({ memoryMib: 512, network: 'outbound' });
const FEATURES = 'ghcr.io/devcontainers/features';
let tmp: string;
let registry: TestRegistry;
const savedMirrors = process.env.MICROVM_REGISTRY_MIRRORS;

before(async () => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-features-')));
  fs.chmodSync(tmp, 0o755);
  registry = await startRegistry(path.join(tmp, 'registry'));
  await pushImage(registry.base, 'library/debian', 'bookworm', debianImage(debianMinbase()));
  // greeter comes after base-tool (installsAfter); its install.sh proves it, as root in its own folder.
  await pushFeature(
    registry.base,
    'devcontainers/features/greeter',
    ['1', '1.0', '1.0.0', 'latest'],
    featureArtifact(
      feature(
        {
          id: 'greeter',
          version: '1.0.0',
          name: 'Greeter',
          options: {
            greeting: { type: 'string', default: 'hi', proposals: ['hi', 'hello'] },
            loud: { type: 'boolean', default: false },
          },
          installsAfter: [`${FEATURES}/base-tool`],
          containerEnv: { GREETER_HOME: '/opt/greeter', PATH: '/opt/greeter/bin:${PATH}' },
          postCreateCommand: 'echo greeter >> hooks.log',
        },
        'test -f /etc/base-tool\necho "$GREETING $LOUD uid=$(id -u) cwd=$PWD remote=$_REMOTE_USER home=$_REMOTE_USER_HOME env=$GREETER_HOME" > /etc/greeting',
      ),
    ),
  );
  await pushFeature(
    registry.base,
    'devcontainers/features/base-tool',
    ['1'],
    featureArtifact(feature({ id: 'base-tool', version: '1.2.0' }, 'echo base > /etc/base-tool'), {
      gzip: true,
      annotate: false,
    }),
  );
  await pushFeature(
    registry.base,
    'devcontainers/features/cycle-a',
    ['1'],
    featureArtifact(feature({ id: 'cycle-a', version: '1.0.0', dependsOn: { [`${FEATURES}/cycle-b:1`]: {} } }, 'true')),
  );
  await pushFeature(
    registry.base,
    'devcontainers/features/cycle-b',
    ['1'],
    featureArtifact(feature({ id: 'cycle-b', version: '1.0.0', dependsOn: { [`${FEATURES}/cycle-a:1`]: {} } }, 'true')),
  );
  process.env.MICROVM_REGISTRY_MIRRORS = `docker.io=${registry.base},ghcr.io=${registry.base}`;
});

after(async () => {
  await registry?.stop();
  if (savedMirrors === undefined) delete process.env.MICROVM_REGISTRY_MIRRORS;
  else process.env.MICROVM_REGISTRY_MIRRORS = savedMirrors;
  fs.rmSync(tmp, { recursive: true, force: true });
});

function events(logs: string[], output: string[] = []): SessionEvents {
  return {
    log: (line) => logs.push(line),
    baking: () => undefined,
    booting: () => undefined,
    portsChanged: () => undefined,
    exited: (error) => logs.push(`exited: ${error.message}`),
    output: (label, chunk) => {
      if (label !== 'build') output.push(chunk.toString());
    },
    hookFailed: (d) => logs.push(`hook failed: ${d}`),
  };
}

function workspace(name: string, config: Record<string, unknown>): string {
  const folder = path.join(tmp, name);
  fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
  fs.writeFileSync(path.join(folder, '.devcontainer', 'devcontainer.json'), JSON.stringify(config));
  return folder;
}

function prepare(folder: string) {
  return prepareWorkspace({
    folder,
    settings: SETTINGS,
    allowLocalEnv: [],
    onConfigChanged: async () => 'apply',
    onOverLimits: async () => true,
  });
}

async function assertNothingRunning(): Promise<void> {
  const left = () => liveProcessesMentioning(microvmHome()).filter((p) => /qemu|virtiofsd|microvm/.test(p.program));
  for (let i = 0; i < 50 && left().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(left(), [], 'no QEMU, virtiofsd or helper is left');
}

test('features install in order in the builder VM: options, containerEnv, root in their folder, a local one, their hooks first; cached the second time', async () => {
  const folder = workspace('app', {
    image: 'debian:bookworm',
    features: {
      [`${FEATURES}/greeter:1`]: { greeting: 'hello', loud: true },
      [`${FEATURES}/base-tool:1`]: {},
      './features/local-tool': {},
    },
    postCreateCommand: 'echo config >> hooks.log',
    postStartCommand: 'cat /etc/greeting /etc/local-tool > installed.txt; echo "$GREETER_HOME:$PATH" > env.txt',
    // The image's environment as it is: Debian's /etc/profile would reset PATH in a login shell's probe.
    userEnvProbe: 'none',
  });
  writeFeature(
    path.join(folder, '.devcontainer', 'features', 'local-tool'),
    feature(
      {
        id: 'local-tool',
        version: '0.1.0',
        installsAfter: [`${FEATURES}/greeter`],
        postCreateCommand: ['sh', '-c', 'echo local >> hooks.log'],
      },
      `echo "local after $(cut -d" " -f1 /etc/greeting)" > /etc/local-tool # run ${process.pid}-${Date.now()}: new to the builder's cache`,
    ),
  );
  for (const round of [1, 2]) {
    const logs: string[] = [];
    const started = performance.now();
    const prepared = await prepare(folder);
    assert.ok(prepared);
    assert.deepEqual(
      prepared.problems.filter((p) => p.severity === 'error'),
      [],
    );
    assert.deepEqual(
      prepared.plan.features.map((f) => f.json.id),
      ['base-tool', 'greeter', 'local-tool'],
    );
    const session = new Session(prepared.plan, events(logs), prepared.lifecycle);
    try {
      await session.start();
      await session.hooksSettled();
    } finally {
      await session.stop();
    }
    const installed = logs.find((l) => l.startsWith('features '));
    assert.ok(installed, logs.join('\n'));
    assert.equal(installed.includes('(cached'), round === 2, installed);
    console.log(`round ${round}: ${Math.round(performance.now() - started)} ms`);
  }
  assert.equal(
    fs.readFileSync(path.join(folder, 'installed.txt'), 'utf8'),
    'hello true uid=0 cwd=/tmp/dev-container-features/greeter_1 remote=root home=/root env=/opt/greeter\nlocal after hello\n',
  );
  assert.match(
    fs.readFileSync(path.join(folder, 'env.txt'), 'utf8'),
    /^\/opt\/greeter:\/opt\/greeter\/bin:\/usr\/local\/sbin:/,
  );
  assert.equal(
    fs.readFileSync(path.join(folder, 'hooks.log'), 'utf8'),
    'greeter\nlocal\nconfig\n',
    "feature hooks in install order, then the configuration's (once per container)",
  );
  await assertNothingRunning();
});

test('bad features are clear errors before any VM (unknown (404), a cycle); an option off its declared type is a warning', async () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [
      { [`${FEATURES}/no-such-feature:1`]: {} },
      /feature "ghcr.io\/devcontainers\/features\/no-such-feature:1" was not found .*404.*check its name and version tag/,
    ],
    [
      { [`${FEATURES}/cycle-a:1`]: {} },
      /install order has a cycle: "ghcr.io\/devcontainers\/features\/cycle-a:1" waits for "ghcr.io\/devcontainers\/features\/cycle-b:1"/,
    ],
  ];
  for (const [i, [features, pattern]] of cases.entries()) {
    const prepared = await prepare(workspace(`bad-${i}`, { image: 'debian:bookworm', features }));
    const errors = prepared?.problems.filter((p) => p.severity === 'error') ?? [];
    assert.equal(errors.length, 1, JSON.stringify(prepared?.problems));
    assert.match(errors[0]!.message, pattern);
    assert.match(errors[0]!.path, /^\$\.features/);
  }
  // As the reference CLI does, a value the feature does not declare goes to install.sh as written.
  const offType = await prepare(
    workspace('off-type', { image: 'debian:bookworm', features: { [`${FEATURES}/greeter:1`]: { loud: 'maybe' } } }),
  );
  const problems = offType?.problems ?? [];
  assert.deepEqual(
    problems.filter((p) => p.severity === 'error'),
    [],
  );
  const warning = problems.find((p) => p.severity === 'warning' && p.path.startsWith('$.features'));
  assert.match(warning?.message ?? '', /option "loud" is "maybe", and the feature declares true or false/);
  await assertNothingRunning();
});

test(
  "features install on a Dockerfile's result, with its USER as the container and remote user, and on the embedded default image",
  SLOW,
  async () => {
    // The image's user may not write the shared folder here: the hook's output says what the feature saw.
    const folder = workspace('built', {
      build: { dockerfile: 'Dockerfile' },
      features: { './who': {} },
      postStartCommand: 'cat /etc/who',
    });
    fs.writeFileSync(
      path.join(folder, '.devcontainer', 'Dockerfile'),
      'FROM debian:bookworm\nRUN useradd -m -u 1000 dev\nUSER dev\n',
    );
    const who = feature(
      { id: 'who', version: '1.0.0' },
      `echo "$(id -un) container=$_CONTAINER_USER remote=$_REMOTE_USER home=$_REMOTE_USER_HOME" > /etc/who # ${process.pid}-${Date.now()}`,
    );
    writeFeature(path.join(folder, '.devcontainer', 'who'), who);
    const plain = workspace('plain', { features: { './who': {} }, postStartCommand: 'cat /etc/who' });
    writeFeature(path.join(plain, '.devcontainer', 'who'), who);
    for (const [dir, expected] of [
      [folder, 'root container=dev remote=dev home=/home/dev\n'],
      [plain, 'root container=root remote=root home=/root\n'],
    ]) {
      const logs: string[] = [];
      const output: string[] = [];
      const prepared = await prepare(dir!);
      assert.ok(prepared);
      const session = new Session(prepared.plan, events(logs, output), prepared.lifecycle);
      try {
        await session.start();
        await session.hooksSettled();
      } finally {
        await session.stop();
      }
      assert.equal(output.join(''), expected, logs.join('\n'));
    }
    await assertNothingRunning();
  },
);
