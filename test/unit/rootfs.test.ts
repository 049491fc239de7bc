import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { isMicrovmError } from '../../engine/errors';
import { readOciLayout } from '../../engine/image/oci-layout';
import { ensureRootDisk } from '../../engine/rootfs';
import { encodeHeader, endOfArchive, paddingFor } from '../../engine/tar/writer';
import { newHeader, toBytePath, type TarHeader } from '../../engine/tar/types';

type Entry = Partial<TarHeader> & { path: string; type?: TarHeader['type']; data?: Buffer | string };

function tar(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const header = newHeader({ ...e, type: e.type ?? 'file', path: toBytePath(e.path), size: data.length });
    if (e.linkpath) header.linkpath = toBytePath(e.linkpath);
    parts.push(encodeHeader(header), data, Buffer.alloc(paddingFor(data.length)));
  }
  parts.push(endOfArchive());
  return Buffer.concat(parts);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let tmp: string;

function writeBlob(layout: string, content: Buffer): { digest: string; size: number } {
  const hex = sha256(content);
  fs.mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  fs.writeFileSync(path.join(layout, 'blobs', 'sha256', hex), content);
  return { digest: `sha256:${hex}`, size: content.length };
}

/** An OCI layout with gzip layers; `tweak` may change the manifest before it is written. */
function makeLayout(name: string, layers: Buffer[], tweak?: (manifest: Record<string, unknown>) => void): string {
  const layout = path.join(tmp, name);
  fs.mkdirSync(layout, { recursive: true });
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const layerDescs = layers.map((l) => ({
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    ...writeBlob(layout, gzipSync(l)),
  }));
  const config = writeBlob(
    layout,
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['A=1'], Cmd: ['sh'] } })),
  );
  const manifestDoc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layerDescs,
  };
  tweak?.(manifestDoc);
  const manifest = writeBlob(layout, Buffer.from(JSON.stringify(manifestDoc)));
  fs.writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest }],
    }),
  );
  return layout;
}

function debugfs(image: string, request: string): string {
  return execFileSync('debugfs', ['-R', request, image], { stdio: ['ignore', 'pipe', 'ignore'] }).toString('latin1');
}

const lower = tar([
  { path: 'etc/', type: 'dir' },
  { path: 'etc/gone', data: 'lower' },
  { path: 'etc/kept', data: 'kept' },
  { path: 'opq/', type: 'dir' },
  { path: 'opq/hidden', data: 'hidden' },
  { path: 'data', data: 'shared content' },
]);
const upper = tar([
  { path: './etc/.wh.gone' },
  { path: 'opq/.wh..wh..opq' },
  { path: 'opq/new', data: 'new' },
  { path: 'link', type: 'hardlink', linkpath: 'data' },
  { path: '/abs-link', type: 'symlink', linkpath: '/etc/passwd' },
  { path: 'bin/su', data: 'suid', mode: 0o4755 },
  { path: 'home/user/file', data: 'mine', uid: 1000, gid: 1000 },
  { path: 'cap', data: 'x', xattrs: new Map([['security.capability', Buffer.from([1, 0, 0, 2])]]) },
  { path: 'naïve-日本.txt', data: 'unicode' },
  { path: 'xattr "q" ü.txt', data: 'x', xattrs: userTrusted() },
  { path: 'xdir/', type: 'dir', xattrs: userTrusted() },
]);

function userTrusted(): Map<string, Buffer> {
  return new Map([
    ['user.test', Buffer.from('value')],
    ['trusted.x', Buffer.from('y')],
  ]);
}

