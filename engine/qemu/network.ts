import * as fs from 'node:fs';
import { MicrovmError } from '../errors';
import { homePaths } from '../paths';

/**
 * Guest networking. 'outbound': QEMU user-mode networking (slirp), NAT with a DNS forwarder,
 * IPv4 only; the agent configures eth0 as 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3.
 * 'none': no NIC at all. Port forwards never use the NIC: they run over the agent channel.
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
    HTTP_PROXY: url, HTTPS_PROXY: url, http_proxy: url, https_proxy: url, NO_PROXY: noProxy, no_proxy: noProxy,
    YARN_HTTP_PROXY: url, YARN_HTTPS_PROXY: url, NODE_USE_ENV_PROXY: '1',
  };
}

export const GUEST_NETWORK = {
  net: '10.0.2.0/24',
  gateway: '10.0.2.2',
  dns: '10.0.2.3',
  guest: '10.0.2.15',
} as const;

/** `transport`: 'device' = virtio-mmio (the microvm machine), 'pci' = virtio-pci (q35). */
export function networkArgs(mode: NetworkMode | undefined, transport: 'device' | 'pci' = 'device'): string[] {
  if (mode === undefined || mode === 'none') return [];
  const { net, gateway, dns, guest } = GUEST_NETWORK;
  return [
    '-netdev', `user,id=net0,ipv4=on,ipv6=off,restrict=off,net=${net},host=${gateway},dns=${dns},dhcpstart=${guest}`,
    '-device', `virtio-net-${transport},netdev=net0`,
  ];
}

/** Environment for the QEMU process: the network guard when the guest has a NIC. */
export function networkEnv(mode: NetworkMode | undefined, guardLibrary: string, proxyPort?: number, dnsPort?: number): Record<string, string> {
  if (mode === undefined || mode === 'none') return {};
  // ld.so splits LD_PRELOAD at spaces and colons.
  if (/[\s:]/.test(guardLibrary)) {
    throw new MicrovmError('E_SETUP_MISSING', `the network guard path ${JSON.stringify(guardLibrary)} contains a space or colon; set MICROVM_HOME to a plain path`);
  }
  // Proxy modes: the guard lets QEMU reach the proxy's port and nothing else (no port: nothing at all).
  if (usesEgressProxy(mode)) {
    return { LD_PRELOAD: guardLibrary, MICROVM_NETGUARD_PROXY: String(proxyPort ?? 'none'), ...(dnsPort ? { MICROVM_NETGUARD_DNS: String(dnsPort) } : {}) };
  }
  return { LD_PRELOAD: guardLibrary };
}

/** networkEnv with the guard that scripts/setup installed; E_SETUP_MISSING when it is not there. */
export function guestNetworkEnv(mode: NetworkMode | undefined, proxyPort?: number, dnsPort?: number): Record<string, string> {
  const guard = homePaths.netguard();
  if (mode !== undefined && mode !== 'none' && !fs.existsSync(guard)) {
    throw new MicrovmError('E_SETUP_MISSING', `the network guard ${guard} is missing; run \`npm run setup\` (or use network: 'none')`);
  }
  return networkEnv(mode, guard, proxyPort, dnsPort);
}
