import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Image, type BuildProgress } from '../../engine';
import { homePaths } from '../../engine/paths';
import { debianBaseLayer } from '../helpers/debian-base';
import { stallBlob, startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry';
import { gzipLayer, imageOf, tarOf, type TestImage } from '../helpers/image-fixtures';
import { privateHome, waitFor } from './cli-helpers';
import { descendants, isGone } from './qemu-proc';

/**
 * Image.build aborted in each phase (the pull, the root disk's mke2fs and its extended
 * attributes pass, the bake) fails with E_ABORTED, leaves no helper process (QEMU, mke2fs,
 * debugfs), no new temporary file under MICROVM_HOME or in the run dir, and nothing new in
 * os.tmpdir() (a private TMPDIR for this file, which the helpers inherit too); the next build
 * of the same image succeeds and boots.
 * Each test prints how long the abort took to take effect (signal to rejection); measured on
 * a shared 2-core TCG host (three runs): 11-21 ms in the pull, 44-88 ms in mke2fs, 34-125 ms in
 * the bake's boot. The file takes 26-61 s (load average 10-19), most of it the last test's bake.
 */
let home: string;
let registry: FakeRegistry;
let image: TestImage;
let ref: string;
const savedHome = process.env.MICROVM_HOME;
const savedTmp = process.env.TMPDIR;
let tmp: string;
const FILLER_BYTES = 8 * 1024 * 1024;
/** Files with an extended attribute each (a value of its own): the xattrs pass writes one value file per file. */
const XATTR_FILES = 4000;

before(async () => {
  home = privateHome(['assets', 'images']);
  process.env.MICROVM_HOME = home;
  // os.tmpdir() follows TMPDIR: what the engine and its helpers leave there is this file's to see.
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-abort-tmp-'));
  process.env.TMPDIR = tmp;
  registry = await startFakeRegistry();
  // Incompressible: a blob to stall in, and a root disk that takes a moment to build.
  const labelled = Array.from({ length: XATTR_FILES }, (_, i) => ({
    path: `opt/labelled/f${i}`,
    data: '',
    xattrs: new Map([['user.label', Buffer.from(`value ${i}`)]]),
  }));
  image = imageOf([
    debianBaseLayer(),
    gzipLayer(
      tarOf([
        { path: 'opt/filler.bin', data: randomBytes(FILLER_BYTES) },
        { path: 'opt/labelled/', type: 'dir' },
        ...labelled,
      ]),
    ),
  ]);
  registry.add('test/abort', '1', image);
  ref = `${registry.host}/test/abort:1`;
});

after(async () => {
  await registry?.close();
  fs.rmSync(home, { recursive: true, force: true });
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  fs.rmSync(tmp, { recursive: true, force: true });
  if (savedHome === undefined) delete process.env.MICROVM_HOME;
  else process.env.MICROVM_HOME = savedHome;
});

/** Every file and directory under MICROVM_HOME (not following the shared assets) and in the run dir. */
function listing(): Set<string> {
  const found = new Set<string>();
  const walk = (dir: string, label: string): void => {
    for (const entry of fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }) : []) {
      found.add(`${label}/${entry.name}`);
      if (entry.isDirectory()) walk(path.join(dir, entry.name), `${label}/${entry.name}`);
    }
  };
  walk(home, '~');
  walk(homePaths.runDir(), 'run');
  return found;
}

const list = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);
const helperNames = /qemu|mke2fs|debugfs|microvm-launch|virtiofsd/;
const helpers = () => descendants(process.pid).filter((p) => helperNames.test(p.comm) && !isGone(p.pid));

/**
 * Starts a build, aborts it once `ready` holds, and checks the failure and what it left.
 * Returns the milliseconds from abort() to the build's rejection.
 */
