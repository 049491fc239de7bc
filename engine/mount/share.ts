import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { MicrovmError } from '../errors';
import { homePaths } from '../paths';
import { SupervisedProcess } from '../qemu/process';
import { MountSpec, Virtiofsd } from './types';
import { virtiofsdArgv } from './virtiofsd';

const SOCKET_WAIT_MS = 5000;
const EXIT_WAIT_MS = 1000;

/** One running virtiofsd (inside microvm-fsjail) serving one share to one VM. */
export class Share {
  private constructor(readonly mount: MountSpec, readonly tag: string, readonly socket: string, private readonly process: SupervisedProcess) {}

  /** Starts virtiofsd for `mount` and waits until its vhost-user socket accepts QEMU. */
  static async start(daemon: Virtiofsd, mount: MountSpec, tag: string, socket: string, launcher: string, bindfs?: string): Promise<Share> {
    const stat = fs.statSync(mount.hostPath);
    const follow = mount.symlinks === 'follow';
    const protectedPaths = mount.readOnly ? [] : mount.protect.map((rel) => protectedPath(mount.hostPath, rel, stat, follow)).filter((p) => p !== '');
    const argv = virtiofsdArgv(daemon, mount, socket, { uid: stat.uid, gid: stat.gid }, protectedPaths, bindfs);
    const child = new SupervisedProcess(launcher, fsjailPath(), argv);
    const share = new Share(mount, tag, socket, child);
    for (let waited = 0; !fs.existsSync(socket); waited += 20) {
      if (!child.running || waited > SOCKET_WAIT_MS) {
        child.kill();
        await child.exited;
        const via = bindfs ? ` over bindfs (${bindfs})` : '';
        throw new MicrovmError('E_MOUNT_FAILED', `virtiofsd (${daemon.kind === 'c' ? 'Debian\'s C virtiofsd, as root' : 'Rust virtiofsd'}, ${daemon.path})${via} did not start for ${mount.hostPath}${describe(child)}`);
      }
      await delay(20);
    }
    return share;
  }

  get running(): boolean {
    return this.process.running;
  }

  /** virtiofsd exits by itself once QEMU hangs up; kill it if it has not shortly after. */
  async stop(): Promise<void> {
    await this.process.stop(EXIT_WAIT_MS);
  }
}

/**
 * A protected path must be a bind-mount target: a missing one is created as an empty
 * directory owned by the share's owner (so the guest cannot create it with hooks inside).
 * A symlink is left alone: the guest resolves it in its own filesystem, never on the host;
 * under `follow` the host resolves it, so the jail binds its target (as seen through the
 * view) read-only.
 */
function protectedPath(root: string, rel: string, rootStat: fs.Stats, follow: boolean): string {
  const full = path.join(root, rel);
  let stat = fs.lstatSync(full, { throwIfNoEntry: false });
  if (!stat) {
    fs.mkdirSync(full, { mode: 0o755 });
    fs.chownSync(full, rootStat.uid, rootStat.gid);
    stat = fs.lstatSync(full);
  }
  return stat.isSymbolicLink() && !follow ? '' : full;
}

/** Installed by scripts/setup next to the launcher; a development build is used when not. */
function fsjailPath(): string {
  const installed = path.join(homePaths.assetsDir(), 'bin', 'microvm-fsjail');
  if (fs.existsSync(installed)) return installed;
  const built = path.join(__dirname, '..', '..', 'native', 'build', 'microvm-fsjail');
  if (fs.existsSync(built)) return built;
  throw new MicrovmError('E_SETUP_MISSING', `${installed} is missing; run \`npm run setup\``);
}

function describe(child: SupervisedProcess): string {
  const status = child.exitStatus;
  const parts = status ? [status.signal ? ` (killed by ${status.signal})` : ` (exit code ${status.code})`] : [' (no socket within 5 s)'];
  const stderr = child.stderr.lastLines(5);
  if (stderr) parts.push(`:\n${stderr}`);
  return parts.join('');
}
