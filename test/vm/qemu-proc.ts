import * as fs from 'node:fs';
import * as path from 'node:path';

/** What VM tests read from /proc: the QEMU of a VM, whether a process is gone, who runs for a path. */

/** The QEMU process of a VM, found by its state directory (the VM id) in its command line. */
export function qemuPidOf(vmId: string): number {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.startsWith('/') && cmdline.includes('qemu-system') && cmdline.includes(`/${vmId}/`))
        return Number(entry);
    } catch {
      // the process ended while we looked
    }
  }
  throw new Error(`no QEMU process for VM ${vmId}`);
}

/** A process is gone when /proc has no entry for it, or only a zombie waiting for its reaper. */
export function isGone(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** Live (not zombie) processes, other than this one, whose command line mentions `text`, by program name. */
export function liveProcessesMentioning(text: string): Array<{ pid: number; program: string }> {
  const found: Array<{ pid: number; program: string }> = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.some((arg) => arg.includes(text)) && !isGone(Number(entry)))
        found.push({ pid: Number(entry), program: path.basename(argv[0]!) });
    } catch {
      // the process exited while we looked
    }
  }
  return found;
}

/** Every process below `pid`, found through the parent pid in /proc/PID/stat. */
export function descendants(pid: number): Array<{ pid: number; comm: string }> {
  const parents = new Map<number, { ppid: number; comm: string }>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), {
        ppid: Number(fields[1]),
        comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
      });
    } catch {
      // the process ended while we looked
    }
  }
  const found: Array<{ pid: number; comm: string }> = [];
  const below = (parent: number): void => {
    for (const [child, info] of parents) {
      if (info.ppid !== parent) continue;
      found.push({ pid: child, comm: info.comm });
      below(child);
    }
  };
  below(pid);
  return found;
}

/**
 * The TCP ports processes `pids` listen on (IPv4 and IPv6): /proc/net/tcp{,6} rows in state
 * LISTEN whose socket inode is one of the processes' descriptors.
 */
export function tcpListenPortsOf(pids: number[]): number[] {
  const inodes = new Set<string>();
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone meanwhile
    }
    for (const fd of fds) {
      try {
        const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
        if (inode) inodes.add(inode);
      } catch {
        // closed meanwhile
      }
    }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const row of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = row.trim().split(/\s+/);
      // local_address is HEXADDR:HEXPORT, st 0A is LISTEN, the inode is the tenth field.
      if (fields.length < 10 || fields[3] !== '0A' || !inodes.has(fields[9]!)) continue;
      ports.add(parseInt(fields[1]!.split(':')[1]!, 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}
