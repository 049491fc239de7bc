import * as fs from 'node:fs';
import * as path from 'node:path';
import { MicrovmError } from '../errors';
import { homePaths } from '../paths';
import { MountSpec, ShareRefusal } from './types';

/** Installed by scripts/setup beside the launcher; a development build is used when not. */
export function fsviewPath(): string {
  return helperPath('microvm-fsview');
}

export function fsjailPath(): string {
  return helperPath('microvm-fsjail');
}

function helperPath(name: string): string {
  const installed = path.join(homePaths.assetsDir(), 'bin', name);
  if (fs.existsSync(installed)) return installed;
  const built = path.join(__dirname, '..', '..', 'native', 'build', name);
  if (fs.existsSync(built)) return built;
  throw new MicrovmError('E_SETUP_MISSING', `${installed} is missing; run \`npm run setup\``);
}

/**
 * The filter's policy for one share (pure): protected names at any depth, the paths kept
 * read-only (the mount's own and the folder's git hooks directories), the paths volumes
 * cover (each an empty read-only directory: the host copy beneath stays out of the guest's
 * reach however it mounts the share), git's rules and the symlink policy.
 */
export function viewArgs(mount: MountSpec, covers: string[], hooksPaths: string[]): string[] {
  const args: string[] = [];
  for (const name of mount.protect) args.push('--protect-name', name);
  for (const rel of new Set([...mount.protectPaths, ...hooksPaths])) args.push('--protect-path', rel);
  for (const rel of covers) args.push('--cover', rel);
  args.push('--git', mount.git, '--symlinks', mount.symlinks, '--guest-path', mount.guestPath);
  if (mount.readOnly) args.push('--read-only');
  return args;
}

/** Volume mount points inside this share's guest path, relative to it. */
export function coveredPaths(mount: MountSpec, mountPoints: string[]): string[] {
  const prefix = `${mount.guestPath}/`;
  return mountPoints
    .filter((p) => p.startsWith(prefix))
    .map((p) => p.slice(prefix.length).replace(/\/+$/, ''))
    .filter(Boolean);
}

/**
 * The host directories the volumes cover: each mount point below a share (the innermost),
 * as the host path the share shows there. The same host directory must stay out of reach
 * wherever else it is shared: a second bind of the folder in the same VM, or a compose
 * service's bind of it in another VM (which has no volume there).
 */
export function coveredHostPaths(
  mounts: readonly Pick<MountSpec, 'hostPath' | 'guestPath'>[],
  mountPoints: string[],
): string[] {
  const covered = new Set<string>();
  for (const point of mountPoints) {
    const share = mounts
      .filter((m) => point.startsWith(`${m.guestPath.replace(/\/+$/, '')}/`))
      .sort((a, b) => b.guestPath.length - a.guestPath.length)[0];
    if (!share) continue;
    const rel = point
      .slice(share.guestPath.replace(/\/+$/, '').length + 1)
      .split('/')
      .filter(Boolean);
    if (rel.length === 0 || rel.some((part) => part === '.' || part === '..')) continue;
    covered.add(path.join(share.hostPath, ...rel));
  }
  return [...covered];
}

/** Of the host directories `hostPaths`, those inside the share's host folder, relative to it. */
export function hostPathsInside(mount: Pick<MountSpec, 'hostPath'>, hostPaths: readonly string[]): string[] {
  const prefix = `${mount.hostPath.replace(/\/+$/, '')}/`;
  return hostPaths.filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length));
}

const REFUSAL =
  /^microvm-fsview: refused (.+?) ("(?:[^"\\]|\\.)*") \((E[A-Z]+)\): (.*?)(?: \(and (\d+) more refusals not shown\))?$/;

/** A refusal line of the view's stderr, or undefined for any other line. */
export function parseRefusal(hostPath: string, line: string): ShareRefusal | undefined {
  const [, op, quoted, errno, reason, heldBack] = REFUSAL.exec(line) ?? [];
  if (op === undefined || quoted === undefined || errno === undefined || reason === undefined) return undefined;
  let relative: string;
  try {
    relative = JSON.parse(quoted) as string;
  } catch {
    return undefined;
  }
  return { hostPath, op, path: relative, errno, reason, heldBack: Number(heldBack ?? 0) };
}

/**
 * Whether a name matches one of the protected names (globs with `*` and `?`, compared without
 * case, as a case-insensitive host file system would).
 */
export function isProtected(name: string, protect: readonly string[]): boolean {
  const lower = name.toLowerCase();
  return protect.some((pattern) => globToRegExp(pattern.toLowerCase()).test(lower));
}

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}

/**
 * The part of `hostPath` (a share inside the workspace `folder`, both real paths) that is a
 * protected name or a git hooks directory, or undefined. The filter view protects names below
 * a share's root; a share rooted at or inside one (a bind of `.git`, `.vscode/`, `.devcontainer`)
 * would start past the protection, so such a share is served read-only.
 */
export function protectedPart(
  folder: string,
  hostPath: string,
  protect: readonly string[],
  hooksPaths: readonly string[] = [],
): string | undefined {
  const rel = path.relative(folder, hostPath);
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  const parts = rel.split(path.sep);
  for (let i = 0; i < parts.length; i++) {
    const at = parts.slice(0, i + 1).join('/');
    if (isProtected(parts[i] as string, protect) || hooksPaths.includes(at)) return at;
  }
  return undefined;
}
