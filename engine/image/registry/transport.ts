import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';
import { MicrovmError } from '../../errors';
import { registryHostname } from '../reference';

/**
 * Which scheme a registry is spoken to with. As in Docker, loopback registries may use plain
 * HTTP; any other host needs HTTPS unless it is listed in MICROVM_INSECURE_REGISTRIES.
 */
export function registryScheme(registry: string, env: NodeJS.ProcessEnv = process.env): 'http' | 'https' {
  if (isLoopback(registryHostname(registry))) return 'http';
  const insecure = (env.MICROVM_INSECURE_REGISTRIES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return insecure.includes(registry) || insecure.includes(registryHostname(registry)) ? 'http' : 'https';
}

export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/** May a URL be fetched at all: HTTPS, or plain HTTP to a host that allows it. */
export function assertTransportAllowed(url: URL, env: NodeJS.ProcessEnv = process.env): void {
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:' && registryScheme(url.host, env) === 'http') return;
  throw new MicrovmError(
    'E_REGISTRY_PROTOCOL',
    `refusing to fetch ${url.origin} over ${url.protocol.replace(':', '')}: only HTTPS is allowed for non-loopback hosts; ` +
      'if this registry really has no TLS, add its host:port to MICROVM_INSECURE_REGISTRIES',
  );
}

export interface RequestOptions {
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT';
  headers?: Record<string, string>;
  body?: Buffer;
  /** No bytes for this long (connect, headers or body) aborts the request. */
  idleTimeoutMs?: number;
  /** Aborting destroys the request and its response. */
  signal?: AbortSignal;
}

/** One HTTP request, no redirects followed; the caller owns the response stream. */
export function sendRequest(url: URL, opts: RequestOptions = {}): Promise<http.IncomingMessage> {
  assertTransportAllowed(url);
  const module = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = module.request(
      url,
      { method: opts.method ?? 'GET', headers: { 'User-Agent': 'microvm', ...opts.headers }, signal: opts.signal },
      (res) => {
        res.setTimeout(opts.idleTimeoutMs ?? 30_000, () =>
          res.destroy(new Error(`no data from ${url.host} for ${opts.idleTimeoutMs ?? 30_000} ms`)),
        );
        resolve(res);
      },
    );
    req.setTimeout(opts.idleTimeoutMs ?? 30_000, () =>
      req.destroy(new Error(`no response from ${url.host} for ${opts.idleTimeoutMs ?? 30_000} ms`)),
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Reads a whole response body, refusing more than `maxBytes` (by Content-Length or as it arrives). */
export async function readBody(res: http.IncomingMessage, maxBytes: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy();
    throw bodyTooLarge(what, maxBytes);
  }
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      res.destroy();
      throw bodyTooLarge(what, maxBytes);
    }
    parts.push(chunk);
  }
  if (!res.complete) throw new DroppedConnection(`the connection closed before the end of ${what}`);
  return Buffer.concat(parts, total);
}

/** A connection that ended early: worth retrying. */
export class DroppedConnection extends Error {}

function bodyTooLarge(what: string, maxBytes: number): MicrovmError {
  return new MicrovmError(
    'E_IMAGE_TOO_LARGE',
    `${what} is larger than the ${maxBytes}-byte limit; the registry is misbehaving or hostile; nothing was stored`,
  );
}
