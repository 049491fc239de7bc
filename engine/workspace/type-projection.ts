import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExecChild } from '../agent/exec-child';
import { isMicrovmError, MicrovmError } from '../errors';
import type { MountSpec, VolumeSpec } from '../mount';
import { readTar } from '../tar/reader';
import type { Vm } from '../vm/vm';
import { DEFAULT_TYPE_LIMITS, judgePath, rewritePackageJson, TypeLimits } from './type-filter';
import { checkTarget, PROJECTION_MARKER, StagingTree } from './type-tree';

/**
 * A read-only, type-only projection of a volume's node_modules on the host: the guest lists
 * its declaration files and package.json files and streams them as tar (`find -exec tar`,
 * which busybox and GNU both have); the host reads the stream with the bounded tar reader,
 * keeps only what type resolution needs (type-filter.ts) and swaps the result in for the
 * host folder's `node_modules`, the path the volume covers, which the guest never sees
 * (type-tree.ts). Host TypeScript then resolves the VM's packages with no configuration.
 */

/** A volume-covered node_modules: where it is in the guest, and the host path it covers. */
export interface ProjectionTarget {
  guestDir: string;
  hostDir: string;
  /** The shared folder the host path lies in (real path). */
  folder: string;
}

/** What one type projection wrote on the host, and what it left out. */
export interface ProjectionResult {
  hostDir: string;
  declarations: number;
  packageJsons: number;
  bytes: number;
  /** Entries left out, by reason (a symlink, a protected name, a .js file the guest sent anyway, ...). */
  skipped: Record<string, number>;
  ms: number;
}

