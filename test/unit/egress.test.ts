import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { allows, checkPattern, checkPatterns } from '../../engine/egress/policy';
import { isPublicAddress } from '../../engine/egress/public-address';
import { readHelloName } from '../../engine/egress/sni';
import { checkTunnelStart } from '../../engine/egress/tunnel-start';
import { EgressEvent, EgressProxy } from '../../engine/egress/proxy';
import { describeEgress } from '../../engine/egress/log';
import { isMicrovmError } from '../../engine';

test('patterns: names and *.domain, canonical; addresses, whole TLDs and garbage refused', () => {
  assert.deepEqual(checkPattern('Registry.NPMJS.org.'), { pattern: 'registry.npmjs.org' });
  assert.deepEqual(checkPattern('*.GitHub.com'), { pattern: '*.github.com' });
  for (const bad of ['*', '*.com', '1.2.3.4', 'a..b', 'exa mple.com', '-x.com', 'http://x.com', '[::1]'])
    assert.ok('error' in checkPattern(bad), bad);
  assert.throws(
    () => checkPatterns(['ok.com', '*', '1.2.3.4'], 'allow'),
    (e) => isMicrovmError(e, 'E_BAD_OPTION') && e.message.includes('"*"') && e.message.includes('"1.2.3.4"'),
  );
  const policy = { mode: 'allowlist' as const, allow: ['registry.npmjs.org', '*.github.com'] };
  assert.ok(allows(policy, 'registry.npmjs.org'));
  assert.ok(allows(policy, 'api.github.com'));
  assert.ok(!allows(policy, 'github.com'), '*.github.com does not match github.com itself');
  assert.ok(!allows(policy, 'evilgithub.com'));
  assert.ok(!allows(policy, 'registry.npmjs.org.evil.com'));
  assert.ok(allows({ mode: 'learn', allow: [] }, 'anything.example'));
});

test('addresses beyond the host only: private, loopback, link-local, CGNAT, ULA, mapped, NAT64 and 6to4 forms refused', () => {
  // Fake-IP resolvers answer with reserved ranges (this machine's: 203.0.113.80, proxy tools': 198.18/15).
  for (const ok of ['8.8.8.8', '104.16.1.1', '2606:4700::1111', '203.0.113.80', '198.18.0.5', '::ffff:8.8.8.8'])
    assert.ok(isPublicAddress(ok), ok);
  for (const no of [
    '127.0.0.1',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '64:ff9b::a00:1',
    '2002:7f00:1::1',
    '2001:0:4136:e378:8000:63bf:3fff:fdd2',
    'not-an-ip',
  ]) {
    assert.ok(!isPublicAddress(no), no);
  }
});

/** A real ClientHello as Node's TLS client sends it, captured by a plain TCP server. */
async function captureHello(servername: string | undefined): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const got = once(server, 'connection').then(async (args) => {
    const socket = args[0] as net.Socket;
    const [chunk] = await once(socket, 'data');
    socket.destroy();
    return chunk as Buffer;
  });
  const client = tls.connect({
    host: '127.0.0.1',
    port: (server.address() as net.AddressInfo).port,
    ...(servername ? { servername } : {}),
    rejectUnauthorized: false,
  });
  client.on('error', () => undefined);
  const hello = await got;
  client.destroy();
  server.close();
  return hello;
}

test('SNI: read from a real ClientHello, in pieces; not-TLS and malformed hellos told apart', async () => {
  const hello = await captureHello('registry.npmjs.org');
  assert.deepEqual(readHelloName(hello), { name: 'registry.npmjs.org' });
  assert.equal(readHelloName(hello.subarray(0, 3)), 'need-more');
  assert.equal(readHelloName(hello.subarray(0, hello.length - 1)), 'need-more');
  assert.deepEqual(readHelloName(await captureHello(undefined)), { none: true });
  assert.equal(readHelloName(Buffer.from('GET / HTTP/1.1\r\n')), 'not-tls');
  const broken = Buffer.from(hello);
  broken.writeUInt16BE(0xffff, 5 + 4 + 2 + 32 + 1 + broken[5 + 4 + 2 + 32]!);
  assert.equal(readHelloName(broken), 'malformed');
  for (let i = 0; i < 200; i++) {
    const fuzzed = Buffer.from(hello);
    fuzzed[5 + Math.floor(Math.random() * (hello.length - 5))]! ^= 1 << Math.floor(Math.random() * 8);
    readHelloName(fuzzed); // never throws
  }
});

