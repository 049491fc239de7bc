import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Image, type Pool, type Vm } from '../../engine';
import { blobOf, gzipLayer, imageOf, tarOf } from '../helpers/image-fixtures';
import { debianBaseLayer } from '../helpers/debian-base';
import { startRegistry, type TestRegistry } from '../helpers/registry-server';
import { pushImage } from '../helpers/registry-push';

/**
 * A multi-layer image pushed to a real registry (Debian's docker-registry on loopback),
 * pulled by Image.build and checked inside one booted guest.
 */
let tmp: string;
let registry: TestRegistry;
let pool: Pool;
let vm: Vm;
let ref: string;
let image: Image;

const UNICODE_NAME = 'héllo-✓.txt';

function contentImage() {
  const upper = tarOf([
    { path: 'opt/t/', type: 'dir' },
    { path: 'opt/t/gone', data: 'to be whited out' },
    { path: 'opt/t/opq/', type: 'dir' },
    { path: 'opt/t/opq/old1', data: 'old' },
    { path: 'opt/t/opq/old2', data: 'old' },
    { path: 'opt/t/data', data: 'payload' },
    { path: 'opt/t/hard', type: 'hardlink', linkpath: 'opt/t/data' },
    { path: 'opt/t/abs', type: 'symlink', linkpath: '/etc/hostname' },
    { path: 'opt/t/suid', data: '#!/bin/sh\nid -u\n', mode: 0o4755 },
    { path: 'home/user/', type: 'dir', uid: 1000, gid: 1000, mode: 0o750 },
    { path: 'home/user/file', data: 'mine', uid: 1000, gid: 1000, mode: 0o600 },
    { path: `opt/t/${UNICODE_NAME}`, data: 'unicode' },
  ]);
  const top = tarOf([
    { path: 'opt/t/.wh.gone' },
    { path: 'opt/t/opq/.wh..wh..opq' },
    { path: 'opt/t/opq/new', data: 'new' },
  ]);
  const zstd = spawnSync('zstd', ['-q', '-c'], { input: top });
  assert.equal(zstd.status, 0, 'zstd is installed by scripts/setup');
  return imageOf(
    [debianBaseLayer(), gzipLayer(upper), blobOf(zstd.stdout, 'application/vnd.oci.image.layer.v1.tar+zstd')],
    {
      Env: ['PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', 'GREETING=from-config'],
      WorkingDir: '/opt/t',
      User: '1000',
    },
  );
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-registry-'));
  registry = await startRegistry(tmp);
  ref = `${registry.host}/test/contents:1`;
  await pushImage(registry.base, 'test/contents', '1', contentImage());
  const started = performance.now();
  image = await Image.build({ ref, pullPolicy: 'always' });
  process.stderr.write(`# pull + disk build: ${(performance.now() - started).toFixed(0)} ms\n`);
  pool = image.pool({ min: 1, max: 1 });
  vm = await pool.acquire();
});

after(async () => {
  await vm?.release();
  await pool?.shutdown();
  await registry?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sh = async (script: string) => {
  const result = await vm.exec({ argv: ['sh', '-c', script] });
  assert.equal(result.exitCode, 0, `${script}\n${result.stderr}`);
  return result.stdout;
};

test('a whiteout in an upper layer removes the file', async () => {
  assert.equal(await sh('test -e /opt/t/gone && echo present || echo absent'), 'absent\n');
});

test('an opaque directory hides everything below it from lower layers', async () => {
  assert.equal(await sh('ls -A /opt/t/opq'), 'new\n');
});

test('a hardlink shares its inode', async () => {
  const [a, b] = (await sh('stat -c "%i %h" /opt/t/data /opt/t/hard')).trim().split('\n');
  assert.equal(a, b);
  assert.match(a!, / 2$/);
});

test('an absolute symlink resolves inside the guest', async () => {
  assert.equal(await sh('readlink /opt/t/abs; test -L /opt/t/abs && echo link'), '/etc/hostname\nlink\n');
});

test('setuid bits, uid/gid 1000 and modes survive', async () => {
  assert.equal(
    await sh('stat -c "%a %u:%g" /opt/t/suid /home/user /home/user/file'),
    '4755 0:0\n750 1000:1000\n600 1000:1000\n',
  );
});

test('a non-ASCII file name survives', async () => {
  assert.equal(await sh(`cat '/opt/t/${UNICODE_NAME}'`), 'unicode');
});

test('the image config gives Env and WorkingDir; User is recorded', async () => {
  assert.equal(await sh('echo "$GREETING $(pwd)"'), 'from-config /opt/t\n');
  assert.equal(image.config.user, '1000');
});

test("a cache hit with pullPolicy 'missing' contacts no registry and builds no disk", async () => {
  const connections = registry.requests;
  const started = performance.now();
  const again = await Image.build({ ref, snapshot: false });
  const ms = performance.now() - started;
  process.stderr.write(`# cache-hit Image.build: ${ms.toFixed(1)} ms\n`);
  assert.equal(registry.requests, connections);
  assert.equal(again.rootDisk, image.rootDisk);
  assert.ok(ms < 100, `cache hit took ${ms} ms`);
  const withSnapshot = performance.now();
  await Image.build({ ref });
  process.stderr.write(
    `# cache-hit Image.build with its baked snapshot: ${(performance.now() - withSnapshot).toFixed(1)} ms\n`,
  );
  assert.equal(registry.requests, connections);
});
