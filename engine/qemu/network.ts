import * as fs from 'node:fs';
import { MicrovmError } from '../errors';
import { homePaths } from '../paths';

/**
 * Guest networking. 'outbound': QEMU user-mode networking (slirp), NAT with a DNS forwarder,
 * IPv4 only; the agent configures eth0 as 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3.
 * 'none': no NIC at all, unless the VM has service links (below): then a NIC whose only
 * destinations are the links. Port forwards never use the NIC: they run over the agent channel.
 *
 * slirp opens the guest's connections from the host itself and maps 10.0.2.2 to the host's
 * 127.0.0.1, and QEMU 7.2 has no option to turn that off (libslirp's disable_host_loopback
 * is not exposed; restrict=on would cut all outbound traffic). So QEMU runs with
 * microvm-netguard.so preloaded (native/netguard, rules in its README.md). For every
 * connect/sendto/sendmsg it asks the kernel for the route the connection would take, at that
 * moment (no copied address list, no cap, no refresh timer), and refuses:
 * - the host itself: loopback, link-local (cloud metadata), multicast, and every address the
 *   kernel routes as local or broadcast;
 * - what lives inside the host: any route through a bridge, veth, tap, dummy or other virtual
 *   link (containers on docker0/podman/cni, libvirt's virbr0, other VMs), except the main
 *   table's default route, which is the way out for a container or a host with a bridged uplink;
 * - everything, when it cannot get the kernel's answer (fail closed, one stderr line per 10 s).
 * The user's LAN directly connected to a NIC (Ethernet, Wi-Fi) and VPN tunnels stay reachable,
 * as for any NAT'd program on the host; so does port 53 of the resolvers in /etc/resolv.conf,
 * where slirp sends the guest's DNS. IPv6 follows the same rules (v4-mapped and other forms
 * that carry an IPv4 address are judged as that address too), ready for when the guest
 * network gets IPv6. An allowed connection is bound to the route's interface, so a route
 * that moves afterwards cannot carry it inside the host.
 */
export type NetworkMode = 'none' | 'outbound' | 'allowlist' | 'learn';

/** Modes whose only way out is the engine's egress proxy (engine/egress): the guard allows nothing else. */
export function usesEgressProxy(mode: NetworkMode | undefined): boolean {
  return mode === 'allowlist' || mode === 'learn';
}

/** Where the guest reaches the egress proxy: slirp's host address, which the guard points at the proxy's real port. */
export const GUEST_PROXY = { host: '10.0.2.2', port: 3128 } as const;

/**
 * The guest's environment for proxy modes: curl, wget, git, apt, pip, npm, pnpm, cargo and go
 * honour the standard variables; Yarn 2+ reads its own; Node 24's fetch and http honour them
 * with NODE_USE_ENV_PROXY. (Java tools read none of these: -Dhttps.proxyHost in MAVEN_OPTS or
 * GRADLE_OPTS, see README.)
 */
export function proxyEnv(): Record<string, string> {
  const url = `http://${GUEST_PROXY.host}:${GUEST_PROXY.port}`;
  const noProxy = 'localhost,127.0.0.1,::1';
  return {
    HTTP_PROXY: url,
    HTTPS_PROXY: url,
    http_proxy: url,
    https_proxy: url,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    YARN_HTTP_PROXY: url,
    YARN_HTTPS_PROXY: url,
    NODE_USE_ENV_PROXY: '1',
  };
}

export const GUEST_NETWORK = {
  net: '10.0.2.0/24',
  gateway: '10.0.2.2',
  dns: '10.0.2.3',
  guest: '10.0.2.15',
} as const;

/**
 * A TCP port of another VM, reached by the guest at `address:port` (198.18.0.0/24) and relayed
 * on the host by whatever listens on the unix socket `path` (a compose workspace's ServiceRelay).
 */
export interface ServiceLink {
  address: string;
  port: number;
  path: string;
}

/**
 * Service links: the guest connects to `address:port` inside this block, and the network guard
 * connects slirp's socket to the unix socket `path` instead, where the engine carries the
 * connection into the other VM over its agent channel. No TCP port of the host is involved,
 * so no other host process reaches a service through its link. The rest of the block is
 * refused in every mode. RFC 2544's benchmark range: no real service lives there.
 */
export const SERVICE_LINK_NET = '198.18.0.0/24';
const SERVICE_LINK_PREFIX = '198.18.0.';
/** The guard reads at most this many links. */
export const MAX_SERVICE_LINKS = 256;
/** A unix socket path fits sun_path (108 bytes) with its NUL. */
export const MAX_SERVICE_LINK_PATH = 107;

/** A path the guard takes for a link: absolute, short enough for sun_path, without the map's separators. */
export function isServiceLinkPath(p: string): boolean {
  return (
    typeof p === 'string' &&
    p.length > 1 &&
    p.startsWith('/') &&
    Buffer.byteLength(p) <= MAX_SERVICE_LINK_PATH &&
    !/[,=\0]/.test(p)
  );
}

/** The guest address of the n-th linked service (n from 0): 198.18.0.2, 198.18.0.3, ... */
export function serviceLinkAddress(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 252) {
    throw new MicrovmError(
      'E_BAD_OPTION',
      `service link number ${n} is not an integer from 0 to 252: the block ${SERVICE_LINK_NET} has 253 addresses for services (198.18.0.2 to .254)`,
    );
  }
  return `${SERVICE_LINK_PREFIX}${n + 2}`;
}

