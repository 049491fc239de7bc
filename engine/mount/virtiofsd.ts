import { execFileSync } from 'node:child_process';
import { MicrovmError } from '../errors';
import { isExecutable } from './host-binary';
import { followViewArgv } from './follow';
import { formatIdMap, idMapFor } from './id-map';
import { MountSpec, Virtiofsd } from './types';

/** Where distributions put virtiofsd: Debian 12's C one, then the Rust one (Fedora, Debian 13, cargo). */
const C_VIRTIOFSD = '/usr/lib/qemu/virtiofsd';
const RUST_CANDIDATES = ['/usr/libexec/virtiofsd', '/usr/lib/virtiofsd', '/usr/bin/virtiofsd', '/usr/local/bin/virtiofsd'];

/** The vhost-user socket is fd 3 in virtiofsd: microvm-fsjail binds it as real root. */
export const SOCKET_FD = 3;

/**
 * Picks the virtiofsd to run: $MICROVM_VIRTIOFSD, else the Rust one when installed (it needs
 * no root), else Debian's C one (root only). The error says what was found and why it cannot run.
 */
export function findVirtiofsd(env: NodeJS.ProcessEnv = process.env, isRoot = process.getuid?.() === 0): Virtiofsd {
  const forced = env.MICROVM_VIRTIOFSD;
  const found: Virtiofsd[] = [];
  for (const path of forced ? [forced] : [...RUST_CANDIDATES, C_VIRTIOFSD]) {
    if (!isExecutable(path)) continue;
    found.push({ path, kind: path === C_VIRTIOFSD || !isRust(path) ? 'c' : 'rust' });
  }
  const usable = found.find((v) => v.kind === 'rust' || isRoot);
  if (usable) return usable;
  const seen = found.map((v) => `${v.path} (${v.kind === 'c' ? 'the C virtiofsd, which must run as root' : 'Rust'})`).join(', ');
  throw new MicrovmError('E_MOUNT_UNAVAILABLE', found.length === 0
    ? `no virtiofsd found (looked at ${forced ?? [...RUST_CANDIDATES, C_VIRTIOFSD].join(', ')}); install the Rust virtiofsd (package virtiofsd) or qemu-system-common, or set MICROVM_VIRTIOFSD`
    : `found only ${seen} and this engine is not root; install the Rust virtiofsd (package virtiofsd), which runs unprivileged, or run as root`);
}



/** The Rust virtiofsd prints "virtiofsd 1.x.y"; QEMU's C one "virtiofsd version 7.2.x". */
function isRust(path: string): boolean {
  try {
    const out = execFileSync(path, ['--version'], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'pipe'] });
    return !/version/i.test(out.split('\n')[0] ?? '');
  } catch {
    return false;
  }
}

/**
 * microvm-fsjail's argv then virtiofsd's, as a pure function. The jail puts virtiofsd in a
 * user namespace (guest root = the folder's owner) and a mount namespace where the protected
 * paths, or the whole share when read-only, are read-only bind mounts; `deny` adds a seccomp
 * filter that fails symlink creation with EPERM; `follow` (given `bindfs`) serves bindfs's
 * view of the share, with the read-only binds on that view. virtiofsd keeps its own sandbox
 * (pivot_root into the share), no xattrs (so no security.* or file capabilities reach the
 * host) and no CAP_MKNOD (no device nodes).
 */
export function virtiofsdArgv(daemon: Virtiofsd, mount: MountSpec, socket: string, owner: { uid: number; gid: number }, protectedPaths: string[], bindfs?: string): string[] {
  const jail = ['--socket', socket];
  for (const line of formatIdMap(idMapFor(owner.uid))) jail.push('--uid-map', line);
  for (const line of formatIdMap(idMapFor(owner.gid))) jail.push('--gid-map', line);
  for (const ro of mount.readOnly ? [mount.hostPath] : protectedPaths) jail.push('--ro', ro);
  if (mount.symlinks === 'deny') jail.push('--deny-symlinks');
  if (mount.symlinks === 'follow') {
    if (!bindfs) throw new Error('symlinks: follow needs the bindfs path');
    jail.push(...followViewArgv(bindfs, mount));
  }
  return [...jail, '--', daemon.path, ...daemonArgs(daemon, mount)];
}

function daemonArgs(daemon: Virtiofsd, mount: MountSpec): string[] {
  if (daemon.kind === 'rust') {
    return [
      `--fd=${SOCKET_FD}`, '--shared-dir', mount.hostPath, '--sandbox', 'namespace', '--cache', 'auto',
      '--seccomp', 'kill', '--modcaps=-mknod:-setfcap', '--rlimit-nofile', '0',
      ...(mount.readOnly ? ['--readonly'] : []),
    ];
  }
  return [
    `--fd=${SOCKET_FD}`, '-o', `source=${mount.hostPath}`, '-o', 'sandbox=namespace', '-o', 'cache=auto',
    '-o', 'no_xattr', '-o', 'modcaps=-mknod:-setfcap', '--rlimit-nofile=0', '-o', 'log_level=warn',
  ];
}
