import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_PROTECT, PlanSettings, prepareWorkspace, Session } from '../../engine';
import { GUEST_CA_BUNDLE, GUEST_HOST_CAS, hostCertificates } from '../../engine/workspace/host-certificates';
import { nodeImageLayout } from '../helpers/host-tools-image';
import { loggingEvents } from '../helpers/session-events';
import { makeTestCa } from '../helpers/test-ca';
import { startNpmRegistry } from '../helpers/npm-registry';
import { SLOW } from '../helpers/slow';

/**
 * microvm.trustHostCertificates: the host's extra CAs reach the guest's store and its
 * toolchains' variables, so TLS through a TLS-inspecting proxy or to a private registry works
 * in the VM with no setup; without them the failure is named in the log with the fix.
 */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-ws-cas-'));
fs.chmodSync(tmp, 0o755);
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const ca = makeTestCa(path.join(tmp, 'ca'), 'microvm-test-proxy-ca');

/** A TLS server in the guest with a certificate the test CA signed, and a client that trusts only what Node is told to. */
const CHECK = `
const https = require('https');
const fs = require('fs');
const server = https.createServer({ cert: fs.readFileSync('leaf.pem'), key: fs.readFileSync('leaf.key') }, (q, r) => r.end('hello'));
server.listen(8443, '127.0.0.1', () => {
  https.get('https://localhost:8443/', (res) => { res.resume(); res.on('end', () => { console.log('tls ok'); server.close(); }); })
    .on('error', (err) => { console.log('tls failed ' + err.code); server.close(); process.exitCode = 1; });
});
`;

function workspace(name: string, config: Record<string, unknown>): string {
  const folder = path.join(tmp, name);
  fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
  fs.writeFileSync(path.join(folder, '.devcontainer', 'devcontainer.json'), JSON.stringify(config));
  fs.copyFileSync(ca.leafFile, path.join(folder, 'leaf.pem'));
  fs.copyFileSync(ca.leafKeyFile, path.join(folder, 'leaf.key'));
  fs.writeFileSync(path.join(folder, 'check.js'), CHECK);
  return folder;
}

async function open(folder: string, logs: string[], settings: Partial<PlanSettings>): Promise<Session> {
  const prepared = await prepareWorkspace({
    folder,
    allowLocalEnv: [],
    onConfigChanged: async () => 'apply',
    onOverLimits: async () => true,
    settings: {
      image: nodeImageLayout(),
      memoryMib: 512,
      cpus: 1,
      network: 'none',
      symlinks: 'opaque',
      protect: [...DEFAULT_PROTECT],
      git: 'writable',
      ...settings,
    },
  });
  assert.ok(prepared);
  return new Session(prepared.plan, loggingEvents(logs), prepared.lifecycle);
}

async function output(session: Session, argv: string[]): Promise<string> {
  const child = session.spawn(argv);
  let out = '';
  for (let chunk = await child.readStdout(); chunk.length > 0; chunk = await child.readStdout())
    out += chunk.toString('utf8');
  await child.wait();
  return out;
}

test("a CA file in trustHostCertificates: the guest store, the toolchains' variables and Node trust it; it is installed once per container", async () => {
  const folder = workspace('trusted', { postCreateCommand: 'node check.js > hook.txt' });
  const logs: string[] = [];
  const session = await open(folder, logs, { trustCertificates: [ca.caFile] });
  try {
    await session.start();
    await session.hooksSettled();
    assert.equal(fs.readFileSync(path.join(folder, 'hook.txt'), 'utf8'), 'tls ok\n', logs.join('\n'));
    assert.equal(await output(session, ['node', 'check.js']), 'tls ok\n', 'terminals trust it too');
    const env = await output(session, [
      '/bin/sh',
      '-c',
      'echo $NODE_EXTRA_CA_CERTS $SSL_CERT_FILE $GIT_SSL_CAINFO $CURL_CA_BUNDLE $REQUESTS_CA_BUNDLE $PIP_CERT',
    ]);
    assert.equal(env, `${GUEST_HOST_CAS} ${[1, 2, 3, 4, 5].map(() => GUEST_CA_BUNDLE).join(' ')}\n`);
    const bundle = await output(session, ['cat', GUEST_CA_BUNDLE]);
    assert.ok(bundle.includes(fs.readFileSync(ca.caFile, 'utf8').trim().split('\n')[1]!), 'the bundle holds the CA');
    assert.ok(
      logs.some((l) => l.includes('the VM trusts the 1 CA(s) this host added: CN=microvm-test-proxy-ca')),
      logs.join('\n'),
    );
  } finally {
    await session.stop();
  }
});

test('without the CA the TLS failure is named in the log with the fix', async () => {
  const folder = workspace('untrusted', { postCreateCommand: 'node check.js' });
  const logs: string[] = [];
  const session = await open(folder, logs, { trustCertificates: 'off' });
  try {
    await session.start();
    await session.hooksSettled();
    assert.ok(
      logs.some((l) =>
        /does not trust the server's certificate issuer \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\).*trustHostCertificates to "auto"/.test(
          l,
        ),
      ),
      logs.join('\n'),
    );
  } finally {
    await session.stop();
  }
});

