import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { createGzip } from 'node:zlib';
import { Image, isMicrovmError } from '../../engine';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry';
import { blobOf, gzipLayer, imageOf, indexOf, tarOf, type TestImage } from '../helpers/image-fixtures';
import { encodeHeader } from '../../engine/tar/writer';
import { newHeader } from '../../engine/tar/types';

/** T14, T15, T16, T17 against a registry that misbehaves on purpose. No VM is booted. */
let tmp: string;
let registry: FakeRegistry;
const savedHome = process.env.MICROVM_HOME;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-hostile-'));
  process.env.DOCKER_CONFIG = path.join(tmp, 'no-docker-config');
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  process.env.MICROVM_HOME = savedHome;
  delete process.env.DOCKER_CONFIG;
});
beforeEach(async () => {
  process.env.MICROVM_HOME = fs.mkdtempSync(path.join(tmp, 'home-'));
  registry = await startFakeRegistry();
});
afterEach(() => registry.close());

const small = (): TestImage =>
  imageOf([
    gzipLayer(
      tarOf([
        { path: 'etc/', type: 'dir' },
        { path: 'etc/motd', data: 'hello\n' },
      ]),
    ),
  ]);
const storeFiles = (): string[] => listFiles(path.join(process.env.MICROVM_HOME as string, 'store'));
const build = (repo = 'hostile/app', extra: Record<string, unknown> = {}) =>
  Image.build({ ref: `${registry.host}/${repo}:1`, pullPolicy: 'always', snapshot: false, ...extra });

function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)));
}

