import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Image, isMicrovmError } from '../../engine';
import { gzipLayer, imageOf, indexOf, tarOf, type TestImage } from '../helpers/image-fixtures';
import { startRegistry, type TestRegistry } from '../helpers/registry-server';
import { pushBlob, pushImage, putManifest } from '../helpers/registry-push';

/**
 * Platform selection against a real registry (Debian's docker-registry on loopback), no VM:
 * a multi-platform index whose linux/amd64 and linux/arm64 entries each resolve to their own
 * manifest, kept apart in the store, and a missing platform refused with the list. The arm64
 * image reuses the amd64 layer (only its config's architecture differs): nothing boots it.
 */
let tmp: string;
let registry: TestRegistry;
let amd64: TestImage;
let arm64: TestImage;
let multi: string;
let armOnly: string;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-platforms-'));
  registry = await startRegistry(tmp);
  // A layer of its own, so that this test's root disk and records are its own too.
  const layer = gzipLayer(tarOf([{ path: 'etc/platform-test', data: `${tmp}\n` }]));
  amd64 = imageOf([layer], { Env: ['WHICH=amd64'] });
  arm64 = imageOf([layer], { Env: ['WHICH=arm64'] }, { architecture: 'arm64', os: 'linux', variant: 'v8' });
  const repository = 'test/platforms';
  for (const image of [amd64, arm64]) {
    for (const blob of [image.config, ...image.layers]) await pushBlob(registry.base, repository, blob);
    await putManifest(registry.base, repository, image.manifest.digest, image.manifest);
  }
  const index = indexOf([
    { manifest: amd64.manifest, platform: { os: 'linux', architecture: 'amd64' } },
    { manifest: arm64.manifest, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ]);
  await putManifest(registry.base, repository, 'multi', index);
  await pushImage(registry.base, repository, 'arm-only', arm64);
  multi = `${registry.host}/${repository}:multi`;
  armOnly = `${registry.host}/${repository}:arm-only`;
});

after(async () => {
  await registry?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const build = (ref: string, platform: string | undefined, pullPolicy: 'always' | 'missing' = 'always') =>
  Image.build({ ref, ...(platform ? { platform } : {}), pullPolicy, snapshot: false });

test('linux/arm64 and linux/amd64 of one index each resolve to their own manifest', async () => {
  const arm = await build(multi, 'linux/arm64');
  assert.equal(arm.manifestDigest, arm64.manifest.digest);
  assert.ok(arm.config.env.includes('WHICH=arm64'));
  const amd = await build(multi, 'linux/amd64');
  assert.equal(amd.manifestDigest, amd64.manifest.digest);
  assert.ok(amd.config.env.includes('WHICH=amd64'));
  const variant = await build(multi, 'linux/arm64/v8');
  assert.equal(variant.manifestDigest, arm64.manifest.digest, 'arm64/v8 names the same platform');
  const host = await build(multi, undefined);
  assert.equal(host.manifestDigest, amd64.manifest.digest, "the default is this host's platform (amd64 here)");
});

test('stored pulls for two platforms never answer for each other, and need no registry', async () => {
  await build(multi, 'linux/arm64');
  await build(multi, 'linux/amd64');
  const before = registry.requests;
  const arm = await build(multi, 'linux/arm64', 'missing');
  const amd = await build(multi, 'linux/amd64', 'missing');
  assert.equal(arm.manifestDigest, arm64.manifest.digest);
  assert.equal(amd.manifestDigest, amd64.manifest.digest);
  assert.equal(registry.requests, before, 'both came from the store');
});

test('a platform the index lacks fails with E_PLATFORM_MISSING listing the platforms it has', async () => {
  await assert.rejects(build(multi, 'linux/s390x'), (err) => {
    assert.ok(isMicrovmError(err, 'E_PLATFORM_MISSING'), String(err));
    assert.deepEqual(err.details, { wanted: 'linux/s390x', available: ['linux/amd64', 'linux/arm64'] });
    assert.match(err.message, /has no image for linux\/s390x \(it has "linux\/amd64", "linux\/arm64"\).*--platform/);
    return true;
  });
});

test('a single-platform arm64 image is refused when amd64 is asked for, and taken for arm64 or when none is', async () => {
  await assert.rejects(build(armOnly, 'linux/amd64'), (err) => {
    assert.ok(isMicrovmError(err, 'E_PLATFORM_MISSING'), String(err));
    assert.deepEqual(err.details, { wanted: 'linux/amd64', available: ['linux/arm64'] });
    return true;
  });
  assert.equal((await build(armOnly, 'linux/arm64')).manifestDigest, arm64.manifest.digest);
  const unasked = await build(armOnly, undefined);
  assert.equal(unasked.manifestDigest, arm64.manifest.digest, 'with no platform asked for, its config picks the guest');
});

test('a malformed platform option is refused before anything is pulled', async () => {
  await assert.rejects(build(multi, 'linux/'), (err) => isMicrovmError(err, 'E_BAD_OPTION'));
});
