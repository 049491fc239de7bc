import ipaddr from 'ipaddr.js';

/**
 * An address the proxy may connect to: public unicast only. Loopback, private, link-local
 * (cloud metadata at 169.254.169.254), carrier-grade NAT, unique-local, multicast, reserved
 * and documentation ranges are refused, and an IPv6 form that carries an IPv4 address
 * (v4-mapped, NAT64) is judged as that address. A name that resolves to any refused address
 * is refused as a whole: DNS rebinding cannot pick the private one later.
 */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) parsed = v6.toIPv4Address();
    else if (v6.range() === 'rfc6052') parsed = ipaddr.IPv4.parse(v6.toNormalizedString().split(':').slice(-2).map((h) => parseInt(h, 16)).flatMap((n) => [n >> 8, n & 255]).join('.'));
  }
  return parsed.range() === 'unicast';
}
