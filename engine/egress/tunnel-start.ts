import { canonicalName } from './policy';
import { readHelloName } from './sni';

/**
 * What the first bytes of a CONNECT tunnel to an allowed `name` may be. The proxy checked the
 * name, not what is said to the server behind it, and a shared front end (a CDN) routes by
 * what it is told: by the TLS hello's server name (SNI), or by the Host header of a plain
 * HTTP request. So a tunnel passes only when the hello names `name`; a TLS hello without a
 * name, or a plain HTTP request (whose Host the proxy would have to check request by request),
 * is refused. Other protocols pass: a server they reach is the one at the allowed name.
 */
export type TunnelStart = { pass: true } | { pass: false; refusal: string } | 'need-more';

/** HTTP methods a front end routes (HTTP/1.x request lines and HTTP/2's prior-knowledge preface). */
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'PRI'];

export function checkTunnelStart(data: Buffer, name: string): TunnelStart {
  const hello = readHelloName(data);
  if (hello === 'need-more') return 'need-more';
  if (hello === 'malformed') return { pass: false, refusal: 'refused: a malformed TLS hello' };
  if (typeof hello === 'object') {
    if ('none' in hello) return { pass: false, refusal: 'refused: a TLS hello without a server name' };
    return canonicalName(hello.name) === name
      ? { pass: true }
      : { pass: false, refusal: 'refused: the TLS hello names another server' };
  }
  return plainStart(data);
}

/** A non-TLS start: refused when it is an HTTP request line, after the empty lines servers skip. */
function plainStart(data: Buffer): TunnelStart {
  const text = data
    .subarray(0, 16)
    .toString('latin1')
    .replace(/^[\r\n]+/, '');
  for (const method of HTTP_METHODS) {
    const line = `${method} `;
    if (text.startsWith(line)) {
      return {
        pass: false,
        refusal: 'refused: plain HTTP in a CONNECT tunnel (send http:// requests to the proxy, which checks each one)',
      };
    }
    if (line.startsWith(text)) return 'need-more';
  }
  return { pass: true };
}
