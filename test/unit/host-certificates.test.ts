import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { hostCertificates, tlsFailureHint } from '../../engine/workspace/host-certificates';
import { makeTestCa } from '../helpers/test-ca';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-cas-'));
const one = makeTestCa(path.join(tmp, 'one'), 'corp-proxy-ca');
const two = makeTestCa(path.join(tmp, 'two'), 'private-registry-ca');

test('auto: the CAs added to the system store and NODE_EXTRA_CA_CERTS, deduplicated; only CA certificates', () => {
  const store = path.join(tmp, 'store');
  fs.mkdirSync(path.join(store, 'sub'), { recursive: true });
  fs.copyFileSync(one.caFile, path.join(store, 'corp.crt'));
  fs.copyFileSync(one.caFile, path.join(store, 'sub', 'again.crt'));
  fs.copyFileSync(one.leafFile, path.join(store, 'leaf.crt'));
  fs.writeFileSync(path.join(store, 'notes.txt'), 'not a certificate');
  // NODE_EXTRA_CA_CERTS often names a whole system bundle: its public roots are not "added" ones.
  const bundle = path.join(tmp, 'bundle.pem');
  fs.writeFileSync(bundle, [...tls.rootCertificates.slice(0, 3), fs.readFileSync(two.caFile, 'utf8')].join('\n'));
  const certs = hostCertificates('auto', {
    dirs: [store, path.join(tmp, 'absent')],
    env: { NODE_EXTRA_CA_CERTS: bundle },
  });
  assert.deepEqual(certs.subjects, ['CN=corp-proxy-ca', 'CN=private-registry-ca']);
  assert.equal(certs.publicRoots, 3);
  assert.equal(certs.pem.match(/BEGIN CERTIFICATE/g)?.length, 2);
  assert.ok(
    certs.skipped.some((s) => /leaf\.crt: CN=localhost is not a CA certificate/.test(s)),
    certs.skipped.join('\n'),
  );
});

test('a list of files: a private key or garbage in them sends nothing of it; expired CAs are left out; off is none', () => {
  const mixed = path.join(tmp, 'mixed.pem');
  fs.writeFileSync(
    mixed,
    [
      fs.readFileSync(one.leafKeyFile, 'utf8'),
      fs.readFileSync(one.caFile, 'utf8'),
      '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n',
    ].join('\n'),
  );
  const certs = hostCertificates([mixed, path.join(tmp, 'missing.pem'), one.leafKeyFile]);
  assert.deepEqual(certs.subjects, ['CN=corp-proxy-ca']);
  assert.ok(!certs.pem.includes('PRIVATE KEY'));
  assert.equal(certs.skipped.length, 3, certs.skipped.join('\n'));
  const later = hostCertificates([one.caFile], { now: new Date(Date.now() + 10 * 86_400_000) });
  assert.deepEqual(later.subjects, []);
  assert.match(later.skipped[0]!, /expired/);
  assert.deepEqual(hostCertificates('off', { dirs: [path.join(tmp, 'store')] }).subjects, []);
});

test('a TLS failure in guest output gets a hint with the fix for the setting', () => {
  const npm = 'npm error code UNABLE_TO_GET_ISSUER_CERT_LOCALLY\nnpm error errno UNABLE_TO_GET_ISSUER_CERT_LOCALLY';
  assert.match(tlsFailureHint(npm, 'off', 0) ?? '', /set microvm.trustHostCertificates to "auto"/);
  assert.match(
    tlsFailureHint('curl: (60) SSL certificate problem: unable to get local issuer certificate', 'auto', 0) ?? '',
    /no host CA was found/,
  );
  assert.match(
    tlsFailureHint('ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED]', 'auto', 2) ?? '',
    /the 2 host CA\(s\) installed do not include it/,
  );
  assert.equal(tlsFailureHint('added 12 packages in 3s', 'auto', 1), undefined);
});
