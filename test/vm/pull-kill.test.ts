import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { debianBaseLayer } from '../helpers/debian-base';
import { stallBlob, startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry';
import { gzipLayer, imageOf, tarOf, type TestImage } from '../helpers/image-fixtures';
import { buildBundles, type Bundles, privateHome, runCli, waitFor } from './cli-helpers';
import { descendants, isGone } from './qemu-proc';

/**
 * `microvm pull` interrupted (Ctrl-C) mid-blob exits 130 and leaves nothing behind.
 * T18 (a): `microvm pull` SIGKILLed in the middle of a blob, then in the middle of the root
 * disk build, leaves no helper process and nothing under a final name; the next pull removes
 * what the dead writers left, says so, and stores blobs whose bytes match their digests.
 */
let bundles: Bundles;
let home: string;
let registry: FakeRegistry;
let image: TestImage;
let ref: string;
const children: ChildProcess[] = [];

before(async () => {
  bundles = await buildBundles();
  home = privateHome(['assets', 'images']);
  registry = await startFakeRegistry();
  // 16 MiB of incompressible data: a blob to stall in, and a root disk that takes a moment to build.
  image = imageOf([
    debianBaseLayer(),
    gzipLayer(tarOf([{ path: 'opt/filler.bin', data: randomBytes(16 * 1024 * 1024) }])),
  ]);
  registry.add('test/slow', '1', image);
  ref = `${registry.host}/test/slow:1`;
});

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await registry?.close();
  fs.rmSync(bundles.dir, { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
});

const env = () => ({ ...process.env, MICROVM_HOME: home, DOCKER_CONFIG: path.join(home, 'no-docker-config') });
const storeDir = (...parts: string[]) => path.join(home, 'store', ...parts);
const list = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);

function startPull(): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [bundles.cli, 'pull', ref], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return { child, stderr: () => stderr };
}

/** SIGKILLs `child` and checks that every process it had started is gone within 5 s. */
async function killAndExpectNoHelpers(child: ChildProcess): Promise<Array<{ pid: number; comm: string }>> {
  const helpers = descendants(child.pid as number);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  for (const helper of helpers) {
    assert.ok(
      await waitFor(() => isGone(helper.pid), 5000),
      `${helper.comm} (${helper.pid}) outlived the killed pull by 5 s`,
    );
  }
  return helpers;
}

const partialName = (pid: number) => new RegExp(`^\\.tmp-${pid}-[0-9a-f]+\\.partial$`);
const layerAt = (i: number) => () => {
  const layer = image.layers[i];
  assert.ok(layer, `the test image has a layer ${i}`);
  return layer;
};
const [baseLayer, slowLayer] = [layerAt(0), layerAt(1)];
const requestsFor = (digest: string) => registry.log.filter((r) => r.path.endsWith(`/blobs/${digest}`)).length;

/**
 * A pull stalled 1 MiB into its second layer, the first one stored (so that the kills in the
 * tests find it stored and fetch it no more), and its partial downloads.
 */
async function startStalledPull() {
  registry.intercept = stallBlob(registry, slowLayer().digest, 1024 * 1024);
  const pull = startPull();
  const pid = pull.child.pid as number;
  const partialOf = () => list(storeDir('tmp')).filter((name) => partialName(pid).test(name));
  const stalled = () => partialOf().some((name) => fs.statSync(storeDir('tmp', name)).size >= 1024 * 1024);
  const baseStored = () => fs.existsSync(storeDir('blobs', 'sha256', baseLayer().digest.slice(7)));
  assert.ok(
    await waitFor(() => stalled() && baseStored(), 30_000),
    `the pull did not stall mid-blob: ${pull.stderr()}`,
  );
  return { pull, pid, partialOf };
}

