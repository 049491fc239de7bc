import { execFileSync } from 'node:child_process';
import { MicrovmError } from '../errors';
import { isExecutable } from './host-binary';
import { formatIdMap, idMapFor } from './id-map';
import { MountSpec, Virtiofsd } from './types';

/** Where distributions put virtiofsd: Debian 12's C one, then the Rust one (Fedora, Debian 13, cargo). */
const C_VIRTIOFSD = '/usr/lib/qemu/virtiofsd';
const RUST_CANDIDATES = [
  '/usr/libexec/virtiofsd',
  '/usr/lib/virtiofsd',
  '/usr/bin/virtiofsd',
  '/usr/local/bin/virtiofsd',
];

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
  const seen = found
    .map((v) => `${v.path} (${v.kind === 'c' ? 'the C virtiofsd, which must run as root' : 'Rust'})`)
    .join(', ');
  throw new MicrovmError(
    'E_MOUNT_UNAVAILABLE',
    found.length === 0
      ? `no virtiofsd found (looked at ${forced ?? [...RUST_CANDIDATES, C_VIRTIOFSD].join(', ')}); install the Rust virtiofsd (package virtiofsd) or qemu-system-common, or set MICROVM_VIRTIOFSD`
      : `found only ${seen} and this engine is not root; install the Rust virtiofsd (package virtiofsd), which runs unprivileged, or run as root`,
  );
}

/** The Rust virtiofsd prints "virtiofsd 1.x.y"; QEMU's C one "virtiofsd version 7.2.x". */
function isRust(path: string): boolean {
  try {
    const out = execFileSync(path, ['--version'], {
      encoding: 'utf8',
      timeout: 2000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return !/version/i.test(out.split('\n')[0] ?? '');
  } catch {
    return false;
  }
}

/** What virtiofsd's jail needs besides the mount: the socket, the folder's owner and the filter's policy. */
export interface JailSpec {
  socket: string;
  owner: { uid: number; gid: number };
  /** microvm-fsview and its policy (viewArgs), unless the mount is not filtered. */
  view?: { program: string; args: string[] };
}

/**
 * microvm-fsjail's argv then virtiofsd's, as a pure function. The jail puts virtiofsd in a
 * user namespace (guest root = the folder's owner) and a mount namespace where the share is
 * the filter view (microvm-fsview, which enforces the protected names, git's rules, covered
 * paths and the symlink policy) and, when read-only, a read-only bind beneath it; `deny`
 * adds a seccomp filter that fails symlink creation with EPERM in virtiofsd itself, and for
 * the C virtiofsd the same filter turns its FLUSH into ENOSYS (`--no-flush`).
 * virtiofsd keeps its own sandbox (pivot_root into the share), no xattrs (so no security.*
 * or file capabilities reach the host) and no CAP_MKNOD (no device nodes).
 */
export function virtiofsdArgv(daemon: Virtiofsd, mount: MountSpec, jail: JailSpec): string[] {
  const args = ['--socket', jail.socket];
  for (const line of formatIdMap(idMapFor(jail.owner.uid, mount.guestOwner?.uid))) args.push('--uid-map', line);
  for (const line of formatIdMap(idMapFor(jail.owner.gid, mount.guestOwner?.gid))) args.push('--gid-map', line);
  if (mount.readOnly) args.push('--ro', mount.hostPath);
  if (mount.symlinks === 'deny') args.push('--deny-symlinks');
  // Debian's C virtiofsd answers FLUSH with close(dup(fd)) and nothing else: the jail makes that
  // ENOSYS, so the guest stops sending FLUSH (a round trip per close(2); see microvm-fsjail.c).
  if (daemon.kind === 'c') args.push('--no-flush');
  if (jail.view) {
    args.push('--view', jail.view.program, '--view-source', mount.hostPath);
    for (const arg of jail.view.args) args.push('--view-arg', arg);
  }
  return [...args, '--', daemon.path, ...daemonArgs(daemon, mount)];
}

function daemonArgs(daemon: Virtiofsd, mount: MountSpec): string[] {
  if (daemon.kind === 'rust') {
    return [
      `--fd=${SOCKET_FD}`,
      '--shared-dir',
      mount.hostPath,
      '--sandbox',
      'namespace',
      '--cache',
      'auto',
      '--seccomp',
      'kill',
      '--modcaps=-mknod:-setfcap',
      '--rlimit-nofile',
      '0',
      ...(mount.readOnly ? ['--readonly'] : []),
    ];
  }
  return [
    `--fd=${SOCKET_FD}`,
    '-o',
    `source=${mount.hostPath}`,
    '-o',
    'sandbox=namespace',
    '-o',
    'cache=auto',
    '-o',
    'no_xattr',
    '-o',
    'modcaps=-mknod:-setfcap',
    '--rlimit-nofile=0',
    '-o',
    'log_level=warn',
  ];
}
