import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { MicrovmError } from '../errors';
import { isSameProcessAlive, thisProcess, type ProcessIdentity } from '../host/liveness';
import { homePaths, runDirsOfThisUser, SUSPENDED_DIR } from '../paths';
import type { QemuUser } from '../qemu/run-as';

/** Every file in a VM's state directory, named once. */
export const STATE_FILES = {
  agentSocket: 'agent.sock',
  qmpSocket: 'qmp.sock',
  owner: 'owner.json',
  /** Guest RAM of a freshly booted VM, shared with QEMU (the run dir is on tmpfs where possible). */
  memory: 'memory',
  /** Unix sockets QEMU migrates through, to save or restore a snapshot's device state. */
  migrateOut: 'migrate-out.sock',
  migrateIn: 'migrate-in.sock',
  /** vhost-user sockets of the VM's virtiofsd processes, one per mount: `{n}` is its index. */
  virtiofsSocket: 'virtiofs-{n}.sock',
} as const;

/** Unix socket paths are limited to 107 bytes on Linux. */
const MAX_SOCKET_PATH = 107;

export interface StateDir {
  id: string;
  dir: string;
  file(name: keyof typeof STATE_FILES): string;
  remove(): void;
}

/**
 * Creates run/<id>/ (0700) and records its owner so a later start can reap it. When QEMU runs
 * as another user (`qemuUser`), that user's group may pass through the run dir and this one
 * (0710) but not list or write them: QEMU binds its sockets before it drops privileges.
 */
export function createStateDir(qemuUser?: QemuUser): StateDir {
  const runDir = homePaths.runDir();
  fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const problem = notPrivate(runDir);
  if (problem) {
    throw new MicrovmError(
      'E_STATE_DIR',
      `the run directory ${runDir} ${problem}, so another user could replace the VM's sockets; remove it (the engine creates it again) or set MICROVM_RUN_DIR to a private directory`,
    );
  }
  if (qemuUser) letQemuPass(runDir, qemuUser);
  const id = randomBytes(6).toString('hex');
  const dir = path.join(runDir, id);
  if (path.join(dir, STATE_FILES.agentSocket).length > MAX_SOCKET_PATH) {
    throw new MicrovmError(
      'E_STATE_DIR',
      `the VM state directory ${dir} makes socket paths longer than ${MAX_SOCKET_PATH} bytes; set MICROVM_HOME to a shorter path`,
    );
  }
  fs.mkdirSync(dir, { mode: 0o700 });
  if (qemuUser) letQemuPass(dir, qemuUser);
  fs.writeFileSync(path.join(dir, STATE_FILES.owner), JSON.stringify(thisProcess()), { mode: 0o600 });
  return {
    id,
    dir,
    file: (name) => path.join(dir, STATE_FILES[name]),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

function letQemuPass(dir: string, qemuUser: QemuUser): void {
  fs.chownSync(dir, process.geteuid?.() ?? 0, qemuUser.gid);
  fs.chmodSync(dir, 0o710);
}

/**
 * Removes state directories whose owner process is gone (killed before it could clean up).
 * A pid that was reused by another process is told apart by its start time.
 */
export function reapStaleStateDirs(): string[] {
  const removed: string[] = [];
  for (const runDir of runDirsOfThisUser()) {
    if (notPrivate(runDir)) continue;
    let names: string[];
    try {
      names = fs.readdirSync(runDir);
    } catch {
      continue; // removed meanwhile
    }
    for (const name of names) {
      if (name === SUSPENDED_DIR) continue;
      const dir = path.join(runDir, name);
      if (ownerAlive(dir)) continue;
      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    }
  }
  return removed;
}

/**
 * Why `dir` is not a private directory of this process's user (a link, someone else's, or
 * writable by others), or undefined when it is. Run dirs sit in world-writable /dev/shm
 * under predictable names, so a squatter's directory must never be used or cleaned.
 */
export function notPrivate(dir: string): string | undefined {
  const stat = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (!stat) return 'does not exist';
  if (!stat.isDirectory()) return 'is not a directory (a symlink?)';
  const uid = process.geteuid?.();
  if (uid !== undefined && stat.uid !== uid) return `belongs to uid ${stat.uid}, not to this user (uid ${uid})`;
  if ((stat.mode & 0o022) !== 0) return `is writable by others (mode ${(stat.mode & 0o777).toString(8)})`;
  return undefined;
}

/** A directory being created right now has no owner file yet: it counts as alive for a minute. */
const OWNERLESS_GRACE_MS = 60_000;

function ownerAlive(dir: string): boolean {
  let owner: ProcessIdentity;
  try {
    owner = JSON.parse(fs.readFileSync(path.join(dir, STATE_FILES.owner), 'utf8')) as ProcessIdentity;
  } catch {
    const age = Date.now() - (fs.statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? 0);
    return age < OWNERLESS_GRACE_MS;
  }
  return isSameProcessAlive(owner);
}
