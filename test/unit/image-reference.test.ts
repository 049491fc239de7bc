import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { isMicrovmError } from '../../engine/errors';
import { parseReference } from '../../engine/image/reference';
import { parseChallenge } from '../../engine/image/registry/challenge';
import { credentialsFor } from '../../engine/image/registry/credentials';
import { registryScheme } from '../../engine/image/registry/transport';

const HEX = 'a'.repeat(64);

describe('image references (Docker normalisation)', () => {
  const cases: Array<[string, string]> = [
    ['node', 'docker.io/library/node:latest'],
    ['node:20-alpine', 'docker.io/library/node:20-alpine'],
    ['owner/img', 'docker.io/owner/img:latest'],
    ['index.docker.io/library/debian:12', 'docker.io/library/debian:12'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/team/app:1', 'localhost:5000/team/app:1'],
    [`ghcr.io/owner/img@sha256:${HEX}`, `ghcr.io/owner/img@sha256:${HEX}`],
    [`debian:12@sha256:${HEX}`, `docker.io/library/debian:12@sha256:${HEX}`],
    ['127.0.0.1:5000/a/b/c:v1.2_x', '127.0.0.1:5000/a/b/c:v1.2_x'],
  ];
  for (const [input, canonical] of cases) {
    it(`${input} -> ${canonical}`, () => assert.equal(parseReference(input).canonical, canonical));
  }

  it('splits registry, repository, tag and digest', () => {
    assert.deepEqual(parseReference(`localhost:5000/team/app:1@sha256:${HEX}`), {
      registry: 'localhost:5000',
      repository: 'team/app',
      tag: '1',
      digest: `sha256:${HEX}`,
      canonical: `localhost:5000/team/app:1@sha256:${HEX}`,
    });
  });

  for (const bad of [
    '',
    'UPPER/case',
    'a//b',
    'app:',
    'app:-tag',
    `app@sha256:${'A'.repeat(64)}`,
    'app@sha256:../../etc/x',
    `app@md5:${'a'.repeat(32)}`,
    'app@sha256:abc',
    'a b',
    `x/${'a'.repeat(300)}`,
  ]) {
    it(`rejects ${JSON.stringify(bad.slice(0, 40))} with E_IMAGE_REF`, () => {
      assert.throws(
        () => parseReference(bad),
        (err) => isMicrovmError(err, 'E_IMAGE_REF'),
      );
    });
  }
});

describe('registry transport and auth parsing', () => {
  it('plain HTTP only for loopback and listed insecure registries', () => {
    assert.equal(registryScheme('localhost:5000'), 'http');
    assert.equal(registryScheme('127.0.0.2:80'), 'http');
    assert.equal(registryScheme('[::1]:5000'), 'http');
    assert.equal(registryScheme('ghcr.io'), 'https');
    assert.equal(registryScheme('10.0.0.5:5000', {}), 'https');
    assert.equal(registryScheme('10.0.0.5:5000', { MICROVM_INSECURE_REGISTRIES: 'foo:1, 10.0.0.5:5000' }), 'http');
  });

  it('parses WWW-Authenticate challenges', () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/node:pull"',
      ),
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/node:pull',
        },
      },
    );
    assert.deepEqual(parseChallenge('Basic realm="x \\"q\\""'), { scheme: 'basic', params: { realm: 'x "q"' } });
    assert.equal(parseChallenge(undefined), null);
    assert.equal(parseChallenge('x'.repeat(10_000)), null);
  });

  it('reads auths from a docker config.json', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-dockercfg-'));
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') },
          'localhost:5000': { username: 'u', password: 'p:w' },
          'ghcr.io': { identitytoken: 'refresh' },
        },
      }),
    );
    assert.deepEqual(credentialsFor('docker.io', file), { kind: 'basic', username: 'hub', password: 'pw' });
    assert.deepEqual(credentialsFor('localhost:5000', file), { kind: 'basic', username: 'u', password: 'p:w' });
    assert.deepEqual(credentialsFor('ghcr.io', file), {
      kind: 'identity-token',
      username: '<token>',
      token: 'refresh',
    });
    assert.equal(credentialsFor('quay.io', file), null);
    assert.equal(credentialsFor('quay.io', path.join(dir, 'missing.json')), null);
    fs.writeFileSync(file, '{not json');
    assert.throws(
      () => credentialsFor('quay.io', file),
      (err) => isMicrovmError(err, 'E_REGISTRY_AUTH'),
    );
    fs.rmSync(dir, { recursive: true });
  });
});
