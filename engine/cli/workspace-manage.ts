import { WarmSnapshots } from '../workspace/warm-snapshot';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MicrovmError } from '../errors';
import { homePaths } from '../paths';
import { removeVolume } from '../mount/volumes';
import { SupervisorClient } from '../supervisor/client';
import { supervisorFiles } from '../supervisor/paths';
import type { StatusResult } from '../supervisor/protocol';
import { openWorkspace, recordFile } from '../workspace/record';
import { formatTable } from './table';
import { parseWorkspaceFlags } from './workspace-args';

/** `microvm down --workspace-folder DIR`: stops the workspace VM and its supervisor (nothing to do when none runs). */
export async function downCommand(args: string[]): Promise<number> {
  const flags = parseWorkspaceFlags(args, 'down', {});
  const client = await SupervisorClient.connect(flags.folder, { kind: 'cli', start: false });
  if (!client) {
    process.stderr.write(`microvm: the workspace VM of ${flags.folder} is not running\n`);
    return 0;
  }
  try {
    await client.down();
  } finally {
    client.close();
  }
  await waitGone(supervisorFiles(client.hello.workspaceId).socket);
  return 0;
}

/** What `ls --json` prints of a workspace: its record (what outlives an open) and its VM's state. */
interface ListedWorkspace extends RecordSummary {
  state: string;
  pid?: number;
  vmId?: string;
  forwards: Array<{ guestPort: number; hostPort: number }>;
  processes: number;
  /** This workspace's disks under $MICROVM_HOME/volumes (its volumes, `wsroot-<id>` its container's). */
  volumes: string[];
}

/** The parts of a workspace record `ls` shows, read leniently (a damaged record is skipped, not fatal). */
interface RecordSummary {
  folder: string;
  id: string;
  /** Digest of the configuration the user last accepted. */
  configDigest?: string;
  /** The container: a digest of what made it, the image's digest, its once-only hooks that ran, the lockfiles' digest at the last updateContentCommand. */
  container?: { inputs: string; image?: string; createdAt: string; hooksDone: string[]; contentDigest?: string };
  /** When the VM was last suspended for a warm reopen, while that state waits to be resumed. */
  suspendedAt?: string;
}

/** `microvm ls [--json]`: every workspace record, with its VM's state from its supervisor. */
export async function lsCommand(args: string[]): Promise<number> {
  const json = args.includes('--json');
  const unknown = args.find((a) => a !== '--json');
  if (unknown)
    throw new MicrovmError(
      'E_BAD_OPTION',
      `microvm ls: unknown option ${JSON.stringify(unknown)}; see \`microvm --help\``,
    );
  const listed = await Promise.all(records().map(listed1));
  if (json) {
    process.stdout.write(`${JSON.stringify(listed, null, 2)}\n`);
    return 0;
  }
  const rows = [
    ['FOLDER', 'ID', 'STATE', 'PID', 'FORWARDS'],
    ...listed.map((w) => [
      w.folder,
      w.id,
      w.state,
      w.pid ? String(w.pid) : '-',
      w.forwards.map((f) => `${f.hostPort}->${f.guestPort}`).join(',') || '-',
    ]),
  ];
  process.stdout.write(formatTable(rows));
  return 0;
}

/** The records under $MICROVM_HOME/workspaces (a damaged one is skipped with a note). */
function records(): RecordSummary[] {
  const dir = homePaths.workspaces();
  const names = fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((n) => n.endsWith('.json'))
        .sort()
    : [];
  const found: RecordSummary[] = [];
  for (const name of names) {
    try {
      found.push(summary(JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as RawRecord));
    } catch (err) {
      process.stderr.write(
        `microvm: skipping the damaged workspace record ${path.join(dir, name)}: ${(err as Error).message}\n`,
      );
    }
  }
  return found;
}

type RawRecord = {
  folder?: unknown;
  id?: unknown;
  config?: { digest?: unknown };
  container?: Record<string, unknown>;
  suspended?: { savedAt?: unknown } | null;
};

const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