async function abortWhen(
  phase: string,
  ready: (events: BuildProgress[]) => boolean,
  options: { pullPolicy?: 'always' } = {},
): Promise<number> {
  const before = listing();
  const tmpBefore = new Set(list(tmp));
  const events: BuildProgress[] = [];
  const controller = new AbortController();
  const build = Image.build({ ref, ...options, signal: controller.signal, onProgress: (e) => events.push(e) });
  const outcome = build.then(
    () => undefined,
    (err: unknown) => err,
  );
  const reached = await Promise.race([waitFor(() => ready(events), 180_000, 10), outcome.then(() => false)]);
  assert.ok(reached, `the build never reached the ${phase} phase: ${JSON.stringify(events.slice(-3))}`);
  const aborted = performance.now();
  controller.abort();
  const err = (await outcome) as (Error & { code?: string }) | undefined;
  const ms = performance.now() - aborted;
  process.stderr.write(`# abort during ${phase}: ${ms.toFixed(0)} ms to take effect\n`);
  assert.equal(err?.code, 'E_ABORTED', `expected E_ABORTED, got ${err?.stack}`);
  assert.equal(err?.name, 'AbortError');
  assert.deepEqual(helpers(), [], 'no helper process outlives the abort');
  const added = [...listing()].filter((name) => !before.has(name));
  assert.deepEqual(
    added.filter((name) => /\.tmp-|\.partial/.test(path.basename(name))),
    [],
    'no temporary file is left',
  );
  assert.deepEqual(
    list(tmp).filter((name) => !tmpBefore.has(name)),
    [],
    'nothing new is left in os.tmpdir()',
  );
  return ms;
}

const blobPartial = (events: BuildProgress[]) =>
  events.some((e) => e.phase === 'pull' && e.digest === image.layers[1]!.digest && e.bytes >= 1024 * 1024);

test('an abort before the build starts fails at once', async () => {
  await assert.rejects(Image.build({ ref, signal: AbortSignal.abort() }), { code: 'E_ABORTED', name: 'AbortError' });
});

test('an abort during the pull stops the stalled download; no record, no partial blob', async () => {
  registry.intercept = stallBlob(registry, image.layers[1]!.digest, 1024 * 1024);
  await abortWhen('pull', blobPartial, { pullPolicy: 'always' });
  registry.intercept = undefined;
  assert.deepEqual(list(path.join(home, 'store', 'refs')), [], 'no image record');
  assert.ok(
    !fs.existsSync(path.join(home, 'store', 'blobs', 'sha256', image.layers[1]!.digest.slice(7))),
    'no blob under the stalled digest',
  );
});

test('an abort while mke2fs builds the root disk kills it; no disk is cached', async () => {
  const mkfsRuns = () => descendants(process.pid).some((p) => p.comm === 'mke2fs');
  await abortWhen('rootfs', (events) => events.some((e) => e.phase === 'rootfs' && e.step === 'mkfs') || mkfsRuns());
  assert.deepEqual(
    list(homePaths.rootfsCache()).filter((n) => n.endsWith('.ext4')),
    [],
    'no root disk under a final name',
  );
});

test('an abort while the extended attributes are set (after mke2fs) leaves no temp dir and no disk', async () => {
  const xattrsDir = () => list(tmp).some((name) => name.startsWith('microvm-xattrs-'));
  await abortWhen('xattrs', xattrsDir);
  assert.deepEqual(
    list(homePaths.rootfsCache()).filter((n) => n.endsWith('.ext4')),
    [],
    'no root disk under a final name',
  );
});

test('an abort during the bake stops its VM; no snapshot is saved', async () => {
  const qemuRuns = () => descendants(process.pid).some((p) => /qemu/.test(p.comm));
  await abortWhen('bake', (events) => events.some((e) => e.phase === 'bake') && qemuRuns());
  assert.deepEqual(list(homePaths.snapshots()), [], 'no snapshot directory');
});

test('the next build of the same image succeeds and boots with the right contents', async () => {
  const built = await Image.build({ ref });
  assert.ok(built.snapshotPath, 'the build baked a snapshot');
  // The guest has no getfattr: the root disk's attributes are read on the host, with debugfs.
  const [disk] = list(homePaths.rootfsCache()).filter((n) => n.endsWith('.ext4'));
  assert.ok(disk, 'the root disk is cached');
  const label = execFileSync(
    '/usr/sbin/debugfs',
    ['-R', 'ea_get /opt/labelled/f7 user.label', path.join(homePaths.rootfsCache(), disk)],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  assert.match(label, /value 7/, 'the extended attributes pass ran in full');
  const pool = built.pool({ min: 0, max: 1 });
  try {
    const vm = await pool.acquire();
    const result = await vm.exec({ argv: ['stat', '-c', '%s', '/opt/filler.bin'] });
    assert.equal(result.stdout.trim(), String(FILLER_BYTES));
    await vm.release();
  } finally {
    await pool.shutdown();
  }
});
