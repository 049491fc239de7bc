import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { ExecChild, Image, Pool, Vm } from '../../engine';

/** One VM with network 'none': no NIC at all, yet forwards work over the agent channel. */
let pool: Pool;
let vm: Vm;
let server: ExecChild | undefined;

before(async () => {
  const image = await Image.build({ network: 'none' });
  pool = image.pool({ min: 1, max: 1 });
  vm = await pool.acquire();
});

after(async () => {
  server?.signal('SIGKILL');
  await vm?.release();
  await pool?.shutdown();
});

test("network 'none': the guest has only lo, and cannot resolve or connect anywhere", async () => {
  const links = await vm.exec({ argv: ['ls', '/sys/class/net'] });
  assert.deepEqual(links.stdout.trim().split(/\s+/), ['lo']);
  const resolve = await vm.exec({ argv: ['nslookup', 'deb.debian.org'], timeoutMs: 20_000 });
  assert.notEqual(resolve.exitCode, 0);
  for (const target of ['10.0.2.2 80', '10.0.2.3 53', '1.1.1.1 80', '203.0.113.80 80']) {
    const r = await vm.exec({ argv: ['sh', '-c', `nc -w 2 ${target} </dev/null`], timeoutMs: 20_000 });
    assert.notEqual(r.exitCode, 0, `connected to ${target}`);
    assert.match(r.stderr, /unreachable|timed out|refused/i);
  }
});

test("network 'none': a forward to a guest HTTP server still works", async () => {
  await vm.writeFile('/srv/index.html', 'offline but forwarded\n');
  server = vm.spawn({ argv: ['httpd', '-f', '-p', '3000', '-h', '/srv'], timeoutMs: 0 });
  while (!(await vm.listeningPorts()).some((l) => l.port === 3000)) await new Promise((r) => setTimeout(r, 100));
  const forwarder = await vm.exposeTcp(0, 3000);
  const body = await new Promise<string>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: forwarder.port, path: '/index.html', agent: false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
        });
        res.on('end', () => resolve(text));
      })
      .on('error', reject);
  });
  assert.equal(body, 'offline but forwarded\n');
  await forwarder.stop();
});
