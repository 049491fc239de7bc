import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { buildBundles, Bundles, runCli } from './cli-helpers';
import { DEFAULT_PROTECT, openWorkspace, prepareWorkspace, Session } from '../../engine';
import { egressLogFile, readEgressLog } from '../../engine/workspace/egress-log';
import { loggingEvents } from '../helpers/session-events';
import { nodeImageLayout } from '../helpers/host-tools-image';
import { startNpmRegistry } from '../helpers/npm-registry';
import { SLOW } from '../helpers/slow';

/**
 * The workspace side of the egress policy, through the CLI as a user drives it: open with
 * `--network learn`, see what was reached (`net-policy`, `net-log`), approve it (`--write`),
 * then open with `--network allowlist`: the approved names answer, a new one is refused, and
 * both runs are in the workspace's egress log.
 */
let bundles: Bundles;
let web: http.Server;
let port: number;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-cli-egress-'));
fs.chmodSync(tmp, 0o755);
const env = {
  MICROVM_TEST_EGRESS_HOSTS: 'api.example.test=127.0.0.1,cdn.example.test=127.0.0.1,new.example.test=127.0.0.1',
};

before(async () => {
  bundles = await buildBundles();
  web = http.createServer((req, res) => res.end(`hello from ${req.headers.host?.split(':')[0]}\n`));
  web.listen(0, '127.0.0.1');
  await once(web, 'listening');
  port = (web.address() as AddressInfo).port;
});

