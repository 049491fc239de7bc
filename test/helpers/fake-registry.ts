import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Blob, TestImage } from './image-fixtures';

/**
 * A small registry written for hostile tests: it serves what the test put in it, and a test
 * can intercept any request to misbehave (tamper, redirect, drop the connection, ...).
 */
export interface FakeRegistry {
  host: string;
  base: string;
  /** Every request as `METHOD path` with its Authorization header, in order. */
  log: Array<{ method: string; path: string; authorization?: string }>;
  blobs: Map<string, Buffer>;
  manifests: Map<string, Blob>;
  /** Return true when the request was answered. */
  intercept?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean;
  add(repository: string, tag: string, image: TestImage): void;
  close(): Promise<void>;
}

export async function startFakeRegistry(address = '127.0.0.1'): Promise<FakeRegistry> {
  const sockets = new Set<import('node:net').Socket>();
  const registry: FakeRegistry = {
    host: '',
    base: '',
    log: [],
    blobs: new Map(),
    manifests: new Map(),
    add(repository, tag, image) {
      for (const blob of [image.config, ...image.layers]) this.blobs.set(blob.digest, blob.data);
      this.manifests.set(`${repository}:${tag}`, image.manifest);
      this.manifests.set(`${repository}:${image.manifest.digest}`, image.manifest);
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server = http.createServer((req, res) => {
    registry.log.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization });
    if (registry.intercept?.(req, res)) return;
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(req.url ?? '');
    if (manifest) {
      const blob = registry.manifests.get(`${manifest[1]}:${manifest[2]}`);
      if (!blob) return void res.writeHead(404).end();
      return void res
        .writeHead(200, {
          'Content-Type': blob.mediaType,
          'Docker-Content-Digest': blob.digest,
          'Content-Length': blob.size,
        })
        .end(blob.data);
    }
    const blob = /^\/v2\/.+\/blobs\/([^/]+)$/.exec(req.url ?? '');
    const data = blob ? registry.blobs.get(blob[1]!) : undefined;
    if (!data) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Length': data.length, 'Content-Type': 'application/octet-stream' }).end(data);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  registry.host = `${address}:${(server.address() as AddressInfo).port}`;
  registry.base = `http://${registry.host}`;
  return registry;
}

/**
 * An intercept that sends the headers and the first `bytes` of blob `digest`, then holds the
 * connection open without sending more: a transfer stalled mid-blob, for kill tests.
 */
export function stallBlob(
  registry: FakeRegistry,
  digest: string,
  bytes: number,
): NonNullable<FakeRegistry['intercept']> {
  return (req, res) => {
    const data = registry.blobs.get(digest);
    if (!data || !req.url?.endsWith(`/blobs/${digest}`)) return false;
    res.writeHead(200, { 'Content-Length': data.length, 'Content-Type': 'application/octet-stream' });
    res.write(data.subarray(0, bytes));
    return true;
  };
}