async function rejects(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isMicrovmError(err), `expected a MicrovmError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

describe('a well-behaved fake registry', () => {
  it('pulls, builds, and a second build with pullPolicy missing sends no request', async () => {
    const image = small();
    registry.add('hostile/app', '1', image);
    const first = await build();
    assert.equal(first.manifestDigest, image.manifest.digest);
    const requests = registry.log.length;
    const started = performance.now();
    const again = await Image.build({ ref: `${registry.host}/hostile/app:1`, snapshot: false });
    const ms = performance.now() - started;
    assert.equal(registry.log.length, requests, 'a cache hit must not contact the registry');
    assert.equal(again.rootDisk, first.rootDisk);
    assert.ok(ms < 200, `cache hit took ${ms} ms`);
  });

  it('picks linux/amd64 from an index', async () => {
    const image = small();
    const other = imageOf([gzipLayer(tarOf([{ path: 'arm', data: 'x' }]))]);
    registry.add('hostile/app', 'amd', image);
    registry.add('hostile/app', 'arm', other);
    const index = indexOf([
      { manifest: other.manifest, platform: { os: 'linux', architecture: 'arm64' } },
      { manifest: image.manifest, platform: { os: 'linux', architecture: 'amd64' } },
    ]);
    registry.manifests.set('hostile/app:1', index);
    const built = await build();
    assert.equal(built.manifestDigest, image.manifest.digest);
  });

  it("pullPolicy 'never' with nothing stored fails clearly and sends no request", async () => {
    registry.add('hostile/app', '1', small());
    await rejects(
      Image.build({ ref: `${registry.host}/hostile/app:1`, pullPolicy: 'never', snapshot: false }),
      'E_IMAGE_NOT_CACHED',
      /microvm pull/,
    );
    assert.equal(registry.log.length, 0);
  });
});

describe('T14: digests', () => {
  it('a tampered layer is rejected and nothing is stored', async () => {
    const image = small();
    registry.add('hostile/app', '1', image);
    const layer = image.layers[0];
    const tampered = Buffer.from(layer!.data);
    tampered[tampered.length - 5]! ^= 0xff;
    registry.blobs.set(layer!.digest, tampered);
    await rejects(build(), 'E_IMAGE_DIGEST', /mismatch/i);
    assert.ok(
      !storeFiles().some((f) => f.includes(layer!.digest.slice(7))),
      'the tampered layer must not be in the store',
    );
    assert.ok(
      !storeFiles().some((f) => f.startsWith('refs') || f.startsWith('tmp')),
      `no record and no temp file: ${storeFiles()}`,
    );
  });

  it('a Docker-Content-Digest header that does not match the manifest is rejected', async () => {
    const image = small();
    registry.add('hostile/app', '1', image);
    registry.intercept = (req, res) => {
      if (!req.url?.includes('/manifests/')) return false;
      res
        .writeHead(200, {
          'Content-Type': image.manifest.mediaType,
          'Docker-Content-Digest': `sha256:${'0'.repeat(64)}`,
        })
        .end(image.manifest.data);
      return true;
    };
    await rejects(build(), 'E_IMAGE_DIGEST', /Docker-Content-Digest/);
  });

  it('a manifest asked for by digest must hash to that digest', async () => {
    const image = small();
    const other = imageOf([gzipLayer(tarOf([{ path: 'other', data: 'other' }]))]);
    registry.add('hostile/app', '1', image);
    registry.manifests.set(`hostile/app:${image.manifest.digest}`, {
      ...other.manifest,
      digest: image.manifest.digest,
    });
    await rejects(
      Image.build({
        ref: `${registry.host}/hostile/app@${image.manifest.digest}`,
        pullPolicy: 'always',
        snapshot: false,
      }),
      'E_IMAGE_DIGEST',
    );
  });

  it('bad digest syntax is refused before any request', async () => {
    for (const ref of [
      `${registry.host}/a/b@sha256:../../etc/x`,
      `${registry.host}/a/b@sha256:${'A'.repeat(64)}`,
      `${registry.host}/a/b@md5:${'a'.repeat(32)}`,
    ]) {
      await rejects(Image.build({ ref, snapshot: false }), 'E_IMAGE_REF');
    }
    const bad = small();
    const manifest = JSON.parse(bad.manifest.data.toString());
    manifest.layers[0].digest = 'sha256:../../../../etc/passwd';
    registry.manifests.set('hostile/app:1', blobOf(Buffer.from(JSON.stringify(manifest)), bad.manifest.mediaType));
    await rejects(build(), 'E_IMAGE_DIGEST', /invalid digest/);
    assert.ok(!registry.log.some((r) => r.path.includes('..')), 'no URL was built from the bad digest');
  });
});

describe('T15: documents', () => {
  it('a 10 MiB manifest is refused at the 4 MiB cap', async () => {
    registry.intercept = (_req, res) => {
      res.writeHead(200, {
        'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
        'Content-Length': 10 * 1024 * 1024,
      });
      res.end(Buffer.alloc(10 * 1024 * 1024, 0x20));
      return true;
    };
    await rejects(build(), 'E_IMAGE_TOO_LARGE', /4194304/);
  });

  it('an endless chunked manifest is aborted at the cap', async () => {
    registry.intercept = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (res.write(chunk));
      };
      res.on('drain', pump);
      res.on('error', () => undefined);
      pump();
      return true;
    };
    await rejects(build(), 'E_IMAGE_TOO_LARGE');
  });

  it('a Content-Type that differs from the document mediaType is refused', async () => {
    const image = small();
    registry.add('hostile/app', '1', image);
    registry.manifests.set('hostile/app:1', {
      ...image.manifest,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    });
    await rejects(build(), 'E_IMAGE_INVALID', /mediaType/);
  });

  it('a document with both manifests and layers is refused', async () => {
    const image = small();
    registry.add('hostile/app', '1', image);
    const doc = { ...JSON.parse(image.manifest.data.toString()), manifests: [] };
    registry.manifests.set('hostile/app:1', blobOf(Buffer.from(JSON.stringify(doc)), image.manifest.mediaType));
    await rejects(build(), 'E_IMAGE_INVALID', /ambiguous|both/);
  });

  it('a redirect to another host does not carry Authorization (127.0.0.1 -> 127.0.0.2)', async () => {
    const image = small();
    registry.add('hostile/app', '1', image);
    const storage = await startFakeRegistry('127.0.0.2');
    try {
      storage.intercept = (req, res) => {
        const data = registry.blobs.get(req.url?.slice(1) ?? '');
        res.writeHead(data ? 200 : 404).end(data);
        return true;
      };
      registry.intercept = (req, res) => {
        if (req.url === '/token?service=fake&scope=repository%3Ahostile%2Fapp%3Apull') {
          res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"token":"secret-token"}');
          return true;
        }
        if (req.headers.authorization !== 'Bearer secret-token') {
          res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="${registry.base}/token",service="fake"` }).end();
          return true;
        }
        const blob = /\/blobs\/(sha256:[a-f0-9]+)$/.exec(req.url ?? '');
        if (blob && blob[1] === image.layers[0]!.digest) {
          res.writeHead(307, { Location: `${storage.base}/${blob[1]}` }).end();
          return true;
        }
        return false;
      };
      await build();
      assert.equal(storage.log.length, 1);
      assert.equal(storage.log[0]!.authorization, undefined, 'Authorization must not follow the redirect');
      assert.ok(registry.log.some((r) => r.authorization === 'Bearer secret-token'));
    } finally {
      await storage.close();
    }
  });

  it('a descriptor with urls causes no fetch of those urls', async () => {
    const image = small();
    registry.add('hostile/app', '1', image);
    const doc = JSON.parse(image.manifest.data.toString());
    doc.layers[0].urls = ['http://127.0.0.2:9/evil'];
    registry.manifests.set('hostile/app:1', blobOf(Buffer.from(JSON.stringify(doc)), image.manifest.mediaType));
    await build();
    assert.ok(registry.log.some((r) => r.path.endsWith(image.layers[0]!.digest)));
  });
});

