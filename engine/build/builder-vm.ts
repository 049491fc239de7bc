import { StringDecoder } from 'node:string_decoder';
import { setTimeout as delay } from 'node:timers/promises';
import type { ExecChild } from '../agent/exec-child';
import { onAbort } from '../abort';
import { isMicrovmError, MicrovmError } from '../errors';
import type { Image } from '../api/image';
import type { Pool } from '../pool/pool';
import type { Vm } from '../vm/vm';

/**
 * The builder microVM: an image with buildah, booted fresh with the builder's cache volume at
 * /var/lib/containers (buildah's storage, its blob-info cache and its temporary files, on ext4,
 * kept between builds). One builder runs at a time per $MICROVM_HOME: the volume is locked to
 * one VM, so a second build waits for the first.
 */
export const BUILDER_VOLUME = 'microvm-builder';

/** Every path the engine uses in the builder guest. */
export const GUEST = {
  volume: '/var/lib/containers',
  tmp: '/var/lib/containers/tmp',
  /** One build's files: context/, Dockerfile, base-N/ (OCI layouts), export/ (the result). */
  job: '/var/lib/containers/microvm-job',
  registriesConf: '/run/microvm-build/registries.conf',
} as const;

/** What buildah needs in its environment: chroot isolation, overlay storage, temp files on the volume. */
export const BUILDAH_ENV: Readonly<Record<string, string>> = {
  BUILDAH_ISOLATION: 'chroot',
  STORAGE_DRIVER: 'overlay',
  TMPDIR: GUEST.tmp,
  CONTAINERS_REGISTRIES_CONF: GUEST.registriesConf,
};

/** Short names in FROM lines resolve on Docker Hub, as in Docker (the host pulled them under that name). */
export const REGISTRIES_CONF = 'unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n';

const VOLUME_WAIT_MS = 1000;

export class BuilderVm {
  private constructor(
    private readonly pool: Pool,
    private readonly vm: Vm,
  ) {}

  /**
   * Boots the builder and prepares its directories. While another process's build holds the
   * volume, waits (calling `onWait` once) until it is free or `signal` aborts.
   */
  static async start(image: Image, signal: AbortSignal | undefined, onWait: () => void): Promise<BuilderVm> {
    let told = false;
    for (;;) {
      const pool = image.pool({ min: 0, max: 1, acquireTimeoutMs: 0 });
      const stop = () => void pool.shutdown();
      signal?.addEventListener('abort', stop, { once: true });
      try {
        const vm = await pool.acquire();
        const builder = new BuilderVm(pool, vm);
        await builder.sh(
          `rm -rf ${GUEST.job} && mkdir -p ${GUEST.tmp} ${GUEST.job} /run/microvm-build && find ${GUEST.tmp} -mindepth 1 -delete`,
          'prepare the builder',
        );
        await vm.writeFile(GUEST.registriesConf, REGISTRIES_CONF);
        return builder;
      } catch (err) {
        await pool.shutdown();
        if (!isMicrovmError(err, 'E_VOLUME_BUSY') || signal?.aborted) throw err;
        if (!told) onWait();
        told = true;
        await delay(VOLUME_WAIT_MS, undefined, { signal }).catch(() => undefined);
      } finally {
        signal?.removeEventListener('abort', stop);
      }
    }
  }

  /** Stops the VM when `signal` aborts; returns the disposer. */
  stopOn(signal: AbortSignal | undefined): () => void {
    return onAbort(signal, () => void this.pool.shutdown());
  }

  /** Runs a shell script; a non-zero exit is E_BUILD_FAILED naming `what` with the script's stderr. */
  async sh(script: string, what: string): Promise<string> {
    const result = await this.vm.exec({
      argv: ['/bin/sh', '-ec', script],
      env: BUILDAH_ENV,
      timeoutMs: 0,
      maxBuffer: 4 * 1024 * 1024,
    });
    if (result.exitCode !== 0) {
      throw new MicrovmError(
        'E_BUILD_FAILED',
        `the builder could not ${what} (exit ${result.exitCode}): ${result.stderr.trim().split('\n').slice(-3).join(' / ').slice(0, 600)}`,
      );
    }
    return result.stdout;
  }

