import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { Image, isMicrovmError } from '../../engine';
import { dockerSaveOf, ociArchiveOf } from '../helpers/archive-fixtures';
import { debianBaseLayer } from '../helpers/debian-base';
import { gzipLayer, imageOf, tarOf } from '../helpers/image-fixtures';

/** Images from an OCI archive and a `docker save` tarball boot (one VM each). */
let tmp: string;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-archives-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function bootAndRead(ref: string, file: string): Promise<string> {
  const image = await Image.build({ ref });
  const pool = image.pool({ min: 1, max: 1 });
  try {
    const vm = await pool.acquire();
    try {
      const result = await vm.exec({ argv: ['cat', file] });
      assert.equal(result.exitCode, 0, result.stderr);
      return result.stdout;
    } finally {
      await vm.release();
    }
  } finally {
    await pool.shutdown();
  }
}

describe('an OCI archive', () => {
  it('boots', async () => {
    const image = imageOf([debianBaseLayer(), gzipLayer(tarOf([{ path: 'etc/from-archive', data: 'oci-archive' }]))]);
    const file = path.join(tmp, 'image.oci.tar');
    fs.writeFileSync(file, ociArchiveOf(image));
    assert.equal(await bootAndRead(file, '/etc/from-archive'), 'oci-archive');
    const again = performance.now();
    await Image.build({ ref: `oci-archive:${file}`, snapshot: false });
    assert.ok(performance.now() - again < 200, 'an unchanged archive is not read again');
  });

  it('a blob whose bytes do not match its name is rejected', async () => {
    const image = imageOf([gzipLayer(tarOf([{ path: 'x', data: 'genuine' }]))]);
    const [layer] = image.layers;
    assert.ok(layer);
    image.layers[0] = { ...layer, data: Buffer.from(layer.data).fill(1, 20, 30) };
    const file = path.join(tmp, 'tampered.oci.tar');
    fs.writeFileSync(file, ociArchiveOf(image));
    await assert.rejects(Image.build({ ref: file, snapshot: false }), (err: unknown) =>
      isMicrovmError(err, 'E_IMAGE_DIGEST'),
    );
  });

  it('an entry with ../ in the archive is rejected without writing outside the store', async () => {
    const file = path.join(tmp, 'escape.tar');
    fs.writeFileSync(file, tarOf([{ path: '../../escape-sentinel', data: 'x' }]));
    await assert.rejects(Image.build({ ref: file, snapshot: false }), (err: unknown) =>
      isMicrovmError(err, 'E_IMAGE_INVALID'),
    );
    assert.ok(!fs.existsSync(path.resolve(tmp, '../../escape-sentinel')));
  });
});

describe('a docker save tarball', () => {
  it('boots, with plain tar layers and a layer stored as a symlink', async () => {
    const base = gunzipSync(debianBaseLayer().data);
    const upper = tarOf([{ path: 'etc/from-docker-save', data: 'docker-save' }]);
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Env: ['A=1'] },
        rootfs: { type: 'layers', diff_ids: [] },
      }),
    );
    const hex = createHash('sha256').update(config).digest('hex');
    const file = path.join(tmp, 'image.docker.tar');
    fs.writeFileSync(file, dockerSaveOf(config, [base, upper], hex, true));
    assert.equal(await bootAndRead(`docker-archive:${file}`, '/etc/from-docker-save'), 'docker-save');
  });
});
