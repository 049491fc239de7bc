import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { prepareWorkspace, Session } from '../../engine';
import { debianImage, debianMinbase } from '../helpers/debian-images';
import { pushImage } from '../helpers/registry-push';
import { startRegistry, type TestRegistry } from '../helpers/registry-server';
import { loggingEvents } from '../helpers/session-events';
import { testPlanSettings } from '../helpers/plan-settings';

/**
 * A workspace whose devcontainer.json builds its image from a Dockerfile opens on that image:
 * the build runs in the builder microVM (FROM debian:bookworm served by a loopback registry
 * through MICROVM_REGISTRY_MIRRORS), the workspace's hooks run on the result, and the second
 * open finds the build cached.
 */
const SETTINGS = testPlanSettings({ memoryMib: 512, network: 'outbound' });
let tmp: string;
let registry: TestRegistry;
const savedMirrors = process.env.MICROVM_REGISTRY_MIRRORS;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-ws-build-'));
  fs.chmodSync(tmp, 0o755);
  registry = await startRegistry(path.join(tmp, 'registry'));
  await pushImage(registry.base, 'library/debian', 'bookworm', debianImage(debianMinbase()));
  process.env.MICROVM_REGISTRY_MIRRORS = `docker.io=${registry.base}`;
});

after(async () => {
  await registry?.stop();
  if (savedMirrors === undefined) delete process.env.MICROVM_REGISTRY_MIRRORS;
  else process.env.MICROVM_REGISTRY_MIRRORS = savedMirrors;
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('a Dockerfile workspace builds in the builder VM, opens on the result, and is a cache lookup the second time', async () => {
  const folder = path.join(tmp, 'app');
  fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
  fs.writeFileSync(
    path.join(folder, '.devcontainer', 'Dockerfile'),
    `FROM debian:bookworm\nARG FLAVOUR=plain\n# run ${process.pid}-${Date.now()}: the build cache outlives this test, so the first open must find nothing\nRUN echo "built with $FLAVOUR" > /built.txt\n`,
  );
  fs.writeFileSync(
    path.join(folder, '.devcontainer', 'devcontainer.json'),
    JSON.stringify({
      build: { dockerfile: 'Dockerfile', args: { FLAVOUR: 'args' } },
      postStartCommand: 'cat /built.txt /etc/debian_version > from-image.txt',
    }),
  );
  for (const round of [1, 2]) {
    const logs: string[] = [];
    const prepared = await prepareWorkspace({
      folder,
      settings: SETTINGS,
      allowLocalEnv: [],
      onConfigChanged: async () => 'apply',
      onOverLimits: async () => true,
    });
    assert.ok(prepared);
    const session = new Session(prepared.plan, loggingEvents(logs), prepared.lifecycle);
    try {
      await session.start();
      await session.hooksSettled();
    } finally {
      await session.stop();
    }
    const [built, version] = fs.readFileSync(path.join(folder, 'from-image.txt'), 'utf8').split('\n');
    assert.equal(built, 'built with args');
    assert.match(version!, /^12\./);
    const line = logs.find((l) => l.startsWith('image built from'));
    assert.ok(line, logs.join('\n'));
    assert.equal(line.includes('(cached'), round === 2, line);
  }
});