  /** Runs `argv`, handing each output line to `onLine` as it comes; resolves with the exit code. */
  async run(argv: string[], onLine: (stream: 'stdout' | 'stderr', line: string) => void): Promise<number> {
    const child = this.vm.spawn({ argv, env: BUILDAH_ENV, timeoutMs: 0 });
    child.closeStdin();
    await Promise.all([
      readLines(
        () => child.readStdout(),
        (line) => onLine('stdout', line),
      ),
      readLines(
        () => child.readStderr(),
        (line) => onLine('stderr', line),
      ),
    ]);
    return (await child.wait()).exitCode;
  }

  /** Feeds `data` to `argv`'s stdin (a tar into `tar -x`, say); fails like sh() on a non-zero exit. */
  async feed(argv: string[], data: AsyncIterable<Buffer>, what: string): Promise<void> {
    const child = this.vm.spawn({ argv, env: BUILDAH_ENV, timeoutMs: 0 });
    const stderr = collect(() => child.readStderr(), 64 * 1024);
    const stdout = collect(() => child.readStdout(), 64 * 1024);
    try {
      for await (const chunk of data) await child.writeStdin(chunk);
    } catch (err) {
      child.signal('SIGKILL');
      await child.wait().catch(() => undefined);
      throw err;
    } finally {
      child.closeStdin();
    }
    const [errText] = await Promise.all([stderr, stdout]);
    const { exitCode } = await child.wait();
    if (exitCode !== 0)
      throw new MicrovmError(
        'E_BUILD_FAILED',
        `the builder could not ${what} (exit ${exitCode}): ${errText.trim().slice(-600)}`,
      );
  }

  /** A guest file's bytes as a stream (for blobs larger than readFile carries). */
  async *stream(path: string): AsyncGenerator<Buffer> {
    const child: ExecChild = this.vm.spawn({ argv: ['cat', '--', path], timeoutMs: 0 });
    child.closeStdin();
    const stderr = collect(() => child.readStderr(), 4096);
    for (let chunk = await child.readStdout(); chunk.length > 0; chunk = await child.readStdout()) yield chunk;
    const { exitCode } = await child.wait();
    if (exitCode !== 0)
      throw new MicrovmError('E_BUILD_FAILED', `the builder could not read ${path}: ${(await stderr).trim()}`);
  }

  readFile(path: string): Promise<Buffer> {
    return this.vm.readFile(path);
  }

  writeFile(path: string, data: string): Promise<void> {
    return this.vm.writeFile(path, data);
  }

  /** Removes the job's files and stops the VM (a clean shutdown: the volume is synced first). */
  async stop(): Promise<void> {
    try {
      await this.sh(`rm -rf ${GUEST.job}`, 'remove the build files');
      await this.vm.release();
    } finally {
      await this.pool.shutdown();
    }
  }

  /** Stops at once (after a failure or an abort): buildah's storage copes with a killed build. */
  async kill(): Promise<void> {
    await this.pool.shutdown();
  }
}

/** A line longer than this is handed on in pieces (a step printing megabytes without a newline). */
const MAX_LINE_CHARS = 16 * 1024;

async function readLines(read: () => Promise<Buffer>, onLine: (line: string) => void): Promise<void> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  for (let chunk = await read(); chunk.length > 0; chunk = await read()) {
    pending += decoder.write(chunk);
    const lines = pending.split(/\r?\n/);
    pending = lines.pop() ?? '';
    for (const line of lines) onLine(line);
    for (; pending.length > MAX_LINE_CHARS; pending = pending.slice(MAX_LINE_CHARS))
      onLine(pending.slice(0, MAX_LINE_CHARS));
  }
  pending += decoder.end();
  if (pending) onLine(pending);
}

async function collect(read: () => Promise<Buffer>, max: number): Promise<string> {
  let text = '';
  for (let chunk = await read(); chunk.length > 0; chunk = await read())
    text = (text + chunk.toString('utf8')).slice(-max);
  return text;
}