test('auto on this machine: npm install from the real npm registry works over TLS in the guest when the host trusts an added CA', async (t) => {
  if (hostCertificates('auto').subjects.length === 0) return t.skip('this host added no CA to its store');
  const reachable = await fetch('https://registry.npmjs.org/left-pad', { signal: AbortSignal.timeout(10_000) }).then(
    (r) => r.ok,
    () => false,
  );
  if (!reachable) return t.skip('the npm registry is not reachable from this host');
  const folder = workspace('registry', {});
  const logs: string[] = [];
  const session = await open(folder, logs, { network: 'outbound', trustCertificates: 'auto' });
  try {
    await session.start();
    const got = await output(session, [
      'node',
      '-e',
      "require('https').get('https://registry.npmjs.org/left-pad', (r) => { r.resume(); console.log('status ' + r.statusCode); }).on('error', (e) => console.log('failed ' + e.code))",
    ]);
    assert.equal(got, 'status 200\n', logs.join('\n'));
    // A real project's install: package.json in the folder, the tarball from registry.npmjs.org.
    fs.writeFileSync(
      path.join(folder, 'package.json'),
      JSON.stringify({ name: 'real-install', version: '1.0.0', private: true, dependencies: { 'left-pad': '1.3.0' } }),
    );
    const install = await output(session, [
      'sh',
      '-c',
      'npm install --no-audit --no-fund --loglevel=error --fetch-retries=0 2>&1; echo "exit $?"',
    ]);
    assert.match(install, /exit 0\n$/, `npm install: ${install}\n${logs.join('\n')}`);
    assert.equal(await output(session, ['node', '-e', "console.log(require('left-pad')('7', 3, '0'))"]), '007\n');
  } finally {
    await session.stop();
  }
});

test(
  'auto, npm install over TLS through the egress proxy: a registry signed by a CA the host added installs; with trustHostCertificates off it fails with the issuer hint',
  SLOW,
  async () => {
    // The registry's certificate names registry.test, which the proxy's test resolver sends to the host's loopback.
    const registryCa = makeTestCa(path.join(tmp, 'registry-ca'), 'microvm-test-registry-ca', ['registry.test']);
    const registry = await startNpmRegistry('tiny-dep', '1.0.0', "module.exports = 'tiny';\n", {
      cert: fs.readFileSync(registryCa.leafFile),
      key: fs.readFileSync(registryCa.leafKeyFile),
    });
    const previous = process.env.MICROVM_TEST_EGRESS_HOSTS;
    process.env.MICROVM_TEST_EGRESS_HOSTS = 'registry.test=127.0.0.1';
    // The host adds the CA the way `auto` reads it: the file of NODE_EXTRA_CA_CERTS (with what it named before).
    const previousExtra = process.env.NODE_EXTRA_CA_CERTS;
    const extra = path.join(tmp, 'host-extra-cas.pem');
    fs.writeFileSync(
      extra,
      (previousExtra && fs.existsSync(previousExtra) ? fs.readFileSync(previousExtra, 'utf8') + '\n' : '') +
        fs.readFileSync(registryCa.caFile, 'utf8'),
    );
    process.env.NODE_EXTRA_CA_CERTS = extra;
    const project = (name: string) => {
      const folder = workspace(name, { postCreateCommand: 'npm install --no-audit --no-fund --loglevel=error' });
      fs.writeFileSync(
        path.join(folder, 'package.json'),
        JSON.stringify({ name, version: '1.0.0', private: true, dependencies: { 'tiny-dep': '1.0.0' } }),
      );
      fs.writeFileSync(
        path.join(folder, '.npmrc'),
        `registry=https://registry.test:${registry.port}/\nfetch-retries=0\n`,
      );
      return folder;
    };
    const network = {
      network: 'allowlist',
      allowedHosts: ['registry.test'],
      allowedHostsPresets: false,
      memoryMib: 768,
    } as const;
    try {
      const trustedLogs: string[] = [];
      const trusted = await open(project('npm-tls-trusted'), trustedLogs, {
        ...network,
        trustCertificates: 'auto',
      });
      try {
        await trusted.start();
        await trusted.hooksSettled();
        assert.equal(
          await output(trusted, ['node', '-e', "console.log(require('tiny-dep'))"]),
          'tiny\n',
          trustedLogs.join('\n'),
        );
        assert.ok(registry.requests.includes('GET /tiny-dep/-/tiny-dep-1.0.0.tgz'), registry.requests.join('\n'));
        assert.ok(!trustedLogs.some((l) => l.includes('does not trust')), trustedLogs.join('\n'));
      } finally {
        await trusted.stop();
      }
      const untrustedLogs: string[] = [];
      const untrusted = await open(project('npm-tls-untrusted'), untrustedLogs, {
        ...network,
        trustCertificates: 'off',
      });
      try {
        await untrusted.start();
        await untrusted.hooksSettled();
        assert.ok(
          untrustedLogs.some((l) =>
            /does not trust the server's certificate issuer \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)\).*trustHostCertificates to "auto"/.test(
              l,
            ),
          ),
          untrustedLogs.join('\n'),
        );
        assert.equal(
          await output(untrusted, ['sh', '-c', 'test -d node_modules/tiny-dep || echo missing']),
          'missing\n',
        );
      } finally {
        await untrusted.stop();
      }
    } finally {
      registry.close();
      if (previous === undefined) delete process.env.MICROVM_TEST_EGRESS_HOSTS;
      else process.env.MICROVM_TEST_EGRESS_HOSTS = previous;
      if (previousExtra === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = previousExtra;
    }
  },
);
