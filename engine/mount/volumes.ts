import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { MicrovmError } from '../errors';
import { isProcessAlive } from '../host/liveness';
import { homePaths } from '../paths';
import { VolumeSpec } from './types';

const run = promisify(execFile);
const MIB = 1024 * 1024;
const LOCK_WAIT_MS = 10_000;

/** A volume's disk image, locked to one running VM until release(). */
export interface AttachedVolume {
  spec: VolumeSpec;
  file: string;
  /** The virtio-blk serial the guest agent finds the disk by. */
  serial: string;
  release(): void;
}

/** $MICROVM_HOME/volumes/NAME.ext4 (names are validated: no '/', no leading '.'). */
export function volumeFile(name: string): string {
  return path.join(homePaths.volumes(), `${name}.ext4`);
}

/**
 * Creates the volume (a sparse ext4 image, made here from nothing) or takes the existing
 * one as it is: its file system is the guest's data, and host root never parses it (no
 * e2fsck, no resize2fs on what a guest wrote). The guest kernel replays the journal when
 * it mounts the volume after an unclean stop, and grows the file system online to fill the
 * file, which a larger `sizeMib` only makes longer here. Volumes never shrink.
 */
export async function attachVolume(
  spec: VolumeSpec,
  index: number,
  serial = `microvm-vol${index}`,
): Promise<AttachedVolume> {
  fs.mkdirSync(homePaths.volumes(), { recursive: true, mode: 0o700 });
  const file = volumeFile(spec.name);
  const release = await lock(file, spec.name);
  try {
    const size = fs.statSync(file, { throwIfNoEntry: false })?.size;
    if (size === undefined) await create(file, spec);
    else if (size < spec.sizeMib * MIB) grow(file, spec);
  } catch (err) {
    release();
    throw err;
  }
  return { spec, file, serial, release };
}

async function create(file: string, spec: VolumeSpec): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, '', { mode: 0o600 });
    fs.truncateSync(tmp, spec.sizeMib * MIB);
    await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-m', '0', '-E', 'lazy_itable_init=1,lazy_journal_init=1', tmp]);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new MicrovmError(
      'E_VOLUME',
      `cannot create the volume ${file} (${spec.sizeMib} MiB): ${(err as Error).message}`,
      { cause: err, details: { volume: spec.name, file, failed: 'create' } },
    );
  }
}

/**
 * Deletes a volume and everything on it (to start a damaged one afresh); E_VOLUME_BUSY while
 * a VM has it attached.
 */
export async function removeVolume(name: string): Promise<void> {
  // Its lock file lives beside it: a home where no volume was made yet has no volumes/.
  fs.mkdirSync(homePaths.volumes(), { recursive: true, mode: 0o700 });
  const file = volumeFile(name);
  if (!fs.existsSync(path.dirname(file))) return; // a fresh $MICROVM_HOME has no volumes (and no directory for a lock)
  const release = await lock(file, name);
  try {
    fs.rmSync(file, { force: true });
  } finally {
    release();
  }
}

function grow(file: string, spec: VolumeSpec): void {
  try {
    fs.truncateSync(file, spec.sizeMib * MIB);
  } catch (err) {
    throw new MicrovmError(
      'E_VOLUME',
      `cannot grow the volume ${spec.name} (${file}) to ${spec.sizeMib} MiB: ${(err as Error).message}`,
      { cause: err, details: { volume: spec.name, file, failed: 'grow' } },
    );
  }
}

/**
 * One VM at a time per volume: NAME.ext4.lock holds the owner's pid; a dead owner's lock is
 * taken over. A VM of this process that is still stopping gets LOCK_WAIT_MS to let go.
 */
async function lock(file: string, name: string): Promise<() => void> {
  const lockFile = `${file}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      fs.writeFileSync(lockFile, String(process.pid), { flag: 'wx', mode: 0o600 });
      let held = true;
      return () => {
        if (held) fs.rmSync(lockFile, { force: true });
        held = false;
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(fs.readFileSync(lockFile, 'utf8'));
      if (owner !== process.pid && !isProcessAlive(owner)) {
        fs.rmSync(lockFile, { force: true });
        continue;
      }
      if (owner !== process.pid || Date.now() > deadline) break;
      await delay(50);
    }
  }
  throw new MicrovmError(
    'E_VOLUME_BUSY',
    `the volume ${name} is in use by another VM (${lockFile}); a volume can be attached to one VM at a time (pool max 1)`,
  );
}
