import { MicrovmError } from '../errors';
import { AgentClient } from '../agent/client';
import { Share } from './share';
import { attachVolume, AttachedVolume } from './volumes';
import { findVirtiofsd } from './virtiofsd';
import { coveredHostPaths, coveredPaths, hostPathsInside } from './view';
import { FileEventRelay } from '../watch/relay';
import { MountSpec, ROOT_VOLUME_SERIAL, RootVolumeSpec, ShareRefusal, TmpfsSpec, VolumeSpec } from './types';

export type { MountSpec, VolumeSpec, TmpfsSpec, RootVolumeSpec, SymlinkPolicy, ShareRefusal, GitPolicy } from './types';
export { DEFAULT_PROTECT, MIN_VOLUME_MIB } from './types';
export { findVirtiofsd } from './virtiofsd';
export { removeVolume, volumeFile } from './volumes';

/** What a VM's mounts and volumes add to its QEMU command line. */
export interface StorageDevices {
  virtiofs: Array<{ socket: string; tag: string }>;
  volumes: Array<{ file: string; serial: string }>;
}

/**
 * A VM's shares and volumes: virtiofsd processes started before QEMU, volume images locked
 * and checked, and the guest mounts made once the agent answers. Released after QEMU exits.
 */
export class Storage {
  private readonly refusalListeners: Array<(refusal: ShareRefusal) => void> = [];
  private readonly fileEventProblemListeners: Array<(problem: MicrovmError) => void> = [];
  /** Relays of host changes into the guest, one per share with `fileEvents`, each once it watches. */
  readonly relays: FileEventRelay[] = [];

  /** The disk that keeps the root's changes, when the VM has one; the agent mounts it at boot, not here. */
  private rootVolume: AttachedVolume | undefined;

  private constructor(
    private readonly shares: Share[],
    private readonly volumes: AttachedVolume[],
    private readonly tmpfs: TmpfsSpec[],
  ) {}

  static async attach(
    mounts: MountSpec[],
    volumes: VolumeSpec[],
    tmpfs: TmpfsSpec[],
    rootVolume: RootVolumeSpec | undefined,
    socketFor: (index: number) => string,
    launcher: string,
  ): Promise<Storage> {
    const storage = new Storage([], [], tmpfs);
    try {
      const daemon = mounts.length > 0 ? findVirtiofsd() : undefined;
      const mountPoints = volumes.map((v) => v.mountPoint);
      // A covered host directory stays covered in every share of it (a second bind of the folder).
      const hostCovers = coveredHostPaths(mounts, mountPoints);
      for (const [i, mount] of mounts.entries()) {
        const covers = [...new Set([...coveredPaths(mount, mountPoints), ...hostPathsInside(mount, hostCovers)])];
        storage.shares.push(
          await Share.start(daemon!, mount, `microvm-fs${i}`, socketFor(i), launcher, covers, (refusal) => {
            for (const listener of storage.refusalListeners) listener(refusal);
          }),
        );
      }
      for (const [i, volume] of volumes.entries()) storage.volumes.push(await attachVolume(volume, i));
      if (rootVolume)
        storage.rootVolume = await attachVolume({ ...rootVolume, mountPoint: '/' }, -1, ROOT_VOLUME_SERIAL);
      return storage;
    } catch (err) {
      await storage.release();
      throw err;
    }
  }

  /** Hears what the filter views refused the guest (one event per logged refusal). */
  onRefusal(listener: (refusal: ShareRefusal) => void): () => void {
    this.refusalListeners.push(listener);
    return () => {
      const at = this.refusalListeners.indexOf(listener);
      if (at >= 0) this.refusalListeners.splice(at, 1);
    };
  }

  /** Problems so far relaying host changes (the latest 16), for listeners that come after the boot. */
  readonly fileEventProblems: MicrovmError[] = [];

  /** Hears what went wrong relaying host changes into the guest (the share itself keeps working); replays earlier ones. */
  onFileEventProblem(listener: (problem: MicrovmError) => void): () => void {
    for (const problem of this.fileEventProblems) listener(problem);
    this.fileEventProblemListeners.push(listener);
    return () => {
      const at = this.fileEventProblemListeners.indexOf(listener);
      if (at >= 0) this.fileEventProblemListeners.splice(at, 1);
    };
  }

  get hasVolumes(): boolean {
    return this.volumes.length > 0 || this.rootVolume !== undefined;
  }

  get devices(): StorageDevices {
    const disks = this.rootVolume ? [...this.volumes, this.rootVolume] : this.volumes;
    return {
      virtiofs: this.shares.map((s) => ({ socket: s.socket, tag: s.tag })),
      volumes: disks.map((v) => ({ file: v.file, serial: v.serial })),
    };
  }

  /** What the kernel command line tells the agent: the serial of the disk for the root's changes. */
  get cmdline(): string[] {
    return this.rootVolume ? [`microvm.upper=${this.rootVolume.serial}`] : [];
  }