/** A host address of SERVICE_LINK_NET in plain dotted form (the guard refuses leading zeros, .0 and .255). */
export function isServiceLinkAddress(address: string): boolean {
  const last = /^198\.18\.0\.(\d{1,3})$/.exec(address)?.[1];
  return last !== undefined && String(Number(last)) === last && Number(last) >= 1 && Number(last) <= 254;
}

/** Throws E_BAD_OPTION naming the first link the guard would not take. */
export function checkServiceLinks(links: readonly ServiceLink[]): void {
  if (links.length > MAX_SERVICE_LINKS) {
    throw new MicrovmError(
      'E_BAD_OPTION',
      `${links.length} service links are more than the ${MAX_SERVICE_LINKS} a VM may have`,
    );
  }
  const seen = new Set<string>();
  for (const [i, link] of links.entries()) {
    const what = `service link ${i} (${JSON.stringify(link)})`;
    if (!isServiceLinkAddress(link.address)) {
      throw new MicrovmError(
        'E_BAD_OPTION',
        `${what}: address must be a host address inside ${SERVICE_LINK_NET}, such as serviceLinkAddress(0) = 198.18.0.2`,
      );
    }
    if (!Number.isInteger(link.port) || link.port < 1 || link.port > 65535) {
      throw new MicrovmError('E_BAD_OPTION', `${what}: port must be an integer from 1 to 65535`);
    }
    if (!isServiceLinkPath(link.path)) {
      throw new MicrovmError(
        'E_BAD_OPTION',
        `${what}: path must be an absolute unix socket path of at most ${MAX_SERVICE_LINK_PATH} bytes, without ',' or '='`,
      );
    }
    const key = `${link.address}:${link.port}`;
    if (seen.has(key)) throw new MicrovmError('E_BAD_OPTION', `${what}: ${key} is linked twice`);
    seen.add(key);
  }
}

/**
 * The guest has a NIC when its network is not 'none', or when it has service links: given at
 * all, even none, since a VM restored from a snapshot taken with a NIC needs one too.
 */
export function hasNic(mode: NetworkMode | undefined, links?: readonly ServiceLink[]): boolean {
  return (mode !== undefined && mode !== 'none') || links !== undefined;
}

/** `transport`: 'device' = virtio-mmio (the microvm machine), 'pci' = virtio-pci (q35). */
export function networkArgs(
  mode: NetworkMode | undefined,
  transport: 'device' | 'pci' = 'device',
  links?: readonly ServiceLink[],
): string[] {
  if (!hasNic(mode, links)) return [];
  const { net, gateway, dns, guest } = GUEST_NETWORK;
  return [
    '-netdev',
    `user,id=net0,ipv4=on,ipv6=off,restrict=off,net=${net},host=${gateway},dns=${dns},dhcpstart=${guest}`,
    '-device',
    `virtio-net-${transport},netdev=net0`,
  ];
}

/**
 * Environment for the QEMU process: the network guard when the guest has a NIC. Network 'none'
 * with service links runs the guard's proxy mode without a proxy: the links and nothing else.
 */
export function networkEnv(
  mode: NetworkMode | undefined,
  guardLibrary: string,
  proxyPort?: number,
  dnsPort?: number,
  links?: readonly ServiceLink[],
): Record<string, string> {
  if (!hasNic(mode, links)) return {};
  // ld.so splits LD_PRELOAD at spaces and colons.
  if (/[\s:]/.test(guardLibrary)) {
    throw new MicrovmError(
      'E_SETUP_MISSING',
      `the network guard path ${JSON.stringify(guardLibrary)} contains a space or colon; set MICROVM_HOME to a plain path`,
    );
  }
  checkServiceLinks(links ?? []);
  const services: Record<string, string> = links?.length
    ? { MICROVM_NETGUARD_SERVICES: links.map((l) => `${l.address}:${l.port}=${l.path}`).join(',') }
    : {};
  // Proxy modes: the guard lets QEMU reach the proxy's port and nothing else (no port: nothing at all).
  if (usesEgressProxy(mode)) {
    return {
      LD_PRELOAD: guardLibrary,
      MICROVM_NETGUARD_PROXY: String(proxyPort ?? 'none'),
      ...(dnsPort ? { MICROVM_NETGUARD_DNS: String(dnsPort) } : {}),
      ...services,
    };
  }
  if (mode === 'outbound') return { LD_PRELOAD: guardLibrary, ...services };
  return { LD_PRELOAD: guardLibrary, MICROVM_NETGUARD_PROXY: 'none', ...services };
}

/** networkEnv with the guard that scripts/setup installed; E_SETUP_MISSING when it is not there. */
export function guestNetworkEnv(
  mode: NetworkMode | undefined,
  proxyPort?: number,
  dnsPort?: number,
  links?: readonly ServiceLink[],
): Record<string, string> {
  const guard = homePaths.netguard();
  if (hasNic(mode, links) && !fs.existsSync(guard)) {
    throw new MicrovmError(
      'E_SETUP_MISSING',
      `the network guard ${guard} is missing; run \`npm run setup\` (or use network: 'none' without service links)`,
    );
  }
  return networkEnv(mode, guard, proxyPort, dnsPort, links);
}
