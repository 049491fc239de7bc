import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Image, isMicrovmError, type BuildProgress } from '../../engine';
import { debianBaseLayer } from '../helpers/debian-base';
import { gzipLayer, imageOf, tarOf } from '../helpers/image-fixtures';
import { pushImage } from '../helpers/registry-push';
import { startRegistry, type TestRegistry } from '../helpers/registry-server';
import { realHome } from './cli-helpers';

/**
 * T21 (host side): MICROVM_HOME on a 64 MiB tmpfs. A small image fits; a bigger blob, then a
 * root disk that does not fit, each fail with E_HOST_DISK_FULL, keep nothing partial, and the
 * small image still builds from cache (with the registry stopped) and runs.
 */
let tmp: string;
let home: string;
let registry: TestRegistry;
let mounted = false;
const savedHome = process.env.MICROVM_HOME;
const refs = { small: '', bigBlob: '', bigDisk: '' };

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-full-'));
  home = path.join(tmp, 'home');
  fs.mkdirSync(home);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', 'tmpfs', home]);
  mounted = true;
  for (const part of ['assets', 'images']) fs.symlinkSync(path.join(realHome, part), path.join(home, part));
  // The KVM probe's verdict, when this host has one (a host without /dev/kvm never probes).
  if (fs.existsSync(path.join(realHome, 'accel.json')))
    fs.copyFileSync(path.join(realHome, 'accel.json'), path.join(home, 'accel.json'));
  process.env.MICROVM_HOME = home;
  process.env.DOCKER_CONFIG = path.join(tmp, 'no-docker-config');
  registry = await startRegistry(path.join(tmp, 'registry'));
  refs.small = `${registry.host}/full/small:1`;
  await pushImage(registry.base, 'full/small', '1', imageOf([debianBaseLayer()]));
});

after(async () => {
  await registry?.stop();
  if (mounted) execFileSync('umount', [home]);
  fs.rmSync(tmp, { recursive: true, force: true });
  process.env.MICROVM_HOME = savedHome;
  delete process.env.DOCKER_CONFIG;
});

const freeBytes = () => {
  const s = fs.statfsSync(home);
  return s.bavail * s.bsize;
};
/** Temporary files anywhere in the cache (store/tmp, rootfs/, refs/). */
const temps = () =>
  fs
    .readdirSync(home, { recursive: true })
    .map(String)
    .filter((p) => /(^|\/)\.tmp-/.test(p));
const isDiskFull = (dir: string) => (err: unknown) => {
  process.stderr.write(`# ${(err as Error).message}\n`);
  return (
    isMicrovmError(err, 'E_HOST_DISK_FULL') &&
    err.message.includes(dir) &&
    /; free space there/.test(err.message) &&
    /MICROVM_HOME/.test(err.message)
  );
};

test('a small image is pulled and its root disk built in the small cache', async () => {
  const image = await Image.build({ ref: refs.small, snapshot: false });
  assert.ok(image.rootDisk.startsWith(home));
  process.stderr.write(`# ${(freeBytes() / 2 ** 20).toFixed(1)} MiB left on the 64 MiB cache\n`);
});

test('a blob that does not fit fails with E_HOST_DISK_FULL naming the store; nothing partial is kept', async () => {
  const big = gzipLayer(tarOf([{ path: 'opt/big.bin', data: randomBytes(freeBytes() + 4 * 2 ** 20) }]));
  refs.bigBlob = `${registry.host}/full/big-blob:1`;
  await pushImage(registry.base, 'full/big-blob', '1', imageOf([debianBaseLayer(), big]));
  await assert.rejects(Image.build({ ref: refs.bigBlob, snapshot: false }), isDiskFull(path.join(home, 'store')));
  assert.deepEqual(temps(), []);
  assert.ok(!fs.existsSync(path.join(home, 'store', 'blobs', 'sha256', big.digest.slice(7))));
});

test('a root disk that does not fit fails with E_HOST_DISK_FULL naming rootfs/; nothing partial is kept', async () => {
  // Compresses to a few KiB, so the blob fits and the disk build is what fills the cache.
  const big = gzipLayer(tarOf([{ path: 'opt/big.txt', data: Buffer.alloc(freeBytes() + 4 * 2 ** 20, 'microvm ') }]));
  refs.bigDisk = `${registry.host}/full/big-disk:1`;
  await pushImage(registry.base, 'full/big-disk', '1', imageOf([debianBaseLayer(), big]));
  await assert.rejects(Image.build({ ref: refs.bigDisk, snapshot: false }), isDiskFull(path.join(home, 'rootfs')));
  assert.deepEqual(temps(), []);
  assert.equal(
    fs.readdirSync(path.join(home, 'rootfs')).filter((name) => name.endsWith('.ext4')).length,
    1,
    "only the small image's disk",
  );
});

test('the small image still builds from cache with the registry stopped, and its VM runs', async () => {
  await registry.stop();
  const events: BuildProgress[] = [];
  const image = await Image.build({ ref: refs.small, snapshot: false, onProgress: (e) => events.push(e) });
  assert.deepEqual(
    events.filter((e) => e.phase === 'ready').map((e) => e.phase === 'ready' && e.cached),
    [true],
  );
  assert.ok(!events.some((e) => e.phase === 'pull' || e.phase === 'rebuild'));
  const pool = image.pool({ min: 0, max: 1 });
  try {
    const vm = await pool.acquire();
    const result = await vm.exec({ argv: ['sh', '-c', 'echo ok; ls /bin/sh'] });
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdout, 'ok\n/bin/sh\n');
    await vm.release();
  } finally {
    await pool.shutdown();
  }
});