/** How projectTypes copies type declarations from the guest. */
export interface ProjectionOptions {
  /** Names never written on the host (the share's protected names). */
  protect: readonly string[];
  limits?: TypeLimits;
  /** The whole guest side (list and stream); the guest process is killed after it. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 300_000;

/** In the guest: `$1` is the node_modules; exit 127 without find or tar, 3 when it is not there. Only regular files are listed. */
export const GUEST_LISTING_SCRIPT =
  'command -v find >/dev/null && command -v tar >/dev/null || { echo "find or tar is missing" >&2; exit 127; }; cd "$1" || exit 3; exec find . \\( -name "*.d.ts" -o -name "*.d.mts" -o -name "*.d.cts" -o -name package.json \\) -type f -exec tar -c -f - {} +';

/**
 * The node_modules volumes of a workspace whose host path lies in a filtered share (the
 * filter view covers it, so the guest cannot reach what is projected there). Pure.
 */
export function projectionTargets(
  mounts: readonly MountSpec[],
  volumes: readonly Pick<VolumeSpec, 'mountPoint'>[],
): ProjectionTarget[] {
  const targets: ProjectionTarget[] = [];
  for (const { mountPoint } of volumes) {
    if (path.posix.basename(mountPoint) !== 'node_modules') continue;
    const share = mounts
      .filter((m) => m.filter && mountPoint.startsWith(`${m.guestPath.replace(/\/+$/, '')}/`))
      .sort((a, b) => b.guestPath.length - a.guestPath.length)[0];
    if (!share) continue;
    const relative = mountPoint
      .slice(share.guestPath.replace(/\/+$/, '').length + 1)
      .split('/')
      .filter(Boolean);
    if (relative.some((part) => part === '.' || part === '..')) continue;
    targets.push({ guestDir: mountPoint, hostDir: path.join(share.hostPath, ...relative), folder: share.hostPath });
  }
  return targets;
}

/** Projects one target; the previous projection stays when anything fails or a cap is hit. */
export async function projectTypes(
  vm: Vm,
  target: ProjectionTarget,
  options: ProjectionOptions,
): Promise<ProjectionResult> {
  const started = Date.now();
  const limits = options.limits ?? DEFAULT_TYPE_LIMITS;
  const state = checkTarget(target.folder, target.hostDir);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const staging = StagingTree.create(target.hostDir, state, folderOwner(target.folder));
  const counts = { declarations: 0, packageJsons: 0, skipped: {} as Record<string, number> };
  let child: ExecChild | undefined;
  try {
    child = vm.spawn({
      argv: ['/bin/sh', '-c', GUEST_LISTING_SCRIPT, 'microvm-types', target.guestDir],
      user: { uid: 0, gid: 0 },
      timeoutMs,
    });
    const stderr = collectCapped(() => (child as ExecChild).readStderr(), 4096);
    await fillStaging(child, staging, target, options.protect, limits, counts);
    const { exitCode, signal, timedOut } = await child.wait();
    const guestError = firstLine(await stderr);
    if (timedOut || signal) {
      throw new MicrovmError(
        'E_TYPE_PROJECTION',
        `the VM's listing of ${target.guestDir} ${timedOut ? `took longer than ${timeoutMs} ms` : `was ended by ${signal}`}, so the projection at ${target.hostDir} was left as it was; run "MicroVM: Refresh Type Definitions" again`,
      );
    }
    if (exitCode === 3)
      throw new MicrovmError(
        'E_TYPE_PROJECTION',
        `the VM has no ${target.guestDir} to project (${guestError || 'cd failed'}): is the volume mounted there?`,
      );
    if (exitCode === 126 || exitCode === 127) {
      throw new MicrovmError(
        'E_TYPE_PROJECTION',
        `the image cannot list ${target.guestDir} (${guestError || `exit ${exitCode}`}): the type projection needs find and tar in the VM (busybox, or findutils and tar); the projection at ${target.hostDir} was left as it was`,
      );
    }
    // A file removed while find ran (an install going on) makes tar fail: what arrived whole is still projected.
    if (exitCode !== 0 && staging.files === 0) {
      throw new MicrovmError(
        'E_TYPE_PROJECTION',
        `the VM's listing of ${target.guestDir} failed (exit ${exitCode}: ${guestError}) and sent nothing, so the projection at ${target.hostDir} was left as it was`,
      );
    }
    if (exitCode !== 0) counts.skipped[`the guest's find/tar exited with ${exitCode}: ${guestError}`] = 1;
    const marked = staging.write(
      PROJECTION_MARKER,
      `${JSON.stringify(
        {
          projectedBy: 'MicroVM',
          from: target.guestDir,
          files: staging.files,
          bytes: staging.bytes,
          at: new Date().toISOString(),
          note: 'Declarations and package.json fields from the VM, for host TypeScript. Replaced on each refresh; safe to delete.',
        },
        null,
        2,
      )}\n`,
    );
    if (!marked) throw new Error(`the staging tree ${staging.root} already holds ${PROJECTION_MARKER}`);
    staging.install(target.hostDir);
  } catch (err) {
    child?.signal('SIGKILL');
    staging.discard();
    throw err;
  }
  return {
    hostDir: target.hostDir,
    declarations: counts.declarations,
    packageJsons: counts.packageJsons,
    bytes: staging.bytes,
    skipped: counts.skipped,
    ms: Date.now() - started,
  };
}

/** Reads the guest's tar stream into the staging tree, entry by entry, within the caps. */
async function fillStaging(
  child: ExecChild,
  staging: StagingTree,
  target: ProjectionTarget,
  protect: readonly string[],
  limits: TypeLimits,
  counts: { declarations: number; packageJsons: number; skipped: Record<string, number> },
): Promise<void> {
  const skip = (reason: string): void => {
    counts.skipped[reason] = (counts.skipped[reason] ?? 0) + 1;
  };
  const tarLimits = { maxPaxHeaderBytes: 64 * 1024, maxPathBytes: 4096, maxEntries: limits.maxFiles * 4 };
  try {
    for await (const entry of readTar(outputOf(child), tarLimits, { concatenated: true })) {
      const { header } = entry;
      if (header.type !== 'file') {
        skip(`not a regular file (${header.type})`);
        continue;
      }
      const verdict = judgePath(header.path, protect, limits);
      if ('skip' in verdict) {
        skip(verdict.skip);
        continue;
      }
      if (header.size > limits.maxFileBytes) {
        skip(`a file larger than ${limits.maxFileBytes} bytes`);
        continue;
      }
      if (staging.files + 1 > limits.maxFiles || staging.bytes + header.size > limits.maxBytes)
        throw overCap(target, staging, limits);
      const data = await readBody(entry.body(), header.size);
      if (verdict.keep === 'package-json') {
        const rewritten = rewritePackageJson(data, limits);
        if ('skip' in rewritten) {
          skip(`a package.json ${rewritten.skip}`);
          continue;
        }
        if (staging.write(verdict.path, rewritten.text)) counts.packageJsons += 1;
        else skip('a path the stream named twice');
      } else if (staging.write(verdict.path, data)) {
        counts.declarations += 1;
      } else {
        skip('a path the stream named twice');
      }
    }
  } catch (err) {
    if (isMicrovmError(err)) throw err;
    throw new MicrovmError(
      'E_TYPE_PROJECTION',
      `the VM's listing of ${target.guestDir} is not a tar stream the type projection accepts (${(err as Error).message}); the previous projection at ${target.hostDir} stays`,
      { cause: err },
    );
  }
}

function overCap(target: ProjectionTarget, staging: StagingTree, limits: TypeLimits): MicrovmError {
  return new MicrovmError(
    'E_TYPE_PROJECTION_LIMIT',
    `the VM's ${target.guestDir} has more type files than the projection takes (over ${limits.maxFiles} files or ${limits.maxBytes / 1048576} MiB; ` +
      `stopped at ${staging.files} files, ${staging.bytes} bytes), so it was stopped and ${target.hostDir} was left as it was; remove unused packages, or set microvm.typeProjection to false`,
  );
}

async function readBody(body: AsyncGenerator<Buffer>, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  const data = Buffer.concat(chunks);
  return data.length === size ? data : data.subarray(0, size);
}

async function* outputOf(child: ExecChild): AsyncGenerator<Buffer> {
  for (let chunk = await child.readStdout(); chunk.length > 0; chunk = await child.readStdout()) yield chunk;
}

/** Reads a stream to its end, keeping at most `cap` bytes. */
async function collectCapped(read: () => Promise<Buffer>, cap: number): Promise<string> {
  let kept = Buffer.alloc(0);
  for (let chunk = await read(); chunk.length > 0; chunk = await read()) {
    if (kept.length < cap) kept = Buffer.concat([kept, chunk.subarray(0, cap - kept.length)]);
  }
  return kept.toString('utf8');
}

/** The first line of guest text, printable characters only, short enough for one log line. */
function firstLine(text: string): string {
  return (text.split('\n').find((line) => line.trim() !== '') ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

/** When the engine runs as root for another user's folder, what it writes there is that user's. */
function folderOwner(folder: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const { uid, gid } = fs.statSync(folder);
  return uid === 0 ? undefined : { uid, gid };
}
