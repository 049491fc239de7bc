/** One WWW-Authenticate challenge: `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`. */
export interface Challenge {
  scheme: 'bearer' | 'basic' | 'other';
  params: Record<string, string>;
}

const MAX_HEADER_LENGTH = 8192;
const PARAM = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)/y;

/** Parses the first challenge of a WWW-Authenticate header; null when it is absent or malformed. */
export function parseChallenge(header: string | string[] | undefined): Challenge | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value || value.length > MAX_HEADER_LENGTH) return null;
  const match = /^\s*([A-Za-z]+)(?:\s+|$)/.exec(value);
  if (!match) return null;
  const name = (match[1] ?? '').toLowerCase();
  const scheme = name === 'bearer' ? 'bearer' : name === 'basic' ? 'basic' : 'other';
  const params: Record<string, string> = {};
  PARAM.lastIndex = match[0].length;
  while (PARAM.lastIndex < value.length) {
    const param = PARAM.exec(value);
    if (!param) break;
    const [, key = '', quoted, bare = ''] = param;
    params[key.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : bare;
  }
  return { scheme, params };
}
