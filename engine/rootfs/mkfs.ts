import { execFile, spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { diskFullInOutput } from '../disk-full';
import { killOnAbort } from '../abort';
import { MicrovmError } from '../errors';

const MIN_VERSION = [1, 47, 1];
let checkedBinary: Promise<string> | undefined;

/** mke2fs >= 1.47.1 reads a tar stream with `-d -`; older ones cannot. Checked once per process. */
export function findMke2fs(): Promise<string> {
  checkedBinary ??= probe();
  return checkedBinary;
}

async function probe(): Promise<string> {
  const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };
  const output = await new Promise<string>((resolve, reject) =>
    execFile('mke2fs', ['-V'], { env }, (err, stdout, stderr) => (err ? reject(err) : resolve(`${stdout}${stderr}`))),
  ).catch((err: Error) => {
    checkedBinary = undefined;
    throw new MicrovmError(
      'E_SETUP_MISSING',
      `cannot run mke2fs (${err.message}); run \`npm run setup\` to install e2fsprogs >= 1.47.1`,
    );
  });
  const [, major = '0', minor = '0', patch = '0'] = /mke2fs (\d+)\.(\d+)(?:\.(\d+))?/.exec(output) ?? [];
  const version = [Number(major), Number(minor), Number(patch)];
  if (isOlder(version, MIN_VERSION)) {
    checkedBinary = undefined;
    throw new MicrovmError(
      'E_ROOTFS_BUILD',
      `mke2fs ${version.join('.')} cannot build a disk from a tar stream (needs e2fsprogs >= 1.47.1); ` +
        'run `npm run setup`, which installs it from bookworm-backports on Debian 12',
    );
  }
  return 'mke2fs';
}

export interface Mke2fsJob {
  imagePath: string;
  sizeBytes: number;
  inodes: number;
  tar: AsyncIterable<Buffer>;
  onBytes?: (bytes: number) => void;
  /** Kills mke2fs (SIGKILL); the caller removes the partial image. */
  signal?: AbortSignal;
}

/** Builds an ext4 image from a tar stream on stdin; nothing is extracted on the host. */
export async function runMke2fs(job: Mke2fsJob): Promise<void> {
  const binary = await findMke2fs();
  const sizeKib = Math.ceil(job.sizeBytes / 1024);
  const args = ['-t', 'ext4', '-d', '-', '-F', '-q', '-E', 'root_owner=0:0', '-L', 'microvm-root'];
  args.push('-N', String(job.inodes), job.imagePath, `${sizeKib}k`);
  // libarchive converts PAX names to the locale's charset; our headers say hdrcharset=BINARY,
  // and a UTF-8 locale keeps any other reader path from refusing non-ASCII names.
  const env = { ...process.env, LC_ALL: 'C.UTF-8', PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };
  const child = spawn(binary, args, { env, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 16 * 1024) stderr += chunk.toString();
  });
  const unlink = killOnAbort(child, job.signal);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  }).finally(unlink);
  let written = 0;
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of job.tar) {
      written += chunk.length;
      job.onBytes?.(written);
      yield chunk;
    }
  };
  try {
    await pipeline(Readable.from(counted()), child.stdin);
  } catch (err) {
    child.kill('SIGKILL');
    await exited.catch(() => undefined);
    if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
  }
  const code = await exited;
  if (code !== 0) {
    throw new MicrovmError(
      'E_ROOTFS_BUILD',
      `mke2fs failed (exit ${code}) building ${job.imagePath}: ${stderr.trim() || 'no message'}; ` +
        'if it mentions libarchive, run `npm run setup`',
      { cause: diskFullInOutput(stderr) },
    );
  }
}

function isOlder(version: readonly number[], minimum: readonly number[]): boolean {
  for (const [i, part] of version.entries()) {
    const wanted = minimum[i] ?? 0;
    if (part !== wanted) return part < wanted;
  }
  return false;
}
