/** How a share treats symlinks; enforced on the host (see README.md in this folder). */
export type SymlinkPolicy = 'opaque' | 'deny' | 'follow';

/** A host folder shared into the guest over virtio-fs (validated user options, resolved). */
export interface MountSpec {
  /** Absolute, symlinks resolved: the real directory virtiofsd serves. */
  hostPath: string;
  guestPath: string;
  symlinks: SymlinkPolicy;
  readOnly: boolean;
  /**
   * Serve the folder through the filter view (native/fsview): protected names at any depth,
   * git's rules, covered paths. false serves the folder directly (trusted folders only).
   */
  filter: boolean;
  /** Names (globs) the guest may not create, and may only read where they exist, at any depth. */
  protect: string[];
  /** Paths relative to hostPath that the guest may read but not change (a core.hooksPath, ...). */
  protectPaths: string[];
  /** 'writable': git's everyday data in a .git is writable, its config and hooks are not; 'strict': all of it read-only. */
  git: GitPolicy;
  /** The guest ids that become the folder's owner on the host (default root's, 0:0). */
  guestOwner?: { uid: number; gid: number };
  /**
   * Relay host changes into the guest as inotify events (engine/watch/): on for a workspace's
   * folder, off unless asked for other shares.
   */
  fileEvents?: boolean;
}

/** What a share lets the guest change in `.git`: `writable` (objects, refs, index, logs; config and hooks stay read-only) or `strict` (nothing). */
export type GitPolicy = 'writable' | 'strict';

/** The disk that keeps a VM's root changes (BuildOptions.rootVolume): a volume the agent uses as the root's upper layer. */
export interface RootVolumeSpec {
  name: string;
  sizeMib: number;
}

/** The virtio-blk serial the agent finds the root volume by (kernel command line `microvm.upper=`). */
export const ROOT_VOLUME_SERIAL = 'microvm-root';

/** A tmpfs in the guest (devcontainer.json's `type=tmpfs` mounts): memory-backed, gone at shutdown. */
export interface TmpfsSpec {
  mountPoint: string;
  /** Its size limit; absent = the kernel's default, half the VM's RAM. */
  sizeMib?: number;
}

/** A refusal of the filter view, as the engine reports it (the path is the guest's choice: plain text only). */
export interface ShareRefusal {
  /** The share's host folder. */
  hostPath: string;
  /** What the guest tried: create, mkdir, rename, link, open for writing, ... */
  op: string;
  /** Relative to the share. */
  path: string;
  /** EACCES, EPERM, EXDEV, EROFS or EBUSY. */
  errno: string;
  reason: string;
  /** Refusals the view held back (rate limit) before this one. */
  heldBack: number;
}

/** A persistent ext4 disk image under $MICROVM_HOME/volumes, attached over virtio-blk. */
export interface VolumeSpec {
  name: string;
  sizeMib: number;
  mountPoint: string;
}

/**
 * Names host tools run or trust, protected at any depth by default: git metadata and
 * submodule pointers, editor tasks and launch configs, devcontainer definitions (they decide
 * the next open), workspace files (their tasks run on open), husky's git hooks, and
 * `pyvenv.cfg`, which makes a directory a Python environment whose interpreter editors run
 * to inspect it (guest environments belong on a volume, such as a workspace's `.venv`).
 */
export const DEFAULT_PROTECT = [
  '.git',
  '.gitmodules',
  '.vscode',
  '.devcontainer',
  '.devcontainer.json',
  '*.code-workspace',
  '.husky',
  'pyvenv.cfg',
] as const;
export const MIN_VOLUME_MIB = 32;

/** Which virtiofsd runs: Debian's C one (QEMU <= 7.2, root only) or the Rust one. */
export type VirtiofsdKind = 'c' | 'rust';

export interface Virtiofsd {
  kind: VirtiofsdKind;
  path: string;
}

/** One line of a user namespace id map: ids inside..inside+count map to outside... */
export interface IdMapping {
  inside: number;
  outside: number;
  count: number;
}