after(() => {
  web.close();
  fs.rmSync(bundles.dir, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

const cli = (args: string[]) => runCli(bundles.cli, args, { env });

test('learn, approve, enforce: the names a learn run reached are approved and answer; a new one is refused', async () => {
  const folder = path.join(tmp, 'app');
  fs.mkdirSync(folder);
  const fetchAll = (names: string[]) =>
    names.map((n) => `wget -q -O- http://${n}:${port}/ || echo "failed ${n}"`).join('; ');
  const learn = await cli([
    'run',
    '--workspace-folder',
    folder,
    '--network',
    'learn',
    '--',
    'sh',
    '-c',
    fetchAll(['api.example.test', 'cdn.example.test']),
  ]);
  assert.equal(learn.code, 0, learn.stderr);
  assert.equal(learn.stdout.toString(), 'hello from api.example.test\nhello from cdn.example.test\n');
  assert.match(learn.stderr, /egress api\.example\.test:\d+ \d+ B up/);
  const policy = await cli(['net-policy', '--workspace-folder', folder, '--json']);
  assert.deepEqual(
    JSON.parse(policy.stdout.toString())
      .learned.map((l: { name: string }) => l.name)
      .sort(),
    ['api.example.test', 'cdn.example.test'],
  );
  // The process of each learned name, as the guest's agent reported it.
  assert.deepEqual(
    JSON.parse(policy.stdout.toString()).learned.map((l: { processes: unknown[] }) => l.processes),
    [[{ comm: 'wget', connections: 1 }], [{ comm: 'wget', connections: 1 }]],
  );
  const shown = (await cli(['net-policy', '--workspace-folder', folder])).stdout.toString();
  assert.match(
    shown,
    /api\.example\.test {2}1 connection\(s\), last \S+, by wget \(1 connection\) \(as the guest reports\)/,
  );
  const written = await cli(['net-policy', '--workspace-folder', folder, '--write']);
  assert.equal(written.code, 0, written.stderr);
  assert.match(
    written.stdout.toString(),
    /approved for network allowlist \(just written\): api\.example\.test, cdn\.example\.test/,
  );
  const enforce = await cli([
    'run',
    '--workspace-folder',
    folder,
    '--network',
    'allowlist',
    '--',
    'sh',
    '-c',
    fetchAll(['api.example.test', 'cdn.example.test', 'new.example.test']),
  ]);
  assert.equal(enforce.code, 0, enforce.stderr);
  assert.equal(
    enforce.stdout.toString(),
    'hello from api.example.test\nhello from cdn.example.test\nfailed new.example.test\n',
  );
  assert.match(
    enforce.stderr,
    /network allowlist: the VM reaches only api\.example\.test, .*cdn\.example\.test, .*github\.com/,
    'the approved names and the presets',
  );
  const log = (await cli(['net-log', '--workspace-folder', folder])).stdout.toString();
  assert.match(log, / learn api\.example\.test:\d+ .* by wget \(pid \d+, as the guest reports\)/);
  assert.match(log, / allowlist refused new\.example\.test:\d+ \(not in the allowlist\)/);
});

test('ask: a name outside the allowlist is put to the user once; Always approves it for the folder', async () => {
  const folder = path.join(tmp, 'asking');
  fs.mkdirSync(folder);
  const asked: string[] = [];
  const logs: string[] = [];
  const previous = process.env.MICROVM_TEST_EGRESS_HOSTS;
  process.env.MICROVM_TEST_EGRESS_HOSTS = env.MICROVM_TEST_EGRESS_HOSTS;
  const prepared = await prepareWorkspace({
    folder,
    allowLocalEnv: [],
    onConfigChanged: async () => 'apply',
    onOverLimits: async () => true,
    settings: {
      image: '',
      memoryMib: 512,
      cpus: 1,
      network: 'allowlist',
      allowedHostsPresets: false,
      symlinks: 'opaque',
      protect: [...DEFAULT_PROTECT],
      git: 'writable',
      trustCertificates: 'off',
    },
  });
  assert.ok(prepared);
  const session = new Session(
    prepared.plan,
    {
      ...loggingEvents(logs),
      askEgress: async (name) => {
        asked.push(name);
        return name === 'api.example.test' ? 'always' : 'deny';
      },
    },
    prepared.lifecycle,
  );
  try {
    const vm = await session.start();
    const run = (name: string) =>
      vm
        .exec({
          argv: ['/bin/sh', '-c', `wget -q -O- http://${name}:${port}/ || echo "failed ${name}"`],
          timeoutMs: 60_000,
        })
        .then((r) => r.stdout);
    assert.equal(await run('api.example.test'), 'hello from api.example.test\n');
    assert.equal(await run('api.example.test'), 'hello from api.example.test\n');
    assert.equal(await run('cdn.example.test'), 'failed cdn.example.test\n');
    assert.deepEqual(asked, ['api.example.test', 'cdn.example.test'], 'each name asked once');
    assert.deepEqual(openWorkspace(folder).egress?.allow, ['api.example.test'], 'Always approved it for the folder');
    assert.ok(
      logs.some((l) => l.includes('api.example.test:') && l.includes('the user said always')),
      logs.join('\n'),
    );
  } finally {
    await session.stop();
    if (previous === undefined) delete process.env.MICROVM_TEST_EGRESS_HOSTS;
    else process.env.MICROVM_TEST_EGRESS_HOSTS = previous;
  }
});

test(
  'npm install through the proxy: an allowed registry name installs; a registry not allowed fails fast with the reason in the guest and the log',
  SLOW,
  async () => {
    const registry = await startNpmRegistry('tiny-dep', '1.0.0', "module.exports = 'tiny';\n");
    const previous = process.env.MICROVM_TEST_EGRESS_HOSTS;
    process.env.MICROVM_TEST_EGRESS_HOSTS = 'registry.test=127.0.0.1,blocked.test=127.0.0.1';
    const open = async (name: string, registryName: string) => {
      const folder = path.join(tmp, name);
      fs.mkdirSync(folder);
      fs.writeFileSync(
        path.join(folder, 'package.json'),
        JSON.stringify({ name, version: '1.0.0', private: true, dependencies: { 'tiny-dep': '1.0.0' } }),
      );
      fs.writeFileSync(
        path.join(folder, '.npmrc'),
        `registry=http://${registryName}:${registry.port}/\nfetch-retries=0\n`,
      );
      const logs: string[] = [];
      const prepared = await prepareWorkspace({
        folder,
        allowLocalEnv: [],
        onConfigChanged: async () => 'apply',
        onOverLimits: async () => true,
        settings: {
          image: nodeImageLayout(),
          memoryMib: 768,
          cpus: 1,
          network: 'allowlist',
          allowedHosts: ['registry.test'],
          allowedHostsPresets: false,
          symlinks: 'opaque',
          protect: [...DEFAULT_PROTECT],
          git: 'writable',
          trustCertificates: 'off',
        },
      });
      assert.ok(prepared);
      return { folder, logs, session: new Session(prepared.plan, loggingEvents(logs), prepared.lifecycle) };
    };
    const install = async (session: Session) => {
      const child = session.spawn(['npm', 'install', '--no-audit', '--no-fund', '--loglevel=error']);
      let out = '';
      const drain = async (read: () => Promise<Buffer>) => {
        for (let c = await read(); c.length > 0; c = await read()) out += c.toString('utf8');
      };
      await Promise.all([drain(() => child.readStdout()), drain(() => child.readStderr())]);
      return { out, code: (await child.wait()).exitCode };
    };
    try {
      const allowed = await open('npm-allowed', 'registry.test');
      try {
        await allowed.session.start();
        const t0 = Date.now();
        const result = await install(allowed.session);
        const installMs = Date.now() - t0;
        console.log(`npm install through the proxy: ${installMs} ms`);
        assert.equal(result.code, 0, `${result.out}\n${allowed.logs.join('\n')}`);
        // node_modules is on the workspace's volume, in the VM.
        const child = allowed.session.spawn(['node', '-e', "console.log(require('tiny-dep'))"]);
        let printed = '';
        for (let c = await child.readStdout(); c.length > 0; c = await child.readStdout())
          printed += c.toString('utf8');
        await child.wait();
        assert.equal(printed, 'tiny\n');
        assert.ok(registry.requests.includes('GET /tiny-dep/-/tiny-dep-1.0.0.tgz'), registry.requests.join('\n'));
      } finally {
        await allowed.session.stop();
      }
      const blocked = await open('npm-blocked', 'blocked.test');
      try {
        await blocked.session.start();
        const started = Date.now();
        const result = await install(blocked.session);
        const ended = Date.now();
        const ms = ended - started;
        assert.notEqual(result.code, 0);
        assert.match(result.out, /403/, result.out);
        // It gives up instead of retrying: the proxy refused it once, in one burst (a retry comes
        // 10 s or more later), and npm ended soon after. Measured from the refusal, not from npm's
        // start, which alone takes most of a minute under TCG and swings with the host's load.
        const refusals = readEgressLog(egressLogFile(blocked.folder))
          .filter((l) => !l.allowed && l.name === 'blocked.test')
          .map((l) => Date.parse(l.at));
        assert.ok(refusals.length > 0, 'the refusal is in the egress log');
        const last = Math.max(...refusals);
        assert.ok(last - Math.min(...refusals) < 5_000, `refused ${refusals.length} times: npm retried`);
        assert.ok(ended - last < 45_000, `npm ended ${ended - last} ms after the proxy refused it: ${result.out}`);
        console.log(`npm install against a refused registry failed in ${ms} ms, ${ended - last} ms after the refusal`);
        assert.ok(
          blocked.logs.some((l) => /egress refused blocked\.test:\d+ \(not in the allowlist\)/.test(l)),
          blocked.logs.join('\n'),
        );
      } finally {
        await blocked.session.stop();
      }
    } finally {
      registry.close();
      if (previous === undefined) delete process.env.MICROVM_TEST_EGRESS_HOSTS;
      else process.env.MICROVM_TEST_EGRESS_HOSTS = previous;
    }
  },
);