  /**
   * Mounts everything in the guest, outer paths first, so a volume or a tmpfs can sit inside a
   * share. 'shares': only the shares and what sits inside them (what unmountInGuest took down
   * before a suspend; the rest stayed mounted in the saved guest).
   */
  async mountInGuest(agent: AgentClient, which: 'all' | 'shares' = 'all'): Promise<void> {
    const requests = which === 'all' ? this.mountRequests() : this.shareRequests();
    for (const [i, request] of requests.entries()) {
      // What sat inside a share was parked at the suspend, still mounted: it moves back.
      const parked = which === 'shares' && request.kind !== 'virtiofs';
      try {
        if (parked) await agent.mount('parked', parkName(i), request.path, false);
        else
          await agent.mount(
            request.kind,
            request.source,
            request.path,
            request.readOnly,
            'sizeMib' in request ? request.sizeMib : undefined,
          );
      } catch (err) {
        const why = (err as Error).message;
        if (request.volume) {
          const { spec, file } = request.volume;
          throw new MicrovmError(
            'E_VOLUME',
            `the guest could not mount the volume ${spec.name} at ${request.path}: ${why}; if its file system is damaged, remove the volume (${file}) to start it afresh`,
            { cause: err, details: { volume: spec.name, file, failed: 'mount' } },
          );
        }
        throw new MicrovmError(
          'E_MOUNT_FAILED',
          `the guest could not mount ${request.source} at ${request.path}: ${why}`,
          { cause: err },
        );
      }
    }
    // Not awaited: watching a large tree takes a while (~0.25 s for 20k files here), and edits
    // before the guest's own watchers start need no event.
    this.relaysStarting = this.startRelays(agent).catch((err: Error) =>
      this.reportFileEventProblem(
        new MicrovmError('E_FILE_EVENTS', `host edits are not relayed into the guest: ${err.message}`, { cause: err }),
      ),
    );
  }

  private relaysStarting: Promise<void> | undefined;

  private async stopRelays(): Promise<void> {
    await this.relaysStarting;
    await Promise.all(this.relays.splice(0).map((r) => r.stop()));
  }

  private reportFileEventProblem(problem: MicrovmError): void {
    this.fileEventProblems.push(problem);
    if (this.fileEventProblems.length > 16) this.fileEventProblems.shift();
    for (const listener of this.fileEventProblemListeners) listener(problem);
  }

  /** Watches the shares with `fileEvents` on the host; a relay that cannot start is a problem, not a failure. */
  private async startRelays(agent: AgentClient): Promise<void> {
    const report = (problem: MicrovmError) => this.reportFileEventProblem(problem);
    const inside = [...this.volumes.map((v) => v.spec.mountPoint), ...this.tmpfs.map((t) => t.mountPoint)];
    for (const share of this.shares.filter((s) => s.mount.fileEvents)) {
      if (!agent.info.features.includes('file-events')) {
        report(
          new MicrovmError(
            'E_FILE_EVENTS',
            `the guest has no file-events support (the microvm_fsnotify module is not in its initramfs): host edits in ${share.mount.hostPath} raise no events in the guest at ${share.mount.guestPath}; run 'npm run setup' to rebuild the initramfs`,
          ),
        );
        return;
      }
      try {
        this.relays.push(
          await FileEventRelay.start(
            {
              hostPath: share.mount.hostPath,
              guestPath: share.mount.guestPath,
              covers: coveredPaths(share.mount, inside),
            },
            agent,
            report,
          ),
        );
      } catch (err) {
        report(err as MicrovmError);
      }
    }
  }

  /**
   * Unmounts the shares in the guest so that their devices can be unplugged; what sits inside
   * them (a volume, a tmpfs) is first parked aside, still mounted, deepest first. The agent
   * kills the processes that hold them; returns its descriptions of them ("PID NAME").
   */
  async unmountInGuest(agent: AgentClient): Promise<string[]> {
    await this.stopRelays(); // nothing to raise events on while the shares are away
    const killed: string[] = [];
    const requests = this.shareRequests();
    for (let i = requests.length - 1; i >= 0; i--) {
      const request = requests[i]!;
      try {
        killed.push(...(await agent.unmount(request.path, request.kind === 'virtiofs' ? undefined : parkName(i))));
      } catch (err) {
        throw new MicrovmError(
          'E_SUSPEND',
          `the guest could not unmount ${request.path}: ${(err as Error).message}; the VM is stopped instead of suspended, and the workspace boots afresh next time`,
          { cause: err },
        );
      }
    }
    return killed;
  }

  private mountRequests(): MountRequest[] {
    return [
      ...this.shares.map((s) => ({
        kind: 'virtiofs' as const,
        source: s.tag,
        path: s.mount.guestPath,
        readOnly: s.mount.readOnly,
        volume: undefined,
      })),
      ...this.volumes.map((v) => ({
        kind: 'volume' as const,
        source: v.serial,
        path: v.spec.mountPoint,
        readOnly: false,
        volume: v,
      })),
      ...this.tmpfs.map((t) => ({
        kind: 'tmpfs' as const,
        source: 'tmpfs',
        path: t.mountPoint,
        readOnly: false,
        volume: undefined,
        sizeMib: t.sizeMib,
      })),
    ].sort((a, b) => depth(a.path) - depth(b.path));
  }

  /** The shares and every mount at or under a share's path, outermost first. */
  private shareRequests(): MountRequest[] {
    const roots = this.shares.map((s) => s.mount.guestPath);
    return this.mountRequests().filter((r) =>
      roots.some((root) => r.path === root || r.path.startsWith(`${root.replace(/\/$/, '')}/`)),
    );
  }

  /** Stops virtiofsd (after QEMU exited) and unlocks the volumes. Idempotent. */
  async release(): Promise<void> {
    this.released ??= this.releaseOnce();
    return this.released;
  }

  private released: Promise<void> | undefined;

  private async releaseOnce(): Promise<void> {
    await this.stopRelays();
    await Promise.all(this.shares.map((s) => s.stop()));
    for (const volume of this.volumes) volume.release();
    this.rootVolume?.release();
  }
}

interface MountRequest {
  kind: 'virtiofs' | 'volume' | 'tmpfs';
  source: string;
  path: string;
  readOnly: boolean;
  volume: AttachedVolume | undefined;
  sizeMib?: number;
}

/** The name a mount inside a share is parked under during a suspend: its place in shareRequests(). */
function parkName(index: number): string {
  return `m${index}`;
}

function depth(guestPath: string): number {
  return guestPath.split('/').filter(Boolean).length;
}
