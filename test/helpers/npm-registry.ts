import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

/**
 * A minimal npm registry on the host's loopback: packages, their packuments and tarballs, as
 * registry.npmjs.org serves them, for tests and benchmarks that run a real `npm install` in a
 * guest (under a host name only the tests' resolver override knows, `registry.test`, or over
 * a service link). Tarball URLs name the host the request came to. With `tls` (a certificate
 * and key, PEM) it serves HTTPS, and its tarball URLs say so.
 */
export interface TestNpmRegistry {
  port: number;
  /** Requests seen, as `METHOD path`. */
  requests: string[];
  close(): void;
}

/** One package version the registry serves: its files (package.json is written from the rest). */
export interface TestNpmPackage {
  name: string;
  version: string;
  /** Path inside the package -> content. */
  files: Record<string, string>;
  dependencies?: Record<string, string>;
}

/** A registry of one package whose index.js is `index`. */
export async function startNpmRegistry(
  name: string,
  version: string,
  index: string,
  tls?: { cert: Buffer; key: Buffer },
): Promise<TestNpmRegistry> {
  return startNpmRegistryOf([{ name, version, files: { 'index.js': index } }], tls);
}

/** A registry of these packages (one version each). */
export async function startNpmRegistryOf(
  packages: readonly TestNpmPackage[],
  tls?: { cert: Buffer; key: Buffer },
): Promise<TestNpmRegistry> {
  const served = new Map(packages.map((p) => [p.name, { ...p, tgz: tarball(p) }]));
  const requests: string[] = [];
  let port = 0;
  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    const host = req.headers.host ?? `registry.test:${port}`;
    const url = decodeURIComponent(req.url ?? '');
    const pkg = served.get(url.slice(1));
    const tarballOf = /^\/(.+)\/-\/[^/]+\.tgz$/.exec(url);
    const tgzPkg = tarballOf ? served.get(tarballOf[1] ?? '') : undefined;
    if (pkg) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(packument(pkg, pkg.tgz, `${tls ? 'https' : 'http'}://${host}`)));
    } else if (tgzPkg && url === tarballPath(tgzPkg)) {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(tgzPkg.tgz);
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  };
  const server = tls ? https.createServer(tls, handle) : http.createServer(handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
  return { port, requests, close: () => server.close() };
}

function tarballPath(p: TestNpmPackage): string {
  return `/${p.name}/-/${p.name}-${p.version}.tgz`;
}

function packageJson(p: TestNpmPackage): Record<string, unknown> {
  return { name: p.name, version: p.version, main: 'index.js', dependencies: p.dependencies ?? {} };
}

function packument(p: TestNpmPackage, tgz: Buffer, base: string): Record<string, unknown> {
  return {
    name: p.name,
    'dist-tags': { latest: p.version },
    versions: {
      [p.version]: {
        ...packageJson(p),
        dist: {
          tarball: `${base}${tarballPath(p)}`,
          shasum: createHash('sha1').update(tgz).digest('hex'),
          integrity: `sha512-${createHash('sha512').update(tgz).digest('base64')}`,
        },
      },
    },
  };
}

/** The package's tarball as npm packs it: everything under `package/`. */
function tarball(p: TestNpmPackage): Buffer {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'npm-pkg-'));
  try {
    const files = { 'package.json': JSON.stringify(packageJson(p)), ...p.files };
    for (const [name, content] of Object.entries(files)) {
      const file = path.join(work, 'package', name);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, content);
    }
    return execFileSync('tar', ['-czf', '-', '-C', work, '--owner=0', '--group=0', 'package']);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
