/** How a share treats symlinks; enforced on the host (see README.md in this folder). */
export type SymlinkPolicy = 'opaque' | 'deny' | 'follow';

/** A host folder shared into the guest over virtio-fs (validated user options, resolved). */
export interface MountSpec {
  /** Absolute, symlinks resolved: the real directory virtiofsd serves. */
  hostPath: string;
  guestPath: string;
  symlinks: SymlinkPolicy;
  readOnly: boolean;
  /** Paths relative to hostPath that the guest may read but not change (.git, .vscode, ...). */
  protect: string[];
}

/** A persistent ext4 disk image under $MICROVM_HOME/volumes, attached over virtio-blk. */
export interface VolumeSpec {
  name: string;
  sizeMib: number;
  mountPoint: string;
}

export const DEFAULT_PROTECT = ['.git', '.vscode', '.devcontainer'] as const;
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
