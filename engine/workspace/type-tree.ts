import * as fs from 'node:fs';
import * as path from 'node:path';
import { MicrovmError } from '../errors';
import { homePaths } from '../paths';
import { reapDeadWriters, tempPath } from '../temp-files';

/**
 * The host side of a type projection: a private staging tree, written only by this process,
 * then swapped for the host folder's `node_modules` by rename. Nothing here follows a link
 * or writes outside the staging tree and the one directory it replaces.
 */

/** Marks a host `node_modules` as a projection MicroVM made (and may replace). */
export const PROJECTION_MARKER = '.microvm-types.json';

/** What stands at the projection's host path before a refresh. */
export type TargetState = 'absent' | 'empty' | 'ours';

/**
 * Whether `hostDir` (a path a volume covers, inside the shared `folder`) may be replaced: it
 * is absent, an empty directory, or a projection of ours (the marker file). A `node_modules`
 * the user made on the host, a link, or a path through a link is refused.
 */
export function checkTarget(folder: string, hostDir: string): TargetState {
  const parent = path.dirname(hostDir);
  let realParent: string;
  try {
    realParent = fs.realpathSync(parent);
  } catch (err) {
    throw refusal(
      hostDir,
      `its folder ${parent} cannot be resolved (${(err as NodeJS.ErrnoException).code})`,
      'create the folder on the host, or turn the projection off',
    );
  }
  if (realParent !== parent || !(`${parent}/`.startsWith(`${folder}/`) || parent === folder)) {
    throw refusal(
      hostDir,
      `${parent} is reached through a symbolic link (it resolves to ${realParent})`,
      'replace the link with a directory, or turn the projection off',
    );
  }
  const stat = fs.lstatSync(hostDir, { throwIfNoEntry: false });
  if (!stat) return 'absent';
  if (!stat.isDirectory()) throw refusal(hostDir, 'it is not a directory (a link or a file)', 'move it away');
  if (fs.lstatSync(path.join(hostDir, PROJECTION_MARKER), { throwIfNoEntry: false })?.isFile()) return 'ours';
  if (fs.readdirSync(hostDir).length === 0) return 'empty';
  throw refusal(
    hostDir,
    `it is a node_modules made on the host (no ${PROJECTION_MARKER} in it)`,
    "move or delete it if the VM's packages should be projected there",
  );
}

function refusal(hostDir: string, why: string, fix: string): MicrovmError {
  return new MicrovmError(
    'E_TYPE_PROJECTION',
    `the type projection does not replace ${hostDir}: ${why}, so host TypeScript does not see the VM's packages there; ${fix} (or set microvm.typeProjection to false)`,
  );
}

/** Where staging trees are built: `$MICROVM_HOME/type-projections`, private to this user. */
function stagingDir(): string {
  const dir = homePaths.typeProjections();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/**
 * A projection being built: directories 0755 and files 0644, created exclusively (a path the
 * stream names twice, or as both a file and a directory, is refused rather than replaced),
 * owned by `owner` when this process runs as root for another user's folder.
 */
export class StagingTree {
  files = 0;
  bytes = 0;
  private constructor(
    readonly root: string,
    readonly inPlace: boolean,
    private readonly owner: { uid: number; gid: number } | undefined,
  ) {}

  /**
   * A new staging tree for `hostDir`: under $MICROVM_HOME when it shares a file system with
   * `hostDir` (so one rename swaps it in), else inside `hostDir` itself (the guest never sees
   * it: a volume covers the path), swapped entry by entry.
   */
  static create(hostDir: string, state: TargetState, owner: StagingTree['owner']): StagingTree {
    const home = stagingDir();
    reapDeadWriters(home);
    const sameDevice = fs.statSync(home).dev === fs.statSync(path.dirname(hostDir)).dev;
    if (!sameDevice && state !== 'ours') {
      // Marked before anything else is in it, so a run killed now leaves a directory the next run may replace.
      if (state === 'absent') makeDir(hostDir, owner);
      writeFile(path.join(hostDir, PROJECTION_MARKER), '{"projectedBy":"MicroVM"}\n', owner);
    }
    if (!sameDevice) reapDeadWriters(hostDir);
    const root = tempPath(sameDevice ? home : hostDir);
    makeDir(root, owner);
    return new StagingTree(root, !sameDevice, owner);
  }

  /** Writes one file at `relative` (already judged safe); false when the path is taken. */
  write(relative: string, data: Buffer | string): boolean {
    const parts = relative.split('/');
    let dir = this.root;
    for (const part of parts.slice(0, -1)) {
      dir = path.join(dir, part);
      const stat = fs.lstatSync(dir, { throwIfNoEntry: false });
      if (stat && !stat.isDirectory()) return false;
      if (!stat) makeDir(dir, this.owner);
    }
    try {
      writeFile(path.join(dir, parts.at(-1) ?? ''), data, this.owner);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    this.files += 1;
    this.bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    return true;
  }

  /**
   * Puts the tree at `hostDir`: the old projection is renamed away and the new one renamed in
   * (one rename each), then the old one is deleted where the guest cannot reach it.
   */
  install(hostDir: string): void {
    if (this.inPlace) return this.installEntries(hostDir);
    const old = tempPath(path.dirname(this.root), '-old');
    const hadOld = fs.existsSync(hostDir);
    if (hadOld) fs.renameSync(hostDir, old);
    try {
      fs.renameSync(this.root, hostDir);
    } catch (err) {
      if (hadOld) fs.renameSync(old, hostDir);
      throw err;
    }
    fs.rmSync(old, { recursive: true, force: true });
  }

  /**
   * The other file system's case: each top-level entry is swapped by rename, the marker last
   * (renamed over the old one, so the directory is never without it).
   */
  private installEntries(hostDir: string): void {
    const old = tempPath(hostDir, '-old');
    makeDir(old, this.owner);
    const keep = new Set([path.basename(this.root), path.basename(old), PROJECTION_MARKER]);
    for (const name of fs.readdirSync(hostDir)) {
      if (!keep.has(name)) fs.renameSync(path.join(hostDir, name), path.join(old, name));
    }
    const names = fs
      .readdirSync(this.root)
      .sort((a, b) => Number(a === PROJECTION_MARKER) - Number(b === PROJECTION_MARKER));
    for (const name of names) fs.renameSync(path.join(this.root, name), path.join(hostDir, name));
    fs.rmSync(this.root, { recursive: true, force: true });
    fs.rmSync(old, { recursive: true, force: true });
  }

  /** Removes the tree (a projection that failed or went over a cap). */
  discard(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** A new file (never an existing one), 0644 whatever the umask. */
function writeFile(file: string, data: Buffer | string, owner: { uid: number; gid: number } | undefined): void {
  const fd = fs.openSync(file, 'wx', 0o644);
  try {
    fs.fchmodSync(fd, 0o644);
    if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
    fs.writeFileSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
}

function makeDir(dir: string, owner: { uid: number; gid: number } | undefined): void {
  fs.mkdirSync(dir, { mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  if (owner) fs.lchownSync(dir, owner.uid, owner.gid);
}
