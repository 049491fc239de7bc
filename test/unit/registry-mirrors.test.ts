import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ContentStore } from '../../engine/image/content-store';
import { parseReference } from '../../engine/image/reference';
import { checkMirrors, endpointsFor, mirrorsFromEnv, parseMirrorList } from '../../engine/image/registry/mirrors';
import { pullImage } from '../../engine/image/registry/pull';
import { startFakeRegistry } from '../helpers/fake-registry';
import { gzipLayer, imageOf, tarOf } from '../helpers/image-fixtures';

test('MICROVM_REGISTRY_MIRRORS: registry=URL pairs, a registry may have several mirrors in order', () => {
  const mirrors = parseMirrorList(
    'docker.io=http://127.0.0.1:5000, ghcr.io=mirror.example/ghcr ,docker.io=http://127.0.0.1:5002/',
  );
  assert.deepEqual(mirrors, {
    'docker.io': ['http://127.0.0.1:5000', 'http://127.0.0.1:5002'],
    'ghcr.io': ['https://mirror.example/ghcr'],
  });
  assert.deepEqual(mirrorsFromEnv({}), {});
  assert.deepEqual(mirrorsFromEnv({ MICROVM_REGISTRY_MIRRORS: 'index.docker.io=http://localhost:5000' }), {
    'docker.io': ['http://localhost:5000'],
  });
});

test('bad mirror settings name the value and the fix', () => {
  for (const [text, pattern] of [
    ['docker.io', /expected REGISTRY=URL/],
    ['myhost=http://127.0.0.1:5000', /registry host/],
    ['docker.io=ftp://mirror', /http or https/],
    ['docker.io=http://user:pw@mirror', /no credentials/],
  ] as const) {
    assert.throws(
      () => parseMirrorList(text),
      (err: Error & { code?: string }) => err.code === 'E_BAD_OPTION' && pattern.test(err.message),
      text,
    );
  }
  assert.throws(() => checkMirrors({ 'ghcr.io': ['not a url'] }, 'the option'), /the option/);
});

test('endpoints: mirrors first (with their path prefix), the registry itself last', () => {
  const ref = parseReference('debian:bookworm');
  const endpoints = endpointsFor(
    ref,
    parseMirrorList('docker.io=http://127.0.0.1:5000,docker.io=https://m.example/hub'),
  );
  assert.deepEqual(
    endpoints.map((e) => [e.origin.href, e.repository, e.host, e.mirror]),
    [
      ['http://127.0.0.1:5000/', 'library/debian', '127.0.0.1:5000', true],
      ['https://m.example/', 'hub/library/debian', 'm.example', true],
      ['https://registry-1.docker.io/', 'library/debian', 'docker.io', false],
    ],
  );
  assert.equal(
    endpointsFor(parseReference('ghcr.io/a/b:1'), parseMirrorList('docker.io=http://127.0.0.1:5000')).length,
    1,
  );
});

test('a pull goes through the first mirror that has the image; the record keeps the reference name', async () => {
  const dead = await startFakeRegistry();
  const empty = await startFakeRegistry();
  const mirror = await startFakeRegistry();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-mirrors-'));
  try {
    await dead.close();
    mirror.add(
      'library/debian',
      'bookworm',
      imageOf([gzipLayer(tarOf([{ path: 'etc/debian_version', data: '12\n' }]))]),
    );
    const store = new ContentStore(path.join(home, 'store'));
    const ref = parseReference('debian:bookworm');
    const mirrors = { 'docker.io': [dead.base, empty.base, mirror.base] };
    const image = await pullImage(ref, store, {
      maxBlobBytes: 1 << 20,
      mirrors,
      retry: { attempts: 1, baseDelayMs: 1 },
    });
    assert.equal(image.source, 'docker.io/library/debian:bookworm');
    assert.ok(
      empty.log.some((r) => r.path === '/v2/library/debian/manifests/bookworm'),
      'the empty mirror was asked first',
    );
    assert.ok(
      mirror.log.some((r) => r.path.startsWith('/v2/library/debian/blobs/')),
      'the blobs came from the mirror',
    );
  } finally {
    await empty.close();
    await mirror.close();
    fs.rmSync(home, { recursive: true, force: true });
  }
});

test("when every mirror fails, the error is the registry's own and lists what the mirrors said", async () => {
  const empty = await startFakeRegistry();
  const upstream = await startFakeRegistry();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-mirrors-'));
  try {
    const store = new ContentStore(path.join(home, 'store'));
    const ref = parseReference(`${upstream.host}/team/app:1`);
    await assert.rejects(
      pullImage(ref, store, {
        maxBlobBytes: 1 << 20,
        mirrors: { [upstream.host]: [empty.base] },
        retry: { attempts: 1, baseDelayMs: 1 },
      }),
      (err: Error & { code?: string }) =>
        err.code === 'E_IMAGE_NOT_FOUND' && err.message.includes('mirrors failed') && err.message.includes(empty.base),
    );
  } finally {
    await empty.close();
    await upstream.close();
    fs.rmSync(home, { recursive: true, force: true });
  }
});
