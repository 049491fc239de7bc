import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { killOnAbort } from '../abort';
import { diskFullInOutput } from '../disk-full';
import { MicrovmError } from '../errors';
import { fromBytePath, type BytePath } from '../tar/types';

/** The only xattr mke2fs's tar reader stores itself; the rest are set afterwards with debugfs. */
const SET_BY_MKE2FS = new Set(['security.capability']);
const MAX_BYTES = 64 * 1024 * 1024;
const MAX_COUNT = 1_000_000;
/** debugfs reads its command file with fgets into a BUFSIZ (8192-byte) buffer. */
const MAX_LINE = 8000;

/**
 * Second, bounded pass for the extended attributes mke2fs drops: `add` collects them while the
 * merged tar is streamed, `apply` writes them into the finished image with `debugfs -w`. Paths
 * are looked up inside the image only; nothing on the host named by the image is touched.
 */
export class XattrPass {
  private readonly pending: Array<{ path: BytePath; name: string; value: Buffer }> = [];
  private bytes = 0;

  constructor(private readonly image: string) {}

  /** `entryPath` is relative to the image root ('' is the root itself). */
  add(entryPath: BytePath, xattrs: Map<string, Buffer>): void {
    for (const [name, value] of xattrs) {
      if (SET_BY_MKE2FS.has(name)) continue;
      // A debugfs command is one line, and it truncates a line at '\r' too.
      if (/[\n\r]/.test(entryPath) || /[\0\n\r]/.test(name)) {
        throw this.error(`"${name}" on /${fromBytePath(entryPath)}: a name with a line break cannot be set`);
      }
      this.bytes += entryPath.length + name.length + value.length;
      if (this.pending.length >= MAX_COUNT || this.bytes > MAX_BYTES) {
        throw this.error(`more than ${MAX_COUNT} extended attributes or ${MAX_BYTES / 1024 / 1024} MiB of them`);
      }
      this.pending.push({ path: `/${entryPath}`, name, value });
    }
  }

  /** `signal` kills debugfs; the caller removes the image. */
  async apply(imagePath: string, signal?: AbortSignal): Promise<void> {
    if (this.pending.length === 0) return;
    const blockSize = await readBlockSize(imagePath);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'microvm-xattrs-'));
    try {
      const valueFiles = new Map<string, string>(); // Identical values (say SELinux labels) share a file.
      const lines: Buffer[] = [];
      for (const { path: entryPath, name, value } of this.pending) {
        // Writing the value files takes a while for many attributes: an abort stops it here too.
        signal?.throwIfAborted();
        const where = (): string => `"${name}" on ${fromBytePath(entryPath)}`;
        // debugfs reads at most one block of the value file; ext4 cannot hold a bigger value anyway.
        if (value.length > blockSize)
          throw this.error(`${where()} has ${value.length} bytes, over the ${blockSize}-byte block size`);
        let file = valueFiles.get(value.toString('latin1'));
        if (!file) {
          file = path.join(dir, `value-${valueFiles.size}`);
          valueFiles.set(value.toString('latin1'), file);
          await fs.writeFile(file, value, { flag: 'wx', mode: 0o600 });
        }
        // `--` ends the options, so a name starting with '-' is not one.
        const line = Buffer.concat([
          Buffer.from(`ea_set -f ${quote(file)} -- `),
          Buffer.from(quote(entryPath), 'latin1'),
          Buffer.from(` ${quote(name)}\n`),
        ]);
        if (line.length > MAX_LINE) throw this.error(`${where()}: the path is too long for a debugfs command`);
        lines.push(line);
      }
      const commands = path.join(dir, 'commands');
      await fs.writeFile(commands, Buffer.concat(lines), { flag: 'wx', mode: 0o600 });
      const problems = await runDebugfs(['-w', '-f', commands, imagePath], signal);
      if (problems.length > 0)
        throw this.error(`debugfs reported: ${problems.join('; ')}`, diskFullInOutput(problems.join('\n')));
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  private error(problem: string, cause?: Error): MicrovmError {
    return new MicrovmError(
      'E_ROOTFS_BUILD',
      `cannot set the extended attributes of ${this.image} on its root disk: ${problem}`,
      { cause },
    );
  }
}

/** debugfs's parser: inside double quotes everything is literal except `""`, which is one quote. */
function quote(text: string): string {
  return `"${text.replaceAll('"', '""')}"`;
}

/** ext4's s_log_block_size, in the superblock 1024 bytes into the image. */
async function readBlockSize(imagePath: string): Promise<number> {
  const handle = await fs.open(imagePath, 'r');
  try {
    const { buffer } = await handle.read(Buffer.alloc(4), 0, 4, 1024 + 24);
    return 1024 << buffer.readUInt32LE(0);
  } finally {
    await handle.close();
  }
}

/**
 * Runs debugfs and returns whatever looks like an error. It exits 0 even when commands fail, so
 * its output is checked: stdout should only echo the commands, stderr only print its banner.
 */
async function runDebugfs(args: string[], signal: AbortSignal | undefined): Promise<string[]> {
  const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };
  const child = spawn('debugfs', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const problems: string[] = [];
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  exited.catch(() => undefined); // Awaited below; a spawn error must not go unhandled meanwhile.
  const unlink = killOnAbort(child, signal);
  void exited.finally(unlink).catch(() => undefined);
  const collect = async (stream: Readable, expected: RegExp): Promise<void> => {
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      if (!expected.test(line) && problems.length < 10) problems.push(line.trim());
    }
  };
  try {
    await Promise.all([collect(child.stdout, /^debugfs: /), collect(child.stderr, /^debugfs \d+\.\d+/)]);
    const code = await exited;
    if (code !== 0) problems.push(`exit status ${code}`);
  } catch (err) {
    problems.push(`cannot run debugfs (${(err as Error).message}); run \`npm run setup\` to install e2fsprogs`);
  }
  return problems;
}
