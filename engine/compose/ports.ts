import type { ComposePort } from './types';

/** A range like `8000-8099` expands to at most this many ports; more is a mistake or an attack on the forwarder. */
const MAX_RANGE = 100;

export type PortResult = { ports: ComposePort[]; hostIp?: string } | { error: string };

/**
 * One `ports:` entry, short (`"3000"`, `"8080:80"`, `"127.0.0.1:5432:5432"`, `"[::1]:80:80"`,
 * `"9000-9001:9000-9001/udp"`) or long (`{target, published, host_ip, protocol}`).
 */
export function parsePortEntry(value: unknown): PortResult {
  if (typeof value === 'number')
    return isPort(value)
      ? { ports: [{ target: value, protocol: 'tcp' }] }
      : { error: `${value} is not a port (1-65535)` };
  if (typeof value === 'string') return parseShort(value);
  if (value !== null && typeof value === 'object' && !Array.isArray(value))
    return parseLong(value as Record<string, unknown>);
  return { error: 'a port is a number, a string such as "8080:80", or a mapping with target' };
}

function parseShort(text: string): PortResult {
  const [spec = '', protocolText = 'tcp'] = text.trim().split('/');
  const protocol = protocolText.toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp')
    return { error: `the protocol ${JSON.stringify(protocolText)} is not tcp or udp` };
  let rest = spec;
  let hostIp: string | undefined;
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(rest);
  if (v6) {
    [, hostIp, rest = ''] = v6;
  }
  const parts = rest.split(':');
  if (!v6 && parts.length === 3) hostIp = parts.shift();
  if (parts.length > 2 || parts.length === 0)
    return { error: `${JSON.stringify(text)} is not [HOST_IP:][HOST_PORT:]PORT[/PROTOCOL]` };
  const targets = range(parts.at(-1) ?? '');
  if ('error' in targets) return targets;
  const published = parts.length === 2 && parts[0] ? range(parts[0]) : undefined;
  if (published && 'error' in published) return published;
  if (published && published.length !== targets.length && published.length !== 1) {
    return {
      error: `${JSON.stringify(text)} maps ${published.length} host ports to ${targets.length} ports; the ranges must be the same length`,
    };
  }
  return {
    ports: targets.map((target, i) => ({
      target,
      protocol,
      ...(published
        ? { published: published.length === 1 ? published[0]! + (targets.length > 1 ? i : 0) : published[i]! }
        : {}),
    })),
    ...(hostIp ? { hostIp } : {}),
  };
}

function parseLong(entry: Record<string, unknown>): PortResult {
  const target = typeof entry.target === 'string' ? Number(entry.target) : entry.target;
  if (!isPort(target)) return { error: `target ${JSON.stringify(entry.target)} is not a port (1-65535)` };
  const protocol = String(entry.protocol ?? 'tcp').toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp')
    return { error: `the protocol ${JSON.stringify(entry.protocol)} is not tcp or udp` };
  let published: number | undefined;
  if (entry.published !== undefined && entry.published !== '') {
    const p = range(String(entry.published));
    if ('error' in p) return p;
    published = p[0];
  }
  return {
    ports: [{ target, protocol, ...(published !== undefined ? { published } : {}) }],
    ...(typeof entry.host_ip === 'string' && entry.host_ip ? { hostIp: entry.host_ip } : {}),
  };
}

/** `"8000"` or `"8000-8010"`. */
export function range(text: string): number[] | { error: string } {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  if (!m) return { error: `${JSON.stringify(text)} is not a port or a range such as 8000-8010` };
  const low = Number(m[1]);
  const high = m[2] === undefined ? low : Number(m[2]);
  if (!isPort(low) || !isPort(high) || high < low)
    return { error: `${JSON.stringify(text)} is not a port or a range of ports (1-65535)` };
  if (high - low + 1 > MAX_RANGE)
    return { error: `${JSON.stringify(text)} is ${high - low + 1} ports; at most ${MAX_RANGE} per entry` };
  return Array.from({ length: high - low + 1 }, (_, i) => low + i);
}

export function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** 127.0.0.1, ::1 and localhost: addresses the workspace honours; anything else it narrows to loopback. */
export function isLoopback(hostIp: string): boolean {
  return hostIp === '127.0.0.1' || hostIp === '::1' || hostIp === 'localhost';
}
