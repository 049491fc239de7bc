import { createHash } from 'node:crypto';
import { DevcontainerConfig, GuestCommand, PortAttributes } from './schema';
import { Settings } from './settings';
import { DEFAULT_PROTECT } from '../../engine/index';

/** A host folder shared into the guest (virtio-fs), as the engine's `mounts` option takes it. */
export interface MountSpec {
  hostPath: string;
  guestPath: string;
  symlinks: Settings['symlinks'];
  readOnly: boolean;
  /** Names the filter view protects at any depth: the engine's defaults plus the user's. */
  protect: string[];
  git: Settings['gitAccess'];
}

/** A per-workspace virtio-blk volume, as the engine's `volumes` option takes it. */
export interface VolumeSpec {
  name: string;
  sizeMib: number;
  mountPoint: string;
}

/** Everything one "Open Folder in MicroVM" needs, decided without side effects. */
export interface SessionPlan {
  ref: string | undefined;
  memoryMib: number;
  vcpus: number;
  network: Settings['network'];
  containerEnv: Record<string, string>;
  remoteEnv: Record<string, string>;
  workspaceFolder: string;
  mounts: MountSpec[];
  volumes: VolumeSpec[];
  /** onCreateCommand then updateContentCommand: run once at bake, kept in the snapshot. */
  bakeCommands: GuestCommand[];
  /** Changes when the bake commands change, so that the snapshot is baked again. */
  warmupTag: string;
  /** postCreateCommand then postStartCommand: run in a terminal after every start. */
  startCommands: GuestCommand[];
  forwardPorts: number[];
  portsAttributes: Record<string, PortAttributes>;
}

export interface WorkspaceFolderInfo {
  name: string;
  fsPath: string;
  /** A Python project: its `.venv` lives on a volume (the shared folder refuses `pyvenv.cfg`). */
  python?: boolean;
}

const VOLUME_SIZE_MIB = 8192;

/**
 * `volumeName` turns a configuration's volume name into this workspace's own disk (see
 * engine/workspace/record.ts): a configuration can never name another workspace's volume.
 */
export function planSession(settings: Settings, config: DevcontainerConfig | undefined, folder: WorkspaceFolderInfo,
  volumeName: (name: string) => string): SessionPlan {
  const workspaceFolder = config?.workspaceFolder ?? `/workspaces/${guestName(folder.name)}`;
  const bakeCommands = [...(config?.onCreateCommand ?? []), ...(config?.updateContentCommand ?? [])];
  return {
    ref: config?.image ?? (settings.image || undefined),
    memoryMib: Math.max(settings.memoryMib, config?.hostRequirements?.memory ?? 0),
    vcpus: Math.max(settings.cpus, config?.hostRequirements?.cpus ?? 0),
    network: settings.network,
    containerEnv: config?.containerEnv ?? {},
    remoteEnv: config?.remoteEnv ?? {},
    workspaceFolder,
    mounts: [{
      hostPath: folder.fsPath, guestPath: workspaceFolder, symlinks: settings.symlinks, readOnly: false,
      protect: [...new Set([...DEFAULT_PROTECT, ...settings.protectedNames])], git: settings.gitAccess,
    }],
    volumes: [
      { name: volumeName('node_modules'), sizeMib: VOLUME_SIZE_MIB, mountPoint: `${workspaceFolder}/node_modules` },
      ...(folder.python ? [{ name: volumeName('venv'), sizeMib: VOLUME_SIZE_MIB, mountPoint: `${workspaceFolder}/.venv` }] : []),
      ...(config?.mounts ?? []).map((m) => ({ name: volumeName(m.name), sizeMib: VOLUME_SIZE_MIB, mountPoint: m.target })),
    ],
    bakeCommands,
    warmupTag: bakeCommands.length === 0 ? '' : createHash('sha256').update(JSON.stringify([workspaceFolder, bakeCommands])).digest('hex').slice(0, 16),
    startCommands: [...(config?.postCreateCommand ?? []), ...(config?.postStartCommand ?? [])],
    forwardPorts: [...new Set(config?.forwardPorts ?? [])],
    portsAttributes: config?.portsAttributes ?? {},
  };
}

const PYTHON_MARKERS = ['pyproject.toml', 'requirements.txt', 'setup.py', 'setup.cfg', 'Pipfile', 'poetry.lock', 'uv.lock'];

/** Whether the folder holds a Python project (by the files at its root). */
export function isPythonProject(entries: string[]): boolean {
  return entries.some((name) => PYTHON_MARKERS.includes(name));
}

/** A folder name that is safe as one guest path component. */
function guestName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return safe || 'workspace';
}

/** A shell script that runs the commands in order and stops at the first failure. */
export function commandsScript(commands: GuestCommand[]): string {
  const lines = commands.map((c) => {
    const shown = c.label ? `${c.label}: ${c.argv.join(' ')}` : c.argv.join(' ');
    return `printf '\\033[2m> %s\\033[0m\\n' ${shellQuote(shown)} && ${c.argv.map(shellQuote).join(' ')}`;
  });
  return ['set -e', ...lines].join('\n');
}

export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_\/.:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
