import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createSign, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as path from 'node:path';
import { freePort } from './free-port';

/** A real registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1, started by a test. */
export interface TestRegistry {
  host: string;
  base: string;
  /** The registry itself, without the counting proxy (for clients such as skopeo that probe TLS first). */
  directHost: string;
  /** What the test's push client sends for a repository (Basic or a push token); undefined when open. */
  pushAuthorization(repository: string): string | undefined;
  /** Connections the registry got (counted by a proxy in front of it). */
  readonly requests: number;
  stop(): Promise<void>;
}

export type RegistryAuth =
  | { kind: 'none' }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'token'; username: string; password: string };

export async function startRegistry(dir: string, auth: RegistryAuth = { kind: 'none' }): Promise<TestRegistry> {
  fs.mkdirSync(path.join(dir, 'storage'), { recursive: true });
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log: {level: error, accesslog: {disabled: true}}',
    `storage: {filesystem: {rootdirectory: ${path.join(dir, 'storage')}}, delete: {enabled: true}}`,
    `http: {addr: "127.0.0.1:${port}", secret: ${randomBytes(8).toString('hex')}}`,
  ];
  let tokenServer: http.Server | undefined;
  let pushAuthorization: (repository: string) => string | undefined = () => undefined;
  if (auth.kind === 'basic') {
    const file = path.join(dir, 'htpasswd');
    execFileSync('htpasswd', ['-Bbc', file, auth.username, auth.password], { stdio: 'ignore' });
    lines.push(`auth: {htpasswd: {realm: test-realm, path: ${file}}}`);
    pushAuthorization = () => `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  } else if (auth.kind === 'token') {
    const issuer = await startTokenServer(dir, auth);
    tokenServer = issuer.server;
    lines.push(
      `auth: {token: {realm: "${issuer.realm}", service: test-registry, issuer: test-issuer, rootcertbundle: ${issuer.certFile}}}`,
    );
    pushAuthorization = (repository) => `Bearer ${issuer.mint(['pull', 'push'], 'pusher', repository)}`;
  }
  const configFile = path.join(dir, 'config.yml');
  fs.writeFileSync(configFile, lines.join('\n') + '\n');
  const child = spawn('docker-registry', ['serve', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    if (stderr.length < 8192) stderr += c.toString();
  });
  const upstream = `http://127.0.0.1:${port}`;
  await waitForHttp(`${upstream}/v2/`, child, () => stderr);
  let connections = 0;
  const proxy = await countingProxy(port, () => connections++);
  const registry: TestRegistry = {
    host: `127.0.0.1:${proxy.port}`,
    directHost: `127.0.0.1:${port}`,
    base: `http://127.0.0.1:${proxy.port}`,
    pushAuthorization,
    get requests() {
      return connections;
    },
    stop: async () => {
      child.kill('SIGKILL');
      proxy.server.close();
      tokenServer?.close();
    },
  };
  return registry;
}

/** A pass-through proxy, so tests can assert that a cache hit sent no request at all. */
async function countingProxy(
  upstreamPort: number,
  onConnection: () => void,
): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((socket) => {
    onConnection();
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** A token service for distribution's `auth: token`: ES256 JWTs with the signing cert in x5c. */
async function startTokenServer(dir: string, auth: { username: string; password: string }) {
  const keyFile = path.join(dir, 'token.key');
  const certFile = path.join(dir, 'token.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      '/CN=test-issuer',
    ],
    { stdio: 'ignore' },
  );
  const key = fs.readFileSync(keyFile, 'utf8');
  const certDer = fs.readFileSync(certFile, 'utf8').replace(/-----[A-Z ]+-----|\s/g, '');
  const mint = (actions: string[], subject: string, repository: string): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer] };
    const claims = {
      iss: 'test-issuer',
      sub: subject,
      aud: 'test-registry',
      exp: now + 600,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access: [{ type: 'repository', name: repository, actions }],
    };
    const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${encode(header)}.${encode(claims)}`;
    const signature = createSign('SHA256').update(input).sign({ key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    return `${input}.${signature}`;
  };
  const expected = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scope = url.searchParams.get('scope') ?? '';
    const match = /^repository:([^:]+):(.+)$/.exec(scope);
    if (req.headers.authorization !== expected || !match) {
      res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    res
      .writeHead(200, { 'Content-Type': 'application/json' })
      .end(JSON.stringify({ token: mint(['pull'], auth.username, match[1]!) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const realm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  return { server, realm, certFile, mint };
}

async function waitForHttp(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}): ${stderr()}`);
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`docker-registry did not answer at ${url}: ${stderr()}`);
}
