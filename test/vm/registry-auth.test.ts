import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { Image, isMicrovmError } from '../../engine';
import { gzipLayer, imageOf, tarOf } from '../helpers/image-fixtures';
import { startRegistry, type RegistryAuth, type TestRegistry } from '../helpers/registry-server';
import { pushImage } from '../helpers/registry-push';

/** Pulls from real registries (docker-registry on loopback) with basic and token auth. No VM is booted. */
let tmp: string;
const savedHome = process.env.MICROVM_HOME;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-auth-'));
  process.env.MICROVM_HOME = path.join(tmp, 'home');
});
after(() => {
  process.env.MICROVM_HOME = savedHome;
  delete process.env.DOCKER_CONFIG;
  fs.rmSync(tmp, { recursive: true, force: true });
});

function useDockerConfig(name: string, auths: Record<string, unknown>): void {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths }));
  process.env.DOCKER_CONFIG = dir;
}

for (const kind of ['basic', 'token'] as const) {
  describe(`a registry with ${kind} auth`, () => {
    let registry: TestRegistry;
    const auth: RegistryAuth = { kind, username: 'alice', password: 'correct horse' };
    const image = imageOf([
      gzipLayer(
        tarOf([
          { path: 'etc/', type: 'dir' },
          { path: `etc/${kind}`, data: kind },
        ]),
      ),
    ]);

    before(async () => {
      registry = await startRegistry(path.join(tmp, kind), auth);
      await pushImage(registry.base, 'private/app', '1', image, registry.pushAuthorization('private/app'));
    });
    after(() => registry.stop());

    it('without credentials: a clear E_REGISTRY_AUTH error naming docker login', async () => {
      useDockerConfig(`${kind}-none`, {});
      await assert.rejects(Image.build({ ref: `${registry.host}/private/app:1`, snapshot: false }), (err: unknown) => {
        assert.ok(isMicrovmError(err, 'E_REGISTRY_AUTH'), String(err));
        assert.match(err.message, /docker login/);
        assert.match(err.message, new RegExp(registry.host.replace(/\./g, '\\.')));
        return true;
      });
    });

    it('with wrong credentials: E_REGISTRY_AUTH', async () => {
      useDockerConfig(`${kind}-wrong`, { [registry.host]: { auth: Buffer.from('alice:wrong').toString('base64') } });
      await assert.rejects(Image.build({ ref: `${registry.host}/private/app:1`, snapshot: false }), (err: unknown) =>
        isMicrovmError(err, 'E_REGISTRY_AUTH'),
      );
    });

    it('with credentials from config.json auths: pulls the image', async () => {
      useDockerConfig(`${kind}-ok`, {
        [`http://${registry.host}`]: { auth: Buffer.from('alice:correct horse').toString('base64') },
      });
      const built = await Image.build({ ref: `${registry.host}/private/app:1`, snapshot: false });
      assert.equal(built.manifestDigest, image.manifest.digest);
    });
  });
}

describe('an open registry', () => {
  it('pulls anonymously; an unknown tag is E_IMAGE_NOT_FOUND', async () => {
    const registry = await startRegistry(path.join(tmp, 'open'));
    try {
      delete process.env.DOCKER_CONFIG;
      const image = imageOf([gzipLayer(tarOf([{ path: 'open', data: 'x' }]))]);
      await pushImage(registry.base, 'team/app', '1', image);
      assert.equal(
        (await Image.build({ ref: `${registry.host}/team/app:1`, snapshot: false })).manifestDigest,
        image.manifest.digest,
      );
      await assert.rejects(Image.build({ ref: `${registry.host}/team/app:nope`, snapshot: false }), (err: unknown) =>
        isMicrovmError(err, 'E_IMAGE_NOT_FOUND'),
      );
    } finally {
      await registry.stop();
    }
  });
});