function summary(record: RawRecord): RecordSummary {
  if (typeof record.folder !== 'string' || typeof record.id !== 'string' || !/^[0-9a-f]{16}$/.test(record.id))
    throw new Error('no folder or id');
  const c = record.container;
  const inputs = text(c?.inputs);
  const configDigest = text(record.config?.digest);
  const suspendedAt = record.suspended ? (text(record.suspended.savedAt) ?? 'unknown') : undefined;
  return {
    folder: record.folder,
    id: record.id,
    ...(configDigest ? { configDigest } : {}),
    ...(c && inputs
      ? {
          container: {
            inputs,
            createdAt: text(c.createdAt) ?? 'unknown',
            hooksDone: Array.isArray(c.hooksDone) ? c.hooksDone.filter((h): h is string => typeof h === 'string') : [],
            ...(text(c.image) ? { image: text(c.image) } : {}),
            ...(text(c.contentDigest) ? { contentDigest: text(c.contentDigest) } : {}),
          },
        }
      : {}),
    ...(suspendedAt ? { suspendedAt } : {}),
  };
}

/** The workspace's disks by name (ws-<id>-NAME for its volumes, wsroot-<id> for its container's root). */
function diskNames(id: string): string[] {
  const volumes = fs.existsSync(homePaths.volumes()) ? fs.readdirSync(homePaths.volumes()) : [];
  return volumes
    .filter((n) => n.endsWith('.ext4'))
    .map((n) => n.slice(0, -'.ext4'.length))
    .filter((name) => name.startsWith(`ws-${id}-`) || name === `wsroot-${id}`)
    .sort();
}

async function listed1(record: RecordSummary): Promise<ListedWorkspace> {
  const status = await statusOf(record.id);
  return {
    folder: record.folder,
    id: record.id,
    state:
      status?.state === 'running' ? 'running' : status ? status.state : record.suspendedAt ? 'suspended' : 'stopped',
    ...(status ? { pid: status.pid } : {}),
    ...(status?.vmId ? { vmId: status.vmId } : {}),
    forwards: status?.forwards ?? [],
    processes: status?.processes.length ?? 0,
    ...(record.configDigest ? { configDigest: record.configDigest } : {}),
    ...(record.container ? { container: record.container } : {}),
    volumes: diskNames(record.id),
    ...(record.suspendedAt ? { suspendedAt: record.suspendedAt } : {}),
  };
}

async function statusOf(workspaceId: string): Promise<StatusResult | undefined> {
  const client = await SupervisorClient.existing(workspaceId, 'cli').catch(() => undefined);
  if (!client) return undefined;
  try {
    return await client.status();
  } finally {
    client.close();
  }
}

/**
 * `microvm rm --workspace-folder DIR [--force]`: forgets the workspace: its record, its
 * volumes (ws-<id>-*), its container disk (wsroot-<id>) and its supervisor's log. A running
 * one is refused unless --force, which stops it first.
 */
export async function rmCommand(args: string[]): Promise<number> {
  const flags = parseWorkspaceFlags(args, 'rm', { force: true });
  const file = recordFile(flags.folder);
  if (!fs.existsSync(file)) {
    process.stderr.write(`microvm: ${flags.folder} has no workspace record: nothing to remove\n`);
    return 0;
  }
  const record = openWorkspace(flags.folder);
  const client = await SupervisorClient.connect(flags.folder, { kind: 'cli', start: false });
  if (client) {
    try {
      if (!flags.force) {
        throw new MicrovmError(
          'E_WORKSPACE_RUNNING',
          `the workspace VM of ${flags.folder} is running (supervisor pid ${client.hello.pid}), and removing it would take its disks away; ` +
            'stop it with `microvm down` first, or pass --force to stop and remove it',
        );
      }
      await client.down();
    } finally {
      client.close();
    }
    await waitGone(supervisorFiles(record.id).socket);
  }
  const own = diskNames(record.id);
  for (const name of own) await removeVolume(name);
  // A suspended VM's memory (on tmpfs) goes with the disks it belongs to.
  await new WarmSnapshots(flags.folder).discard();
  const files = supervisorFiles(record.id);
  // The compose services' logs (`<record>.service-<name>.log` and their rotated halves) go with the record.
  const serviceLogs = fs
    .readdirSync(path.dirname(file))
    .filter((n) => n.startsWith(`${path.basename(file, '.json')}.service-`))
    .map((n) => path.join(path.dirname(file), n));
  for (const leftover of [files.log, `${files.log}.1`, ...serviceLogs, file]) fs.rmSync(leftover, { force: true });
  process.stderr.write(
    `microvm: removed the workspace ${record.id} of ${flags.folder}${own.length > 0 ? ` and its disks ${own.join(', ')}` : ''}\n`,
  );
  return 0;
}

/** Waits (up to 30 s) for a stopped supervisor to remove its socket, so the next command sees it gone. */
async function waitGone(socket: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (fs.existsSync(socket) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
}
