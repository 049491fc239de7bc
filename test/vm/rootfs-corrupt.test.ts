import * as fs from 'node:fs';
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Image, type BuildProgress } from '../../engine';
import { privateHome } from './cli-helpers';

/**
 * A cached root disk that was bit-flipped or truncated is found by the next build, rebuilt
 * with the reason in the progress events, and the VM boots from the new disk; a snapshot
 * baked from the old disk is not reused. The default image, in a private MICROVM_HOME.
 */
let home: string;
const savedHome = process.env.MICROVM_HOME;

before(() => {
  home = privateHome(['assets', 'images']);
  process.env.MICROVM_HOME = home;
});

after(() => {
  process.env.MICROVM_HOME = savedHome;
  fs.rmSync(home, { recursive: true, force: true });
});

async function build(snapshot: boolean): Promise<{ image: Image; events: BuildProgress[]; ms: number }> {
  const events: BuildProgress[] = [];
  const started = performance.now();
  const image = await Image.build({ snapshot, onProgress: (e) => events.push(e) });
  return { image, events, ms: performance.now() - started };
}

/** A bake hands its running VM to the image's first pool; stop it when no VM is wanted. */
const stopBakedVm = (image: Image) => image.pool({ min: 0, max: 1 }).shutdown();

const reasons = (events: BuildProgress[], phase: 'rebuild' | 'bake') =>
  events.flatMap((e) => (e.phase === phase ? [e.reason] : []));

const snapshotsOf = (events: BuildProgress[]) =>
  events.flatMap((e) => (e.phase === 'snapshot' ? [{ dir: e.dir, baked: e.baked }] : []));

async function expectBootsAndWorks(image: Image): Promise<void> {
  const pool = image.pool({ min: 0, max: 1 });
  try {
    const vm = await pool.acquire();
    const result = await vm.exec({ argv: ['sh', '-c', 'echo works; ls /bin/sh'] });
    assert.equal(result.stdout, 'works\n/bin/sh\n', result.stderr);
    await vm.release();
  } finally {
    await pool.shutdown();
  }
}

let disk: string;
let firstSnapshot: string;

test('a built disk has a record; a cache hit checks it without rebuilding', async () => {
  const first = await build(true);
  await stopBakedVm(first.image);
  disk = first.image.rootDisk;
  firstSnapshot = snapshotsOf(first.events)[0]?.dir ?? '';
  assert.ok(firstSnapshot, 'the first build baked a snapshot');
  assert.ok(fs.existsSync(disk.replace(/\.ext4$/, '.json')), "the disk's record");
  const hit = await build(true);
  process.stderr.write(`# cache-hit Image.build with the disk check: ${hit.ms.toFixed(1)} ms\n`);
  assert.deepEqual(reasons(hit.events, 'rebuild'), []);
  assert.deepEqual(reasons(hit.events, 'bake'), []);
});

test('a flipped byte is detected, the disk rebuilt with the reason, the old snapshot not reused, and the VM works', async () => {
  const handle = fs.openSync(disk, 'r+');
  const offset = 1024 + 512; // Inside the ext4 superblock, which every boot reads.
  const byte = Buffer.alloc(1);
  fs.readSync(handle, byte, 0, 1, offset);
  fs.writeSync(handle, Buffer.from([byte[0]! ^ 0x01]), 0, 1, offset);
  fs.closeSync(handle);
  const flipped = await build(true);
  assert.equal(flipped.image.rootDisk, disk);
  assert.match(reasons(flipped.events, 'rebuild')[0] ?? '', /root disk .* does not match its checksum \(corrupted\)/);
  // The snapshot is keyed by every input, the disk's sha256 among them: the rebuilt disk gets a new bake.
  const [snapshot] = snapshotsOf(flipped.events);
  assert.equal(snapshot?.baked, true, 'a snapshot of the old disk is not restored over the new one');
  assert.notEqual(snapshot.dir, firstSnapshot);
  assert.equal(reasons(flipped.events, 'bake').length, 1);
  await expectBootsAndWorks(flipped.image);
});

test('a truncated disk is detected, rebuilt with the reason, and the VM works', async () => {
  fs.truncateSync(disk, 4096);
  const truncated = await build(false);
  assert.match(
    reasons(truncated.events, 'rebuild')[0] ?? '',
    /root disk has 4096 bytes, \d+ were saved \(truncated\?\)/,
  );
  await expectBootsAndWorks(truncated.image);
  assert.deepEqual(reasons((await build(false)).events, 'rebuild'), [], 'the rebuilt disk is a cache hit');
});