test('the start of a tunnel: the TLS hello must name the allowed server; no name, plain HTTP and broken hellos are refused; other protocols pass', async () => {
  const refusal = (start: ReturnType<typeof checkTunnelStart>) =>
    start === 'need-more' || start.pass ? start : start.refusal;
  assert.deepEqual(checkTunnelStart(await captureHello('Registry.npmjs.org'), 'registry.npmjs.org'), { pass: true });
  assert.match(
    String(refusal(checkTunnelStart(await captureHello('evil.test'), 'registry.npmjs.org'))),
    /names another server/,
  );
  assert.match(
    String(refusal(checkTunnelStart(await captureHello(undefined), 'registry.npmjs.org'))),
    /without a server name/,
  );
  for (const http of ['GET / HTTP/1.1\r\n', '\r\nPOST /x HTTP/1.1', 'PRI * HTTP/2.0\r\n']) {
    assert.match(String(refusal(checkTunnelStart(Buffer.from(http), 'a.test'))), /plain HTTP/, http);
  }
  for (const partial of ['G', 'GE', 'GET', '\r\nPO', ''])
    assert.equal(checkTunnelStart(Buffer.from(partial), 'a.test'), 'need-more', partial);
  for (const other of ['SSH-2.0-OpenSSH_9.2\r\n', 'ping', 'x', '\0\0\0\0', 'GETX / HTTP/1.1']) {
    assert.deepEqual(checkTunnelStart(Buffer.from(other), 'a.test'), { pass: true }, other);
  }
});

test('the proxy: allowed names tunnel and forward; refused names, addresses, private resolutions and SNI mismatches do not', async () => {
  const echo = net.createServer((s) => s.pipe(s));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const web = http.createServer((req, res) => res.end(`hello ${req.headers.host} ${req.url}`));
  web.listen(0, '127.0.0.1');
  await once(web, 'listening');
  const echoPort = (echo.address() as net.AddressInfo).port;
  const webPort = (web.address() as net.AddressInfo).port;
  const events: EgressEvent[] = [];
  const proxy = await EgressProxy.start({
    policy: { mode: 'allowlist', allow: ['allowed.test', 'localhost'] },
    resolveOverride: new Map([
      ['allowed.test', '127.0.0.1'],
      ['other.test', '127.0.0.1'],
    ]),
  });
  proxy.onEvent((e) => events.push(e));
  const connect = async (
    target: string,
    first?: Buffer,
  ): Promise<{ status: string; socket: net.Socket; rest: Buffer }> => {
    const socket = net.connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n${first ? '' : ''}`);
    let data = Buffer.alloc(0);
    while (!data.includes('\r\n\r\n')) {
      const [chunk] = (await once(socket, 'data')) as [Buffer];
      data = Buffer.concat([data, chunk]);
    }
    const end = data.indexOf('\r\n\r\n') + 4;
    return { status: data.subarray(0, data.indexOf('\r\n')).toString(), socket, rest: data.subarray(end) };
  };
  try {
    const ok = await connect(`allowed.test:${echoPort}`);
    assert.equal(ok.status, 'HTTP/1.1 200 Connection Established');
    ok.socket.write('ping');
    const [pong] = (await once(ok.socket, 'data')) as [Buffer];
    assert.equal(pong.toString(), 'ping', 'a non-TLS stream to an allowed name passes');
    ok.socket.destroy();
    for (const [target, why] of [
      [`other.test:${echoPort}`, /not in the allowlist/],
      [`127.0.0.1:${echoPort}`, /not a host name/],
      [`localhost:${echoPort}`, /not a public address/],
    ] as const) {
      const refused = await connect(target);
      assert.match(refused.status, /^HTTP\/1.1 403 /, target);
      assert.match(refused.rest.toString(), why);
      refused.socket.destroy();
    }
    // A TLS hello for another name than the one allowed is cut, and so are a hello without a name
    // and a plain HTTP request (a front end would route both by what the proxy did not check).
    for (const first of [
      await captureHello('evil.test'),
      await captureHello(undefined),
      Buffer.from(`\r\nGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n`),
    ]) {
      const fronted = await connect(`allowed.test:${echoPort}`);
      fronted.socket.write(first.subarray(0, 2));
      await new Promise((r) => setTimeout(r, 20));
      fronted.socket.write(first.subarray(2));
      fronted.socket.on('data', (d: Buffer) =>
        assert.fail(`the tunnel carried ${JSON.stringify(d.toString('latin1'))}`),
      );
      await once(fronted.socket, 'close');
    }
    // Plain HTTP through the proxy.
    const answer = await new Promise<string>((resolve, reject) => {
      http
        .get(
          {
            host: '127.0.0.1',
            port: proxy.port,
            path: `http://allowed.test:${webPort}/x?y=1`,
            headers: { host: `allowed.test:${webPort}` },
          },
          (res) => {
            let body = '';
            res.on('data', (c) => {
              body += c;
            });
            res.on('end', () => resolve(`${res.statusCode} ${body}`));
          },
        )
        .on('error', reject);
    });
    assert.equal(answer, `200 hello allowed.test:${webPort} /x?y=1`);
    const heard = await new Promise<string>((resolve, reject) => {
      http
        .get(
          {
            host: '127.0.0.1',
            port: proxy.port,
            path: `http://allowed.test:${webPort}/`,
            headers: { host: 'evil.test' },
          },
          (res) => {
            let body = '';
            res.on('data', (c) => {
              body += c;
            });
            res.on('end', () => resolve(body));
          },
        )
        .on('error', reject);
    });
    assert.equal(heard, `hello allowed.test:${webPort} /`, "the server hears the allowed name, not the guest's Host");
    const denied = await new Promise<number | undefined>((resolve) =>
      http.get({ host: '127.0.0.1', port: proxy.port, path: `http://other.test:${webPort}/` }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }),
    );
    assert.equal(denied, 403);
    await new Promise((r) => setTimeout(r, 50));
    const lines = events.map(describeEgress);
    assert.ok(
      lines.some((l) => l.startsWith(`allowed.test:${echoPort} 4 B up, 4 B down`)),
      lines.join('\n'),
    );
    assert.ok(lines.includes(`refused other.test:${echoPort} (not in the allowlist)`), lines.join('\n'));
    assert.ok(
      lines.some((l) => /refused allowed\.test:\d+ \(refused: the TLS hello names another server\)/.test(l)),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => l.startsWith(`allowed.test:${webPort} `)),
      lines.join('\n'),
    );
    const plain = events.filter((e) => e.name === 'allowed.test' && e.port === webPort);
    assert.ok(
      plain.length === 2 && plain.every((e) => e.bytesUp > 40 && e.bytesDown > 100),
      `a request's line and headers count as up: ${JSON.stringify(plain)}`,
    );
  } finally {
    await proxy.close();
    echo.close();
    web.close();
  }
});

