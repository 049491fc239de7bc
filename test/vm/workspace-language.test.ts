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
import { SLOW } from '../helpers/slow';
import { testPlanSettings } from '../helpers/plan-settings';

/**
 * A folder without devcontainer.json opens on the image for its language: only package.json
 * gives the default node image (Docker Hub's name, served by a loopback registry through
 * MICROVM_REGISTRY_MIRRORS; here Debian's nodejs stands in for it). An image that cannot be
 * pulled falls back to the embedded default image, and the log says so.
 */
const SETTINGS = testPlanSettings({ memoryMib: 512 });
let tmp: string;
let registry: TestRegistry;
const savedMirrors = process.env.MICROVM_REGISTRY_MIRRORS;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-ws-lang-'));
  fs.chmodSync(tmp, 0o755);
  registry = await startRegistry(path.join(tmp, 'registry'));
  await pushImage(registry.base, 'library/node', '22-bookworm', debianImage(debianMinbase(['nodejs'])));
  process.env.MICROVM_REGISTRY_MIRRORS = `docker.io=${registry.base}`;
});

after(async () => {
  await registry?.stop();
  if (savedMirrors === undefined) delete process.env.MICROVM_REGISTRY_MIRRORS;
  else process.env.MICROVM_REGISTRY_MIRRORS = savedMirrors;
  fs.rmSync(tmp, { recursive: true, force: true });
});

function folderWith(name: string, files: Record<string, string>): string {
  const folder = path.join(tmp, name);
  fs.mkdirSync(folder, { recursive: true });
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(folder, file), text);
  return folder;
}

async function withSession(folder: string, logs: string[], body: (session: Session) => Promise<void>): Promise<void> {
  const prepared = await prepareWorkspace({
    folder,
    settings: SETTINGS,
    allowLocalEnv: [],
    onConfigChanged: async () => 'apply',
    onOverLimits: async () => true,
  });
  assert.ok(prepared);
  const session = new Session(prepared.plan, loggingEvents(logs), prepared.lifecycle);
  const steps: string[] = [];
  session.onProgress = (step) => steps.push(step);
  try {
    await session.start();
    await body(session);
  } finally {
    await session.stop();
  }
  logs.push(...steps.map((s) => `progress: ${s}`));
}

test(
  'a folder with only package.json opens on the configured node image, and the progress says which and why',
  SLOW,
  async () => {
    const folder = folderWith('web', {
      'package.json': '{"name":"web","scripts":{"start":"node index.js"}}',
      'index.js': 'console.log("hi")\n',
    });
    const logs: string[] = [];
    await withSession(folder, logs, async (session) => {
      const result = await session.running.exec({
        argv: ['node', '-e', 'console.log(process.version, require("fs").existsSync("/workspaces/web/package.json"))'],
        cwd: '/workspaces/web',
      });
      assert.equal(result.exitCode, 0, result.stderr);
      assert.match(result.stdout, /^v\d+\.\d+\.\d+ true\n$/);
    });
    assert.ok(
      logs.some((l) =>
        l.includes('package.json makes this a Node.js project, so the workspace opens on node:22-bookworm'),
      ),
      logs.join('\n'),
    );
    assert.ok(
      logs.some((l) => l.startsWith('progress: Pulling node:22-bookworm (package.json makes this a Node.js project)')),
      logs.join('\n'),
    );
  },
);

test('a language image that cannot be pulled falls back to the embedded default image, named as such in the log', async () => {
  const folder = folderWith('tool', { 'go.mod': 'module example.com/tool\n\ngo 1.22\n' });
  const logs: string[] = [];
  await withSession(folder, logs, async (session) => {
    const result = await session.running.exec({ argv: ['busybox', 'true'] });
    assert.equal(result.exitCode, 0, 'the embedded busybox image runs');
  });
  const warning = logs.find((l) => l.startsWith('warning: golang:1.23-bookworm could not be pulled'));
  assert.ok(warning && warning.includes('embedded default image'), logs.join('\n'));
});
