import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMicrovmError, MicrovmError } from '../../engine/errors';
import {
  formatPlatform,
  parsePlatform,
  platformMatches,
  selectPlatformManifest,
  type Platform,
} from '../../engine/image/platform';
import { resolveManifest, type DocumentSource } from '../../engine/image/resolve';
import type { Descriptor } from '../../engine/image/schemas';
import { describe, gzipLayer, imageOf, indexOf, tarOf, type Blob } from '../helpers/image-fixtures';

/** Image platform selection: the one function registry pulls, OCI layouts and archives share. */

const entry = (platform: Platform | undefined, n: number): Descriptor => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
  size: 100,
  ...(platform ? { platform } : {}),
});

const platformError = (wanted: string, available: string[]) => (err: unknown) => {
  assert.ok(isMicrovmError(err, 'E_PLATFORM_MISSING'), String(err));
  assert.deepEqual(err.details, { wanted, available });
  assert.match(err.message, /--platform/);
  for (const p of available) assert.ok(err.message.includes(JSON.stringify(p)), `${p} is listed: ${err.message}`);
  return true;
};

test('platforms parse and normalize as docker and containerd read them', () => {
  const cases: Array<[string, string]> = [
    ['linux/amd64', 'linux/amd64'],
    ['linux/x86_64', 'linux/amd64'],
    ['amd64', 'linux/amd64'],
    ['linux/arm64', 'linux/arm64'],
    ['linux/aarch64', 'linux/arm64'],
    ['linux/arm64/v8', 'linux/arm64'],
    ['LINUX/ARM64/V8', 'linux/arm64'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/armhf', 'linux/arm/v7'],
    ['linux/arm/6', 'linux/arm/v6'],
    ['linux/armel', 'linux/arm/v6'],
    ['linux/riscv64', 'linux/riscv64'],
  ];
  for (const [text, expected] of cases) assert.equal(formatPlatform(parsePlatform(text)), expected, text);
  for (const bad of ['', 'linux/', 'linux/arm64/v8/x', 'linux arm64', 'linux/../x']) {
    assert.throws(
      () => parsePlatform(bad, '--platform'),
      (err) => isMicrovmError(err, 'E_BAD_OPTION') && /--platform .*OS\/ARCH/.test(err.message),
      JSON.stringify(bad),
    );
  }
});

test('arm64/v8 in an index matches a request for linux/arm64, and arm/v7 runs arm/v6 images', () => {
  assert.ok(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' }));
  assert.ok(platformMatches(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' }));
  assert.ok(platformMatches(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v6' }));
  assert.ok(!platformMatches(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v7' }));
  assert.ok(!platformMatches(parsePlatform('linux/amd64'), { os: 'windows', architecture: 'amd64' }));
});

test('the manifest for the requested platform is chosen from an index', () => {
  const index = [
    entry({ os: 'linux', architecture: 'amd64' }, 1),
    entry({ os: 'linux', architecture: 'arm64', variant: 'v8' }, 2),
    entry({ os: 'linux', architecture: 'arm', variant: 'v6' }, 3),
    entry({ os: 'linux', architecture: 'arm', variant: 'v7' }, 4),
    entry({ os: 'unknown', architecture: 'unknown' }, 5),
  ];
  const pick = (p: string) => selectPlatformManifest(index, parsePlatform(p), 'index').digest;
  assert.equal(pick('linux/amd64'), index[0]!.digest);
  assert.equal(pick('linux/arm64'), index[1]!.digest);
  assert.equal(pick('linux/arm64/v8'), index[1]!.digest);
  assert.equal(pick('linux/arm/v7'), index[3]!.digest, 'the exact variant before an older one');
  assert.equal(pick('linux/arm/v6'), index[2]!.digest);
  assert.throws(
    () => pick('linux/s390x'),
    platformError('linux/s390x', ['linux/amd64', 'linux/arm64', 'linux/arm/v6', 'linux/arm/v7']),
    'attestation entries (unknown/unknown) are not offered',
  );
});

test('an index of only variant builds gives the lowest variant of the architecture when no variant is asked for', () => {
  const index = [
    entry({ os: 'linux', architecture: 'amd64', variant: 'v3' }, 1),
    entry({ os: 'linux', architecture: 'amd64', variant: 'v2' }, 2),
  ];
  assert.equal(selectPlatformManifest(index, parsePlatform('linux/amd64'), 'index').digest, index[1]!.digest);
  assert.equal(selectPlatformManifest(index, parsePlatform('linux/amd64/v3'), 'index').digest, index[0]!.digest);
});

test('an index of one entry for another platform is refused; one without a platform is taken as it is', () => {
  const arm = [entry({ os: 'linux', architecture: 'arm64' }, 1)];
  assert.throws(
    () => selectPlatformManifest(arm, parsePlatform('linux/amd64'), 'index'),
    platformError('linux/amd64', ['linux/arm64']),
  );
  const bare = [entry(undefined, 2)];
  assert.equal(selectPlatformManifest(bare, parsePlatform('linux/amd64'), 'index').digest, bare[0]!.digest);
});

/** Documents by digest, as a content store serves them after verifying their bytes. */
function sourceOf(blobs: Blob[]): DocumentSource {
  const documents = new Map(blobs.map((b) => [b.digest, b.data]));
  return {
    document: async (descriptor: Descriptor) => {
      const bytes = documents.get(descriptor.digest);
      if (!bytes) throw new MicrovmError('E_IMAGE_INVALID', `no blob ${descriptor.digest}`);
      return bytes;
    },
    describe: (descriptor: Descriptor) => descriptor.digest,
  };
}

const layer = gzipLayer(tarOf([{ path: 'etc/hello', data: 'hi\n' }]));
const amd64 = imageOf([layer], { Env: ['WHICH=amd64'] });
const arm64 = imageOf([layer], { Env: ['WHICH=arm64'] }, { architecture: 'arm64', os: 'linux', variant: 'v8' });

test('resolveManifest follows an index to the requested platform and checks its config', async () => {
  const index = indexOf([
    { manifest: amd64.manifest, platform: { os: 'linux', architecture: 'amd64' } },
    { manifest: arm64.manifest, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ]);
  const source = sourceOf([index, amd64.manifest, amd64.config, arm64.manifest, arm64.config]);
  const forArm = await resolveManifest(source, describe(index), parsePlatform('linux/arm64'));
  assert.equal(forArm.manifest.digest, arm64.manifest.digest);
  assert.deepEqual(forArm.config.env, ['WHICH=arm64']);
  const forAmd = await resolveManifest(source, describe(index), parsePlatform('linux/amd64'));
  assert.equal(forAmd.manifest.digest, amd64.manifest.digest);
  await assert.rejects(
    resolveManifest(source, describe(index), parsePlatform('linux/ppc64le')),
    platformError('linux/ppc64le', ['linux/amd64', 'linux/arm64']),
  );
});

test('a single-platform manifest whose config is for another architecture is refused the same way', async () => {
  const source = sourceOf([arm64.manifest, arm64.config]);
  await assert.rejects(
    resolveManifest(source, describe(arm64.manifest), parsePlatform('linux/amd64')),
    platformError('linux/amd64', ['linux/arm64']),
  );
  const resolved = await resolveManifest(source, describe(arm64.manifest), parsePlatform('linux/arm64/v8'));
  assert.equal(resolved.manifest.digest, arm64.manifest.digest);
});

test('with no platform asked for, an index gives the host entry and a single-platform image is taken as it is', async () => {
  const source = sourceOf([arm64.manifest, arm64.config]);
  const resolved = await resolveManifest(source, describe(arm64.manifest));
  assert.equal(resolved.manifest.digest, arm64.manifest.digest, 'its config picks the guest (emulated here)');
  const index = indexOf([
    { manifest: amd64.manifest, platform: { os: 'linux', architecture: 'amd64' } },
    { manifest: arm64.manifest, platform: { os: 'linux', architecture: 'arm64' } },
  ]);
  const all = sourceOf([index, amd64.manifest, amd64.config, arm64.manifest, arm64.config]);
  const host = process.arch === 'arm64' ? arm64 : amd64;
  assert.equal((await resolveManifest(all, describe(index))).manifest.digest, host.manifest.digest);
});

test('an index entry that lies about its platform is caught by the config check', async () => {
  const lying = indexOf([{ manifest: arm64.manifest, platform: { os: 'linux', architecture: 'amd64' } }]);
  await assert.rejects(
    resolveManifest(sourceOf([lying, arm64.manifest, arm64.config]), describe(lying), parsePlatform('linux/amd64')),
    platformError('linux/amd64', ['linux/arm64']),
  );
});

test('indexes nested too deep are refused as malformed, before any platform is chosen below them', async () => {
  const inner = indexOf([{ manifest: amd64.manifest, platform: { os: 'linux', architecture: 'amd64' } }]);
  const middle = indexOf([{ manifest: inner, platform: { os: 'linux', architecture: 'amd64' } }]);
  const outer = indexOf([{ manifest: middle, platform: { os: 'linux', architecture: 'amd64' } }]);
  const source = sourceOf([outer, middle, inner, amd64.manifest, amd64.config]);
  const resolved = await resolveManifest(source, describe(middle), parsePlatform('linux/amd64'));
  assert.equal(resolved.manifest.digest, amd64.manifest.digest, 'an index in an index is followed');
  await assert.rejects(
    resolveManifest(source, describe(outer), parsePlatform('linux/amd64')),
    (err) => isMicrovmError(err, 'E_IMAGE_INVALID') && /nest deeper/.test(err.message),
  );
  await assert.rejects(
    resolveManifest(source, describe(middle), parsePlatform('linux/arm64')),
    platformError('linux/arm64', ['linux/amd64']),
    'a nested index without the platform lists what it has',
  );
});