test('asking: one question per name for concurrent connections, answers kept, a few questions a minute, one at a time', async () => {
  const { EgressQuestions } = await import('../../engine/egress/ask');
  const asked: string[] = [];
  let release: (answer: 'once' | 'always' | 'deny') => void = () => undefined;
  const questions = new EgressQuestions((name) => {
    asked.push(name);
    return new Promise((resolve) => {
      release = resolve;
    });
  });
  const first = questions.allowed('a.test', 443);
  const second = questions.allowed('a.test', 443);
  assert.equal(
    await questions.allowed('b.test', 443),
    false,
    'while one question is open, others are refused without asking',
  );
  release('once');
  assert.deepEqual([await first, await second], [true, true]);
  assert.equal(await questions.allowed('a.test', 80), true, 'the answer is kept');
  const denied = questions.allowed('c.test', 443);
  release('deny');
  assert.equal(await denied, false);
  assert.equal(await questions.allowed('c.test', 443), false, 'a deny is not asked again');
  const third = questions.allowed('d.test', 443);
  release('always');
  assert.equal(await third, true);
  assert.equal(await questions.allowed('e.test', 443), false, 'at most three questions a minute');
  assert.deepEqual(asked, ['a.test', 'c.test', 'd.test']);
});

test('the proxy asks about a name outside the list when it is given a way to ask', async () => {
  const echo = net.createServer((s) => s.pipe(s));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const proxy = await EgressProxy.start({
    policy: { mode: 'allowlist', allow: [] },
    resolveOverride: new Map([
      ['asked.test', '127.0.0.1'],
      ['no.test', '127.0.0.1'],
    ]),
  });
  proxy.askWith(async (name) => (name === 'asked.test' ? 'once' : 'deny'));
  const status = async (target: string) => {
    const socket = net.connect(proxy.port, '127.0.0.1');
    socket.write(`CONNECT ${target} HTTP/1.1\r\n\r\n`);
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    socket.destroy();
    return chunk.toString().split('\r\n', 1)[0] ?? '';
  };
  try {
    const port = (echo.address() as net.AddressInfo).port;
    assert.equal(await status(`asked.test:${port}`), 'HTTP/1.1 200 Connection Established');
    assert.match(await status(`no.test:${port}`), /^HTTP\/1.1 403/);
  } finally {
    await proxy.close();
    echo.close();
  }
});