describe('OCI layout -> ext4 root disk', () => {
  let image: string;
  let layout: string;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rootfs-test-'));
    process.env.MICROVM_HOME = path.join(tmp, 'home');
    layout = makeLayout('good', [lower, upper]);
    const resolved = await readOciLayout(layout);
    assert.equal(resolved.layers.length, 2);
    assert.deepEqual(resolved.config.cmd, ['sh']);
    const phases: string[] = [];
    const result = await ensureRootDisk(resolved, { onProgress: (e) => phases.push(e.phase) });
    assert.equal(result.cached, false);
    assert.ok(phases.includes('done'));
    image = result.path;
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('applies whiteouts and opaque directories', () => {
    const etc = debugfs(image, 'ls /etc');
    assert.match(etc, /kept/);
    assert.doesNotMatch(etc, /gone/);
    const opq = debugfs(image, 'ls /opq');
    assert.match(opq, /new/);
    assert.doesNotMatch(opq, /hidden/);
  });

  it('keeps hardlinks, symlinks verbatim, setuid, owners, xattrs and non-ASCII names', () => {
    const inode = (p: string): string => /Inode: (\d+)/.exec(debugfs(image, `stat ${p}`))?.[1] ?? 'none';
    assert.equal(inode('/link'), inode('/data'));
    assert.match(debugfs(image, 'stat /data'), /Links: 2/);
    assert.match(debugfs(image, 'stat /abs-link'), /Fast link dest: "\/etc\/passwd"/);
    assert.match(debugfs(image, 'stat /bin/su'), /Mode: {2}04755/);
    assert.match(debugfs(image, 'stat /home/user/file'), /User: {2}1000 {3}Group: {2}1000/);
    assert.match(debugfs(image, 'ea_list /cap'), /security.capability/);
    const escaped = [...Buffer.from('naïve-日本.txt')]
      .map((b) => (b < 0x80 ? String.fromCharCode(b) : `\\x${b.toString(16)}`))
      .join('');
    assert.ok(debugfs(image, 'ls /').includes(escaped));
    assert.equal(debugfs(image, 'cat /link'), 'shared content');
  });

  it('keeps the xattrs mke2fs drops, on files with odd names and on directories', () => {
    for (const request of ['ea_list "/xattr ""q"" ü.txt"', 'ea_list /xdir']) {
      const list = debugfs(image, request);
      assert.match(list, /user\.test \(5\) = "value"/, request);
      assert.match(list, /trusted\.x \(1\) = "y"/, request);
    }
  });

  it('refuses xattrs it cannot set (a name with a newline, a value no block holds), naming the image', async () => {
    const cases: Array<[string, string, Buffer]> = [
      ['xattr-newline', 'a\nb', Buffer.from('1')],
      ['xattr-big', 'big', Buffer.alloc(4096, 1)],
    ];
    for (const [name, file, value] of cases) {
      const dir = makeLayout(name, [tar([{ path: file, data: 'x', xattrs: new Map([['user.a', value]]) }])]);
      const resolved = await readOciLayout(dir);
      await assert.rejects(
        ensureRootDisk(resolved),
        (err) => isMicrovmError(err, 'E_ROOTFS_BUILD') && err.message.includes(dir),
      );
    }
    assert.deepEqual(
      fs.readdirSync(path.join(tmp, 'home', 'rootfs')).filter((f) => f.startsWith('.tmp-')),
      [],
    );
  });

  it('returns the cached disk on the second call without reading layers', async () => {
    const resolved = await readOciLayout(layout);
    for (const layer of resolved.layers) layer.path = '/nonexistent';
    const again = await ensureRootDisk(resolved);
    assert.deepEqual({ path: again.path, cached: again.cached }, { path: image, cached: true });
  });

  it('rejects a ../ entry and creates nothing outside', async () => {
    const canary = path.join(tmp, 'escape');
    const resolved = await readOciLayout(makeLayout('traversal', [tar([{ path: '../escape', data: 'x' }])]));
    await assert.rejects(
      ensureRootDisk(resolved),
      (err) => isMicrovmError(err, 'E_IMAGE_INVALID') && /\.\.\/escape/.test(err.message),
    );
    assert.equal(fs.existsSync(canary), false);
    assert.deepEqual(
      fs.readdirSync(path.join(tmp, 'home', 'rootfs')).filter((f) => f.startsWith('.tmp-')),
      [],
    );
  });

  it('rejects a tampered layer blob with E_IMAGE_DIGEST', async () => {
    const dir = makeLayout('tampered', [tar([{ path: 'f', data: 'a' }])]);
    const resolved = await readOciLayout(dir);
    // A different but well-formed layer of the same size: only the digest check can notice.
    const forged = gzipSync(tar([{ path: 'f', data: 'b' }]));
    assert.equal(forged.length, resolved.layers[0]!.size);
    fs.writeFileSync(resolved.layers[0]!.path, forged);
    await assert.rejects(ensureRootDisk(resolved), (err) => isMicrovmError(err, 'E_IMAGE_DIGEST'));
    assert.deepEqual(
      fs.readdirSync(path.join(tmp, 'home', 'rootfs')).filter((f) => f.startsWith('.tmp-')),
      [],
    );
  });

  it('rejects a tampered manifest with E_IMAGE_DIGEST', async () => {
    const dir = makeLayout('tampered-manifest', [tar([{ path: 'f', data: 'a' }])]);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
    const file = path.join(dir, 'blobs', 'sha256', index.manifests[0].digest.slice(7));
    // Same size, different bytes: only the digest check can notice.
    const doc = fs.readFileSync(file);
    doc[doc.indexOf('sh')] = 'z'.charCodeAt(0);
    fs.writeFileSync(file, doc);
    await assert.rejects(readOciLayout(dir), (err) => isMicrovmError(err, 'E_IMAGE_DIGEST'));
  });

  it('rejects bad digest syntax before building a path', async () => {
    for (const bad of ['sha256:../../etc/passwd', `sha256:${'A'.repeat(64)}`, `md5:${'a'.repeat(32)}`]) {
      const dir = makeLayout(`bad-${sha256(Buffer.from(bad)).slice(0, 8)}`, [tar([])], (m) => {
        (m.layers as Array<{ digest: string }>)[0]!.digest = bad;
      });
      await assert.rejects(
        readOciLayout(dir),
        (err) => isMicrovmError(err, 'E_IMAGE_DIGEST') && err.message.includes(bad),
      );
    }
  });

  it('rejects a 5 MiB manifest and an ambiguous document', async () => {
    const big = makeLayout('big', [tar([])], (m) => {
      m.annotations = { pad: 'x'.repeat(5 * 1024 * 1024) };
    });
    await assert.rejects(readOciLayout(big), (err) => isMicrovmError(err, 'E_IMAGE_TOO_LARGE'));
    const both = makeLayout('both', [tar([])], (m) => {
      m.manifests = [];
    });
    await assert.rejects(
      readOciLayout(both),
      (err) => isMicrovmError(err, 'E_IMAGE_INVALID') && /manifests.*layers/.test(err.message),
    );
  });

  it('stops a gzip bomb at maxLayerBytes', async () => {
    const bomb = Buffer.concat([
      encodeHeader(newHeader({ path: 'zeros', type: 'file', size: 64 * 1024 * 1024 })),
      Buffer.alloc(64 * 1024 * 1024),
    ]);
    const resolved = await readOciLayout(makeLayout('bomb', [bomb]));
    await assert.rejects(ensureRootDisk(resolved, { maxLayerBytes: 8 * 1024 * 1024 }), (err) =>
      isMicrovmError(err, 'E_IMAGE_TOO_LARGE'),
    );
  });

  it('reports a missing layout as E_IMAGE_NOT_FOUND', async () => {
    await assert.rejects(readOciLayout(path.join(tmp, 'nope')), (err) => isMicrovmError(err, 'E_IMAGE_NOT_FOUND'));
  });
});