describe('dropped connections', () => {
  it('a connection dropped mid-blob is retried, then the pull succeeds', async () => {
    const image = small();
    registry.add('hostile/app', '1', image);
    let drops = 1;
    registry.intercept = (req, res) => dropLayer(req, res, image, () => drops-- > 0);
    await build();
    assert.equal(registry.log.filter((r) => r.path.endsWith(image.layers[0]!.digest)).length, 2);
  });

  it('a connection dropped on every try fails clearly after the last one, leaving nothing partial', async () => {
    const image = small();
    registry.add('hostile/app', '1', image);
    registry.intercept = (req, res) => dropLayer(req, res, image, () => true);
    await rejects(build(), 'E_REGISTRY_UNREACHABLE', /after 4 tries/);
    assert.equal(registry.log.filter((r) => r.path.endsWith(image.layers[0]!.digest)).length, 4);
    assert.ok(
      !storeFiles().some(
        (f) => f.startsWith('tmp') || f.startsWith('refs') || f.includes(image.layers[0]!.digest.slice(7)),
      ),
      `${storeFiles()}`,
    );
  });

  it('5xx answers are retried', async () => {
    const image = small();
    registry.add('hostile/app', '1', image);
    let failures = 2;
    registry.intercept = (req, res) => {
      if (!req.url?.includes('/manifests/') || failures-- <= 0) return false;
      res.writeHead(503).end();
      return true;
    };
    await build();
  });
});

describe('T16 and T17: layer contents', () => {
  it('a gzip bomb is stopped at maxLayerBytes', async () => {
    const bomb = await gzipOfZeros(512 * 1024 * 1024);
    assert.ok(bomb.length < 1024 * 1024);
    registry.add('hostile/app', '1', imageOf([blobOf(bomb, 'application/vnd.oci.image.layer.v1.tar+gzip')]));
    const started = Date.now();
    await rejects(build('hostile/app', { maxLayerBytes: 32 * 1024 * 1024 }), 'E_IMAGE_TOO_LARGE', /maxLayerBytes/);
    assert.ok(Date.now() - started < 20_000);
    const rootfs = path.join(process.env.MICROVM_HOME as string, 'rootfs');
    assert.deepEqual(listFiles(rootfs), [], 'no disk or temp file is left behind');
  });

  it('../ entries and writes through an absolute symlink leave a host sentinel untouched', async () => {
    const sentinelDir = path.join(tmp, 'sentinel');
    fs.mkdirSync(sentinelDir, { recursive: true });
    const sentinel = path.join(sentinelDir, 'canary');
    fs.writeFileSync(sentinel, 'original');
    const before = fs.statSync(sentinel);
    const depth = '../'.repeat(20);
    const escape = imageOf([gzipLayer(tarOf([{ path: `${depth}${sentinel.slice(1)}`, data: 'pwned' }]))]);
    registry.add('hostile/escape', '1', escape);
    await rejects(build('hostile/escape'), 'E_IMAGE_INVALID', /\.\./);
    const through = imageOf([
      gzipLayer(
        tarOf([
          { path: 'link', type: 'symlink', linkpath: sentinelDir },
          { path: 'link/canary', data: 'pwned' },
        ]),
      ),
    ]);
    registry.add('hostile/through', '1', through);
    await rejects(build('hostile/through'), 'E_IMAGE_INVALID', /non-directory/);
    const plain = imageOf([gzipLayer(tarOf([{ path: 'abs', type: 'symlink', linkpath: sentinel }]))]);
    registry.add('hostile/plain', '1', plain);
    await build('hostile/plain');
    const after = fs.statSync(sentinel);
    assert.equal(fs.readFileSync(sentinel, 'utf8'), 'original');
    assert.equal(after.mtimeMs, before.mtimeMs);
    assert.equal(after.mode, before.mode);
    assert.deepEqual(fs.readdirSync(sentinelDir), ['canary']);
  });
});

function dropLayer(
  req: import('node:http').IncomingMessage,
  res: import('node:http').ServerResponse,
  image: TestImage,
  drop: () => boolean,
): boolean {
  const layer = image.layers[0];
  if (!req.url?.endsWith(layer!.digest) || !drop()) return false;
  res.writeHead(200, { 'Content-Length': layer!.size });
  res.write(layer!.data.subarray(0, Math.floor(layer!.size / 2)), () => res.socket?.destroy());
  return true;
}

async function gzipOfZeros(bytes: number): Promise<Buffer> {
  const gzip = createGzip({ level: 9 });
  const out: Buffer[] = [];
  gzip.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve) => gzip.on('end', resolve));
  gzip.write(encodeHeader(newHeader({ path: 'zeros', type: 'file', size: bytes })));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let left = bytes; left > 0; left -= zeros.length) {
    if (!gzip.write(zeros)) await new Promise((resolve) => gzip.once('drain', resolve));
  }
  gzip.end(Buffer.alloc(1024));
  await done;
  return Buffer.concat(out);
}

it('an unknown registry host is E_REGISTRY_UNREACHABLE naming the host, not an internal error', async () => {
  const { resolveSource } = await import('../../engine/image/source');
  const { ContentStore } = await import('../../engine/image/content-store');
  await assert.rejects(
    resolveSource('no-such-host.invalid/team/app:1', {
      pullPolicy: 'always',
      maxLayerBytes: 1 << 20,
      store: new ContentStore(),
      onPull: () => undefined,
    }),
    (err) => isMicrovmError(err, 'E_REGISTRY_UNREACHABLE') && /no-such-host\.invalid/.test(err.message),
  );
});
