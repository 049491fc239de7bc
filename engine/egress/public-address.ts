import ipaddr from 'ipaddr.js';

/**
 * An address the proxy may connect to: one beyond this host and its networks. Refused:
 * loopback, private (RFC 1918), link-local (cloud metadata at 169.254.169.254), carrier-grade
 * NAT (100.64/10, where tailnets live), unique-local, unspecified, broadcast and multicast; an
 * IPv6 form that carries an IPv4 address (v4-mapped, NAT64, 6to4) is judged as that address,
 * and Teredo is refused. Reserved and documentation ranges are allowed: fake-IP resolvers
 * (proxy tools, sandboxed egress such as this project's own machines, which answer every name
 * with 203.0.113.80) hand them out for real destinations, and none of them is inside the
 * host. A name that resolves to any refused address is refused as a whole: DNS rebinding
 * cannot pick the private one later.
 */
const REFUSED_V4 = new Set([
  'unspecified',
  'broadcast',
  'multicast',
  'linkLocal',
  'loopback',
  'carrierGradeNat',
  'private',
]);
const REFUSED_V6 = new Set(['unspecified', 'linkLocal', 'multicast', 'loopback', 'uniqueLocal', 'teredo']);

export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv4') return !REFUSED_V4.has(parsed.range());
  const v6 = parsed as ipaddr.IPv6;
  const embedded = embeddedIPv4(v6);
  if (embedded) return !REFUSED_V4.has(embedded.range());
  return !REFUSED_V6.has(v6.range());
}

/** The IPv4 address an IPv6 form carries: v4-mapped, NAT64 (64:ff9b::/96), 6to4 (2002::/16). */
function embeddedIPv4(v6: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const range = v6.range();
  const fromWords = (high = 0, low = 0) => ipaddr.IPv4.parse([high >> 8, high & 255, low >> 8, low & 255].join('.'));
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address();
  if (range === 'rfc6052' || range === 'rfc6145') return fromWords(v6.parts[6], v6.parts[7]);
  if (range === '6to4') return fromWords(v6.parts[1], v6.parts[2]);
  return undefined;
}
