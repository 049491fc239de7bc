import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pushComposeImages } from '../helpers/compose-images';
import { SLOW } from '../helpers/slow';
import { startRegistry, type TestRegistry } from '../helpers/registry-server';
import { buildBundles, Bundles, runCli } from './cli-helpers';

/**
 * The CLI on a compose workspace: `up` lists the services and their forwards, `ports` lists
 * every forward with its service, `logs` prints a service's output, `down` stops them all.
 * The db is Debian's redis-server (the stand-in image of test/vm/compose.test.ts).
 */
let bundles: Bundles | undefined;
let registry: TestRegistry | undefined;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-cli-compose-'));
fs.chmodSync(tmp, 0o755);
const folder = path.join(tmp, 'shop');

before(async () => {
  if (SLOW.skip) return; // nothing to set up for a skipped test
  bundles = await buildBundles();
  registry = await startRegistry(path.join(tmp, 'registry'));
  await pushComposeImages(registry.base);
  fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
  fs.writeFileSync(
    path.join(folder, '.devcontainer', 'devcontainer.json'),
    JSON.stringify({
      dockerComposeFile: ['docker-compose.yml'],
      service: 'app',
      workspaceFolder: '/workspaces/shop',
      forwardPorts: ['db:6379'],
    }),
  );
  fs.writeFileSync(
    path.join(folder, '.devcontainer', 'docker-compose.yml'),
    [
      'services:',
      '  app:',
      '    image: node:22-bookworm',
      '    volumes: ["..:/workspaces/shop"]',
      '  db:',
      '    image: redis:7-bookworm',
      '    command: ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no"]',
      '    expose: ["6379"]',
    ].join('\n'),
  );
});

after(async () => {
  if (bundles) {
    await cli(['down', '--workspace-folder', folder]).catch(() => undefined);
    // down suspends the VM for the next up: rm takes its memory (on /dev/shm), disks and record.
    await cli(['rm', '--force', '--workspace-folder', folder]).catch(() => undefined);
    fs.rmSync(bundles.dir, { recursive: true, force: true });
  }
  await registry?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const cli = (args: string[]) =>
  runCli(bundles!.cli, args, { env: { MICROVM_REGISTRY_MIRRORS: `docker.io=${registry!.base}` } }); // set by before()

// Slow tier (about 90 s under TCG): compose.test.ts runs the same services through the engine in CI.
test('up lists the services and their forwards; ports and logs show them; down stops them', SLOW, async () => {
  const up = await cli(['up', '--workspace-folder', folder]);
  assert.equal(up.code, 0, up.stderr);
  const result = JSON.parse(up.stdout.toString().trim().split('\n').pop() as string);
  assert.equal(result.outcome, 'success');
  assert.deepEqual(result.services, ['db']);
  assert.equal(result.serviceForwards[0].service, 'db');
  assert.equal(result.serviceForwards[0].port, 6379);
  assert.match(result.serviceForwards[0].localAddr, /^127\.0\.0\.1:\d+$/);

  const ports = await cli(['ports', '--workspace-folder', folder, '--json']);
  assert.equal(ports.code, 0, ports.stderr);
  assert.deepEqual(
    JSON.parse(ports.stdout.toString()).filter((r: { service: string }) => r.service === 'db'),
    result.serviceForwards,
  );
  const table = await cli(['ports', '--workspace-folder', folder]);
  assert.match(table.stdout.toString(), /^SERVICE\s+PORT\s+LOCAL ADDRESS\ndb\s+6379\s+127\.0\.0\.1:\d+/m);

  let logs = '';
  for (let i = 0; i < 50 && !/Ready to accept connections/.test(logs); i++) {
    logs = (await cli(['logs', '--workspace-folder', folder, 'db', '--tail', '50'])).stdout.toString();
    if (!/Ready to accept connections/.test(logs)) await new Promise((r) => setTimeout(r, 200));
  }
  assert.match(logs, /Ready to accept connections/);
  const unknown = await cli(['logs', '--workspace-folder', folder, 'web']);
  assert.equal(unknown.code, 125);
  assert.match(unknown.stderr, /E_BAD_OPTION.*has no service "web" \(it has app, db\)/);

  const down = await cli(['down', '--workspace-folder', folder]);
  assert.equal(down.code, 0, down.stderr);
  const stopped = await cli(['ports', '--workspace-folder', folder]);
  assert.equal(stopped.code, 1);
  assert.match(stopped.stderr, /is not running/);
  assert.match(
    (await cli(['logs', '--workspace-folder', folder, 'db'])).stdout.toString(),
    /Ready to accept connections/,
    'the log outlives the service',
  );
});
