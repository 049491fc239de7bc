import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';

/**
 * Every location under $MICROVM_HOME, in one place. scripts/setup writes the assets/ and
 * images/default/ parts with the same names.
 */
export function microvmHome(): string {
  return process.env.MICROVM_HOME || path.join(os.homedir(), '.cache', 'microvm');
}

export const homePaths = {
  assetsDir: () => path.join(microvmHome(), 'assets'),
  kernel: () => path.join(microvmHome(), 'assets', 'vmlinuz'),
  initrd: () => path.join(microvmHome(), 'assets', 'initrd.cpio'),
  /** One manifest per guest architecture: x86_64's at the top, the others' in assets/ARCH/. */
  assetsManifest: (arch: 'x86_64' | 'aarch64' = 'x86_64') =>
    path.join(microvmHome(), 'assets', ...(arch === 'x86_64' ? [] : [arch]), 'manifest.json'),
  launcher: () => path.join(microvmHome(), 'assets', 'bin', 'microvm-launch'),
  netguard: () => path.join(microvmHome(), 'assets', 'bin', 'microvm-netguard.so'),
  defaultImage: () => path.join(microvmHome(), 'images', 'default'),
  /** The builder microVM's image (buildah from Debian), an OCI layout written by scripts/setup. */
  builderImage: () => path.join(microvmHome(), 'images', 'builder'),
  /** Dockerfile build results (one OCI layout per cache key) and context hash caches (engine/build). */
  builds: () => path.join(microvmHome(), 'builds'),
  /** Dev container features: recorded tag digests (refs/) and the build contexts being assembled (engine/features). */
  features: () => path.join(microvmHome(), 'features'),
  rootfsCache: () => path.join(microvmHome(), 'rootfs'),
  /** The vfkit backend's uncompressed kernels, by the compressed kernel's sha256 (engine/backend/vfkit). */
  vfkitKernels: () => path.join(microvmHome(), 'vfkit', 'kernels'),
  /** Content-addressed blobs (blobs/sha256/HEX), partial downloads (tmp/) and pulled refs (refs/). */
  store: () => path.join(microvmHome(), 'store'),
  runDir,
  suspended,
  accelCache: () => path.join(microvmHome(), 'accel.json'),
  snapshots: () => path.join(microvmHome(), 'snapshots'),
  /** Persistent ext4 disk images, one per volume name (engine/mount/volumes.ts). */
  volumes: () => path.join(microvmHome(), 'volumes'),
  /** One record per workspace folder (engine/workspace/record.ts). */
  workspaces: () => path.join(microvmHome(), 'workspaces'),
  /** Staging trees of type projections before they are renamed into a folder (engine/workspace/type-tree.ts). */
  typeProjections: () => path.join(microvmHome(), 'type-projections'),
};

/**
 * VM state directories (sockets and the guest RAM of fresh boots) live on tmpfs when the
 * host has /dev/shm, so guest RAM never causes disk writeback; one run dir per MICROVM_HOME.
 */
function runDir(): string {
  if (process.env.MICROVM_RUN_DIR) return process.env.MICROVM_RUN_DIR;
  if (!sharedMemoryDir()) return path.join(microvmHome(), 'run');
  return path.join(SHM, `${shmRunPrefix()}${homeTag()}`);
}

const SHM = '/dev/shm';

/**
 * Suspended workspace VMs (engine/workspace/warm-snapshot.ts), on the run dir's file system
 * so that their RAM files move by rename. On /dev/shm under a prefix of their own: engines
 * reap every `microvm-<uid>-*` run dir's entries without a live owner, and a suspended VM has none.
 */
function suspended(): string {
  if (process.env.MICROVM_RUN_DIR || !sharedMemoryDir()) return path.join(runDir(), SUSPENDED_DIR);
  return path.join(SHM, `${shmSuspendedPrefix()}${homeTag()}`);
}

/**
 * Every directory of suspended VMs this user may have on /dev/shm, whatever MICROVM_HOME made
 * it (own first): they hold guest RAM, so the bound on it (engine/workspace/suspended-budget.ts)
 * counts them all, and one whose home was deleted is found only by a scan.
 */
export function suspendedDirsOfThisUser(): string[] {
  return shmDirsOfThisUser(suspended(), shmSuspendedPrefix());
}

/** The file in a directory of suspended VMs that names the MICROVM_HOME it belongs to. */
export const SUSPENDED_HOME_FILE = 'home';

/** The run dir's one entry that is not a VM's state directory (the reaper leaves it). */
export const SUSPENDED_DIR = 'suspended';

function sharedMemoryDir(): boolean {
  return process.platform === 'linux' && fs.existsSync(SHM);
}

function shmRunPrefix(): string {
  return `microvm-${process.getuid?.() ?? 0}-`;
}

function shmSuspendedPrefix(): string {
  return `microvm-suspended-${process.getuid?.() ?? 0}-`;
}

/** What tells one MICROVM_HOME's directories on /dev/shm from another's. */
function homeTag(): string {
  return createHash('sha256').update(microvmHome()).digest('hex').slice(0, 8);
}

/**
 * `own`, then every other directory on /dev/shm named `prefix` + a home tag (this user's, made
 * by any MICROVM_HOME); only `own` where there is no /dev/shm or MICROVM_RUN_DIR places it.
 */
function shmDirsOfThisUser(own: string, prefix: string): string[] {
  if (process.env.MICROVM_RUN_DIR || !sharedMemoryDir()) return [own];
  let names: string[];
  try {
    names = fs.readdirSync(SHM);
  } catch {
    return [own];
  }
  const others = names.filter((name) => name.startsWith(prefix) && /^[0-9a-f]{8}$/.test(name.slice(prefix.length)));
  return [own, ...others.map((name) => path.join(SHM, name)).filter((dir) => dir !== own)];
}

/**
 * Every run dir this user may have left on /dev/shm, whatever MICROVM_HOME made it: a home
 * that was deleted while one of its VMs' owners was killed leaves its state (guest RAM on
 * tmpfs) there, and only a scan of them all finds it.
 */
export function runDirsOfThisUser(): string[] {
  return shmDirsOfThisUser(runDir(), shmRunPrefix());
}
