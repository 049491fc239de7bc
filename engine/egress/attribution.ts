import * as fs from 'node:fs';
import type { GuestProcess } from '../agent/client';

/**
 * Which guest process opened a connection the egress proxy accepted. slirp makes a new host
 * socket for each guest connection, so the proxy sees QEMU's port, not the guest's. The chain:
 * the proxy's peer port -> the host socket's inode (/proc/net/tcp) -> QEMU's fd holding it
 * (/proc/QEMU/fd) -> slirp's entry for that fd (`info usernet`: the guest's source port) ->
 * the guest process holding that port (the agent's SOCKET_OWNER). The last step is the
 * guest's word: the answer labels a log line, it never allows or refuses anything.
 */
export interface AttributionSources {
  /** The host's /proc/net/tcp text. */
  hostTcpTable(): string;
  /** QEMU's open fds that are sockets: fd -> socket inode. */
  qemuSocketFds(): Map<number, number>;
  /** QEMU's `info usernet` text. */
  usernet(): Promise<string>;
  /** The guest process holding the guest's TCP connection from `guestPort`. */
  guestOwner(guestPort: number): Promise<GuestProcess | undefined>;
}

/** The guest process behind the proxy's client connection from 127.0.0.1:`peerPort` to the proxy's `proxyPort`. */
export async function attributeConnection(
  sources: AttributionSources,
  peerPort: number,
  proxyPort: number,
): Promise<GuestProcess | undefined> {
  const inode = socketInode(sources.hostTcpTable(), peerPort, proxyPort);
  if (inode === undefined) return undefined;
  const fd = [...sources.qemuSocketFds()].find(([, held]) => held === inode)?.[0];
  if (fd === undefined) return undefined;
  const entry = parseUsernet(await sources.usernet()).find((e) => e.fd === fd);
  if (!entry) return undefined;
  return sources.guestOwner(entry.guestPort);
}

/** The inode of the IPv4 socket whose local port is `localPort` and remote port `remotePort`, from /proc/net/tcp text. */
export function socketInode(table: string, localPort: number, remotePort: number): number | undefined {
  for (const line of table.split('\n').slice(1)) {
    const match = /^\s*\d+:\s+[0-9A-F]{8}:([0-9A-F]{4})\s+[0-9A-F]{8}:([0-9A-F]{4})\s+(?:\S+\s+){6}(\d+)/i.exec(line);
    if (!match) continue;
    const [, local = '', remote = '', inode = '0'] = match;
    if (parseInt(local, 16) === localPort && parseInt(remote, 16) === remotePort && inode !== '0') return Number(inode);
  }
  return undefined;
}

/** One TCP connection slirp carries: QEMU's host fd and the guest's end of it. */
export interface UsernetEntry {
  fd: number;
  guestPort: number;
}

/**
 * slirp's TCP connections from `info usernet` (libslirp's slirp_connection_info): for a
 * connection the guest opened, `TCP[STATE] FD SRC-ADDR SRC-PORT DST-ADDR DST-PORT RECVQ SENDQ`
 * with the guest as source. Host forwards (`HOST_FORWARD`, incoming) are skipped.
 */
export function parseUsernet(text: string): UsernetEntry[] {
  const entries: UsernetEntry[] = [];
  for (const line of text.split('\n')) {
    const match = /^\s*TCP\[([A-Z_0-9]+)\]\s+(\d+)\s+\S+\s+(\d+)\s+\S+\s+\d+\s+\d+\s+\d+\s*$/.exec(line);
    if (!match || match[1] === 'HOST_FORWARD') continue;
    entries.push({ fd: Number(match[2]), guestPort: Number(match[3]) });
  }
  return entries;
}

/** A process's fds that are sockets (fd -> inode); empty when it cannot be read. */
export function socketFds(pid: number): Map<number, number> {
  const fds = new Map<number, number>();
  let names: string[];
  try {
    names = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return fds;
  }
  for (const name of names) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${name}`));
      if (match) fds.set(Number(name), Number(match[1]));
    } catch {
      // closed meanwhile
    }
  }
  return fds;
}

/** The label a log line gives a guest process: `curl (pid 123, as the guest reports)`; comm is printable already. */
export function describeGuestProcess(process: GuestProcess): string {
  return `${commLabel(process.comm)} (pid ${process.pid}, as the guest reports)`;
}

/**
 * A process name from the guest as text for a log line or the terminal: plain names as they
 * are, any other JSON-quoted, cut to 32 characters, with every character outside printable
 * ASCII escaped (JSON leaves bidi overrides and U+2028 as they are).
 */
export function commLabel(comm: string): string {
  if (/^[A-Za-z0-9._+-]{1,32}$/.test(comm)) return comm;
  return JSON.stringify(comm.slice(0, 32)).replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** The host side of the chain for one VM: QEMU's pid, and the calls that reach its monitor and agent. */
export function hostAttributionSources(
  qemuPid: number,
  usernet: () => Promise<string>,
  guestOwner: (guestPort: number) => Promise<GuestProcess | undefined>,
): AttributionSources {
  return {
    hostTcpTable: () => fs.readFileSync('/proc/net/tcp', 'utf8'),
    qemuSocketFds: () => socketFds(qemuPid),
    usernet,
    guestOwner,
  };
}
