import { MicrovmError } from '../errors';
import { Image } from '../api/image';
import { recordPlatform } from '../image/image-records';
import { formatPlatform, parsePlatform } from '../image/platform';
import { listStoredImages, prune } from '../image/prune';
import { buildNotice, Progress } from './progress';
import { formatTable } from './table';

const PULL_USAGE =
  'usage: microvm pull [--platform OS/ARCH[/VARIANT]] REF (e.g. microvm pull --platform linux/arm64 localhost:5000/team/app:1)';

/**
 * `microvm pull [--platform P] REF`: pulls the image (the manifest for P, default this host's)
 * and builds its root disk; prints the manifest digest. `signal` stops it (Ctrl-C).
 */
export async function pullCommand(args: string[], signal?: AbortSignal): Promise<number> {
  const { ref, platform } = parsePullArgs(args);
  const progress = new Progress();
  progress.step(`pulling ${ref}${platform ? ` for ${platform}` : ''}`);
  const layers = new Map<string, number>();
  let lastReport = 0;
  const image = await Image.build({
    ref,
    platform,
    pullPolicy: 'always',
    // Pulling stores the image and its root disk; the snapshot is baked on first use.
    snapshot: false,
    signal,
    onProgress: (event) => {
      const notice = buildNotice(event);
      if (notice) progress.note(notice);
      if (event.phase === 'pull') {
        layers.set(event.digest, event.bytes);
        if (Date.now() - lastReport < 500 && event.bytes !== event.total) return;
        lastReport = Date.now();
        progress.detail(`${event.digest.slice(7, 19)}: ${mib(event.bytes)} / ${mib(event.total)} MiB`);
      } else if (event.phase === 'rootfs' && event.step !== 'done') {
        progress.detail(`root disk: ${event.step}, ${mib(event.bytes)} MiB`);
      }
    },
  });
  progress.finish();
  process.stdout.write(`${image.manifestDigest}\n`);
  return 0;
}

function parsePullArgs(args: string[]): { ref: string; platform?: string } {
  let platform: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--platform' || arg.startsWith('--platform=')) {
      const value = arg === '--platform' ? args[++i] : arg.slice('--platform='.length);
      if (value === undefined) throw new MicrovmError('E_BAD_OPTION', `--platform needs a value; ${PULL_USAGE}`);
      platform = formatPlatform(parsePlatform(value, '--platform'));
    } else rest.push(arg);
  }
  const [ref] = rest;
  if (rest.length !== 1 || ref === undefined || ref.startsWith('-')) throw new MicrovmError('E_BAD_OPTION', PULL_USAGE);
  return { ref, ...(platform ? { platform } : {}) };
}

/** `microvm images`: one line per stored image. */
export async function imagesCommand(args: string[]): Promise<number> {
  if (args.length > 0) throw new MicrovmError('E_BAD_OPTION', 'usage: microvm images');
  const rows = [['REFERENCE', 'PLATFORM', 'MANIFEST', 'SOURCE', 'LAYERS MiB', 'DISK', 'STORED']];
  for (const info of await listStoredImages()) {
    rows.push([
      info.record.ref,
      formatPlatform(recordPlatform(info.record)),
      info.record.manifest.digest.slice(0, 19),
      info.record.source,
      info.image ? mib(info.bytes) : 'incomplete',
      info.rootDisk ? 'built' : '-',
      info.record.storedAt.slice(0, 19).replace('T', ' '),
    ]);
  }
  process.stdout.write(formatTable(rows));
  return 0;
}

/** `microvm prune`: removes blobs and root disks no stored image uses. */
export async function pruneCommand(args: string[]): Promise<number> {
  if (args.length > 0) throw new MicrovmError('E_BAD_OPTION', 'usage: microvm prune');
  const result = await prune();
  process.stderr.write(
    `microvm: removed ${result.blobs} blobs, ${result.disks} root disks and ${result.temp} files left by killed writers (${mib(result.bytes)} MiB)\n`,
  );
  return 0;
}

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}
