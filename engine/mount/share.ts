import * as fs from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { MicrovmError } from '../errors';
import { SupervisedProcess } from '../host/supervised-process';
import { hooksPathsOf } from './git-hooks';
import { MountSpec, ShareRefusal, Virtiofsd } from './types';
import { virtiofsdArgv } from './virtiofsd';
import { fsjailPath, fsviewPath, parseRefusal, viewArgs } from './view';

const SOCKET_WAIT_MS = 5000;
const EXIT_WAIT_MS = 1000;

/** One running virtiofsd (inside microvm-fsjail, behind the filter view) serving one share to one VM. */
export class Share {
  private constructor(
    readonly mount: MountSpec,
    readonly tag: string,
    readonly socket: string,
    private readonly process: SupervisedProcess,
  ) {}

  /**
   * Starts virtiofsd for `mount` and waits until its vhost-user socket accepts QEMU. `covers`
   * are the paths (relative to the share) that volumes cover; refusals of the filter go to
   * `onRefusal`. Nothing is created in the folder: names the guest may not make simply
   * cannot be made.
   */
  static async start(
    daemon: Virtiofsd,
    mount: MountSpec,
    tag: string,
    socket: string,
    launcher: string,
    covers: string[],
    onRefusal: (refusal: ShareRefusal) => void,
  ): Promise<Share> {
    const stat = fs.statSync(mount.hostPath);
    const view = mount.filter
      ? { program: fsviewPath(), args: viewArgs(mount, covers, hooksPathsOf(mount.hostPath)) }
      : undefined;
    const argv = virtiofsdArgv(daemon, mount, { socket, owner: { uid: stat.uid, gid: stat.gid }, view });
    const child = new SupervisedProcess(launcher, fsjailPath(), argv);
    child.onStderrLine((line) => {
      const refusal = parseRefusal(mount.hostPath, line);
      if (refusal) onRefusal(refusal);
    });
    const share = new Share(mount, tag, socket, child);
    for (let waited = 0; !fs.existsSync(socket); waited += 20) {
      if (!child.running || waited > SOCKET_WAIT_MS) {
        child.kill();
        await child.exited;
        const via = view ? ` behind the filter view (${view.program})` : '';
        throw new MicrovmError(
          'E_MOUNT_FAILED',
          `virtiofsd (${daemon.kind === 'c' ? "Debian's C virtiofsd, as root" : 'Rust virtiofsd'}, ${daemon.path})${via} did not start for ${mount.hostPath}${describe(child)}`,
        );
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

function describe(child: SupervisedProcess): string {
  const status = child.exitStatus;
  const parts = status
    ? [status.signal ? ` (killed by ${status.signal})` : ` (exit code ${status.code})`]
    : [' (no socket within 5 s)'];
  const stderr = child.stderr.lastLines(5);
  if (stderr) parts.push(`:\n${stderr}`);
  return parts.join('');
}
