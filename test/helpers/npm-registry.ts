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
 * A minimal npm registry on the host's loopback: one package, its packument and its tarball,
 * as registry.npmjs.org serves them, for tests that run a real `npm install` in a guest
 * under a host name only the tests' resolver override knows (`registry.test`). With `tls`
 * (a certificate and key, PEM) it serves HTTPS, and its tarball URLs say so.
 */
export interface TestNpmRegistry {
  port: number;
  /** Requests seen, as `METHOD path`. */
  requests: string[];
  close(): void;
}

export async function startNpmRegistry(
  name: string,
  version: string,
  index: string,
  tls?: { cert: Buffer; key: Buffer },
): Promise<TestNpmRegistry> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'npm-pkg-'));
  fs.mkdirSync(path.join(work, 'package'));
  fs.writeFileSync(path.join(work, 'package', 'package.json'), JSON.stringify({ name, version, main: 'index.js' }));
  fs.writeFileSync(path.join(work, 'package', 'index.js'), index);
  const tgz = execFileSync('tar', ['-czf', '-', '-C', work, '--owner=0', '--group=0', 'package']);
  fs.rmSync(work, { recursive: true, force: true });
  const requests: string[] = [];
  let port = 0;
  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    requests.push(`${req.method} ${req.url}`);
    const host = req.headers.host ?? `registry.test:${port}`;
    if (req.url === `/${name}`) {
      const tarball = `${tls ? 'https' : 'http'}://${host}/${name}/-/${name}-${version}.tgz`;
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          name,
          'dist-tags': { latest: version },
          versions: {
            [version]: {
              name,
              version,
              main: 'index.js',
              dist: {
                tarball,
                shasum: createHash('sha1').update(tgz).digest('hex'),
                integrity: `sha512-${createHash('sha512').update(tgz).digest('base64')}`,
              },
            },
          },
        }),
      );
    } else if (req.url === `/${name}/-/${name}-${version}.tgz`) {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(tgz);
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
