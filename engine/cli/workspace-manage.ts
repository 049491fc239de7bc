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

interface ListedWorkspace {
  folder: string;
  id: string;
  state: string;
  pid?: number;
  vmId?: string;
  forwards: Array<{ guestPort: number; hostPort: number }>;
  processes: number;
}

/** `microvm ls [--json]`: every workspace record, with its VM's state from its supervisor. */
export async function lsCommand(args: string[]): Promise<number> {
  const json = args.includes('--json');
  const unknown = args.find((a) => a !== '--json');
  if (unknown) throw new MicrovmError('E_BAD_OPTION', `microvm ls: unknown option ${JSON.stringify(unknown)}; see \`microvm --help\``);
  const listed = await Promise.all(records().map(listed1));
  if (json) {
    process.stdout.write(`${JSON.stringify(listed, null, 2)}\n`);
    return 0;
  }
  const rows = [['FOLDER', 'ID', 'STATE', 'PID', 'FORWARDS'], ...listed.map((w) => [
    w.folder, w.id, w.state, w.pid ? String(w.pid) : '-', w.forwards.map((f) => `${f.hostPort}->${f.guestPort}`).join(',') || '-',
  ])];
  process.stdout.write(formatTable(rows));
  return 0;
}

/** The records under $MICROVM_HOME/workspaces (folder and id only; a damaged one is skipped with a note). */
function records(): Array<{ folder: string; id: string; suspended: boolean }> {
  const dir = homePaths.workspaces();
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort() : [];
  const found: Array<{ folder: string; id: string; suspended: boolean }> = [];
  for (const name of names) {
    try {
      const record = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as { folder?: unknown; id?: unknown; suspended?: unknown };
      if (typeof record.folder === 'string' && typeof record.id === 'string' && /^[0-9a-f]{16}$/.test(record.id)) {
        found.push({ folder: record.folder, id: record.id, suspended: record.suspended !== undefined && record.suspended !== null });
      }
      else throw new Error('no folder or id');
    } catch (err) {
      process.stderr.write(`microvm: skipping the damaged workspace record ${path.join(dir, name)}: ${(err as Error).message}\n`);
    }
  }
  return found;
}

async function listed1(record: { folder: string; id: string; suspended: boolean }): Promise<ListedWorkspace> {
  const status = await statusOf(record.id);
  return {
    folder: record.folder, id: record.id, state: status?.state === 'running' ? 'running' : status ? status.state : record.suspended ? 'suspended' : 'stopped',
    ...(status ? { pid: status.pid } : {}), ...(status?.vmId ? { vmId: status.vmId } : {}),
    forwards: status?.forwards ?? [], processes: status?.processes.length ?? 0,
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
        throw new MicrovmError('E_WORKSPACE_RUNNING', `the workspace VM of ${flags.folder} is running (supervisor pid ${client.hello.pid}), and removing it would take its disks away; `
          + 'stop it with `microvm down` first, or pass --force to stop and remove it');
      }
      await client.down();
    } finally {
      client.close();
    }
    await waitGone(supervisorFiles(record.id).socket);
  }
  const volumes = fs.existsSync(homePaths.volumes()) ? fs.readdirSync(homePaths.volumes()) : [];
  const own = volumes.filter((n) => n.endsWith('.ext4')).map((n) => n.slice(0, -'.ext4'.length))
    .filter((name) => name.startsWith(`ws-${record.id}-`) || name === `wsroot-${record.id}`);
  for (const name of own) await removeVolume(name);
  // A suspended VM's memory (on tmpfs) goes with the disks it belongs to.
  await new WarmSnapshots(flags.folder).discard();
  const files = supervisorFiles(record.id);
  // The compose services' logs (`<record>.service-<name>.log` and their rotated halves) go with the record.
  const serviceLogs = fs.readdirSync(path.dirname(file)).filter((n) => n.startsWith(`${path.basename(file, '.json')}.service-`)).map((n) => path.join(path.dirname(file), n));
  for (const leftover of [files.log, `${files.log}.1`, ...serviceLogs, file]) fs.rmSync(leftover, { force: true });
  process.stderr.write(`microvm: removed the workspace ${record.id} of ${flags.folder}${own.length > 0 ? ` and its disks ${own.join(', ')}` : ''}\n`);
  return 0;
}

/** Waits (up to 30 s) for a stopped supervisor to remove its socket, so the next command sees it gone. */
async function waitGone(socket: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (fs.existsSync(socket) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
}