test('Ctrl-C (SIGINT) mid-blob aborts the pull: exit 130, no partial file, no image record, no helper process', async () => {
  const { pull, pid, partialOf } = await startStalledPull();
  const helpers = descendants(pid);
  const exited = new Promise<number | null>((resolve) => pull.child.once('exit', (code) => resolve(code)));
  const interrupted = performance.now();
  pull.child.kill('SIGINT');
  assert.equal(await exited, 130, pull.stderr());
  process.stderr.write(`# microvm pull: SIGINT to exit ${(performance.now() - interrupted).toFixed(0)} ms\n`);
  assert.match(pull.stderr(), /microvm: interrupted/);
  for (const helper of helpers)
    assert.ok(isGone(helper.pid), `${helper.comm} (${helper.pid}) outlived the interrupted pull`);
  assert.deepEqual(partialOf(), [], 'the partial download was removed');
  assert.deepEqual(list(storeDir('refs')), [], 'no image record');
});

test('SIGKILL mid-blob leaves only a partial file in store/tmp, no blob under its digest and no image record', async () => {
  const { pull, partialOf } = await startStalledPull();
  await killAndExpectNoHelpers(pull.child);
  assert.equal(partialOf().length, 1, 'the killed writer left its partial download');
  assert.ok(
    !fs.existsSync(storeDir('blobs', 'sha256', slowLayer().digest.slice(7))),
    'no blob under the stalled digest',
  );
  assert.deepEqual(list(storeDir('refs')), [], 'no image record');
});

test("SIGKILL mid-disk-build leaves no mke2fs; the next start removes the dead writers' partial blob and disk and says so", async () => {
  registry.intercept = undefined;
  const [stalledPartial] = list(storeDir('tmp'));
  const building = startPull();
  const halfDisks = () =>
    list(path.join(home, 'rootfs')).filter((name) => name.startsWith(`.tmp-${building.child.pid}-`));
  // The disk build, not the `mke2fs -V` version probe before it.
  const isMkfs = () =>
    halfDisks().length > 0 && descendants(building.child.pid as number).some((p) => p.comm === 'mke2fs');
  assert.ok(await waitFor(isMkfs, 60_000, 10), `mke2fs never ran: ${building.stderr()}`);
  assert.match(
    building.stderr(),
    new RegExp(`removed what a killed process left: .*${stalledPartial!.replaceAll('.', '\\.')}`),
  );
  assert.ok(!list(storeDir('tmp')).includes(stalledPartial!), 'the stalled partial download was removed');
  const helpers = await killAndExpectNoHelpers(building.child);
  assert.ok(
    helpers.some((p) => p.comm === 'mke2fs'),
    'mke2fs was running at the kill',
  );
  const halfDisk = halfDisks();
  assert.equal(halfDisk.length, 1, `the killed build left its half-written disk: ${list(path.join(home, 'rootfs'))}`);

  const again = await runCli(bundles.cli, ['pull', ref], { env: env() });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout.toString().trim(), image.manifest.digest);
  assert.match(again.stderr, new RegExp(`removed what a killed process left: .*rootfs/${halfDisk[0]}`));
  const rootfs = list(path.join(home, 'rootfs')).sort();
  assert.equal(rootfs.length, 2, `one disk and its record: ${rootfs}`);
  assert.match(rootfs.join(' '), /^[0-9a-f]{64}\.ext4 [0-9a-f]{64}\.json$/);
  assert.deepEqual(list(storeDir('tmp')), []);
  for (const name of list(storeDir('blobs', 'sha256'))) {
    const hex = createHash('sha256')
      .update(fs.readFileSync(storeDir('blobs', 'sha256', name)))
      .digest('hex');
    assert.equal(hex, name, 'every stored blob matches its digest');
  }
  for (const blob of [image.config, ...image.layers])
    assert.ok(fs.existsSync(storeDir('blobs', 'sha256', blob.digest.slice(7))), `${blob.digest} stored`);
  assert.equal(requestsFor(baseLayer().digest), 1, 'the layer stored before the first kill was not downloaded again');
});
