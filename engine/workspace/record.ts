import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { MicrovmError } from '../errors';
import { homePaths } from '../paths';
import { tempPath, writeFileAtomic } from '../temp-files';

/**
 * A workspace is a host folder the user opens in a VM. Its record, under
 * $MICROVM_HOME/workspaces/, holds what must outlive one open: a random id (the namespace of
 * its volumes, so that no configuration can name another workspace's disk) and the
 * configuration the user accepted last (to tell them what changed before it takes effect).
 */
const recordSchema = z
  .object({
    version: z.literal(1),
    folder: z.string(),
    id: z.string().regex(/^[0-9a-f]{16}$/),
    createdAt: z.string(),
    config: z
      .object({
        file: z.string(),
        digest: z.string(),
        /** The parsed configuration (JSON) as the user last accepted it. */
        accepted: z.record(z.unknown()),
      })
      .optional(),
    /**
     * The workspace's container: what it was made from (a digest of the image and the settings
     * that shape it) and which of its once-only hooks (onCreate, updateContent, postCreate) ran.
     */
    container: z
      .object({
        inputs: z.string(),
        createdAt: z.string(),
        hooksDone: z.array(z.string()),
        /** The digest of the image it was made from, once a VM of it booted (a rebuilt image makes a new container). */
        image: z.string().optional(),
        /** The folder's lockfiles (lockfiles.ts) when updateContentCommand last succeeded: it runs again when they change. */
        contentDigest: z.string().optional(),
        /** Each lockfile's stamp (lockfiles.ts) then, by name: the log names the ones that changed. */
        contentFiles: z.record(z.string()).optional(),
        /**
         * The configuration it was made from (relative to the folder): another one makes a new
         * container. Absent in records older than the choice of configuration.
         */
        configFile: z.string().optional(),
      })
      .optional(),
    /** Host names the user approved for network 'allowlist' (from a learn run: `microvm net-policy --write`). */
    egress: z.object({ allow: z.array(z.string()), approvedAt: z.string() }).optional(),
    /**
     * The workspace VM suspended when it last stopped (warm-snapshot.ts): the key of the inputs
     * it was made from and the writable disks as it left them; resumed once, only if all match.
     */
    suspended: z
      .object({
        key: z.string(),
        savedAt: z.string(),
        disks: z.array(z.object({ file: z.string(), size: z.number(), mtimeMs: z.number() })),
      })
      .optional(),
    /** The editor extensions the configuration recommended when the user was last told (shown once per list). */
    recommended: z.array(z.string()).optional(),
  })
  .passthrough();

/** What the engine keeps about a workspace between opens: its id, pinned configuration, volumes, container, approvals. */
export type WorkspaceRecord = z.output<typeof recordSchema>;

/** The record's file: by the folder's real path, so two names for one folder share it. */
export function recordFile(folder: string): string {
  const real = fs.realpathSync(folder);
  return path.join(homePaths.workspaces(), `${createHash('sha256').update(real).digest('hex').slice(0, 24)}.json`);
}

/**
 * The folder's record, created on first use. Creation is exclusive (link into place), so
 * two windows opening a new folder at once end up with one id.
 */
export function openWorkspace(folder: string): WorkspaceRecord {
  const file = recordFile(folder);
  const existing = readRecord(file);
  if (existing) return existing;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const record: WorkspaceRecord = {
    version: 1,
    folder: fs.realpathSync(folder),
    id: randomBytes(8).toString('hex'),
    createdAt: new Date().toISOString(),
  };
  const temp = tempPath(path.dirname(file), '.json');
  fs.writeFileSync(temp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  try {
    fs.linkSync(temp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(temp, { force: true });
  }
  return readRecord(file) as WorkspaceRecord;
}

export async function saveWorkspace(record: WorkspaceRecord): Promise<void> {
  const file = recordFile(record.folder);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, `${JSON.stringify(record, null, 2)}\n`, 0o600);
}

function readRecord(file: string): WorkspaceRecord | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const result = recordSchema.safeParse(parsed);
  if (!result.success) {
    throw new MicrovmError(
      'E_WORKSPACE_RECORD',
      `the workspace record ${file} is damaged (${result.error.issues[0]?.message ?? 'not JSON'}); delete it to start the workspace afresh (its volumes will not be reused)`,
    );
  }
  return result.data;
}

/**
 * The volume a configuration calls `name`, as this workspace's own disk: `ws-<id>-<name>`.
 * A name that would not fit the engine's 64-character limit is shortened with a hash.
 */
export function workspaceVolume(record: WorkspaceRecord, name: string): string {
  const full = `ws-${record.id}-${name}`;
  if (full.length <= 64) return full;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `ws-${record.id}-${name.slice(0, 64 - 29)}-${hash}`;
}

/**
 * The record with a container for `inputs` made from `configFile` (the configuration used,
 * relative to the folder): the same one when both match, else a new one (its once-only hooks
 * to run again), as recreating a container does. A container recorded before the choice of
 * configuration existed has no configFile: it is taken as made from this one, and says so from now on.
 */
export function withContainer(record: WorkspaceRecord, inputs: string, configFile?: string): WorkspaceRecord {
  const container = record.container;
  const file = configFile === undefined ? {} : { configFile };
  if (container?.inputs === inputs && (container.configFile ?? configFile) === configFile)
    return container.configFile === configFile ? record : { ...record, container: { ...container, ...file } };
  return { ...record, container: { inputs, createdAt: new Date().toISOString(), hooksDone: [], ...file } };
}

/**
 * The record with its container made from the image `digest`: the same container when it was
 * made from that image (or has not booted yet), else a new one, as rebuilding a dev
 * container's image recreates it. `fresh`: the container's disk must start empty.
 */
export function withImage(record: WorkspaceRecord, digest: string): { record: WorkspaceRecord; fresh: boolean } {
  const container = record.container ?? { inputs: '', createdAt: new Date().toISOString(), hooksDone: [] };
  if (container.image === digest) return { record, fresh: false };
  const fresh =
    container.image === undefined && container.hooksDone.length === 0
      ? { ...container, image: digest }
      : {
          inputs: container.inputs,
          createdAt: new Date().toISOString(),
          hooksDone: [],
          image: digest,
          ...(container.configFile === undefined ? {} : { configFile: container.configFile }),
        };
  return { record: { ...record, container: fresh }, fresh: true };
}

/**
 * The volume that keeps the workspace container's root changes (what hooks install outside
 * the folder and the volumes). Its prefix is not `ws-`, so no volume a configuration names
 * can be it.
 */
export function containerRootVolume(record: WorkspaceRecord): string {
  return `wsroot-${record.id}`;
}

/**
 * Starts the folder's container afresh at its next open (its once-only hooks run again, its
 * root changes go), as rebuilding a dev container does. The folder's volumes stay.
 */
export async function resetContainer(folder: string): Promise<void> {
  const record = openWorkspace(folder);
  if (!record.container) return;
  await saveWorkspace({ ...record, container: undefined });
}

/** Adds one approved name (an "Always" answer) to those the folder has. */
export async function approveEgressName(folder: string, name: string): Promise<WorkspaceRecord> {
  return approveEgress(folder, [...(openWorkspace(folder).egress?.allow ?? []), name]);
}

/** Approves these host names for the folder's network 'allowlist' (they join the settings' and the presets'). */
export async function approveEgress(folder: string, names: readonly string[]): Promise<WorkspaceRecord> {
  const record = {
    ...openWorkspace(folder),
    egress: { allow: [...new Set(names)].sort(), approvedAt: new Date().toISOString() },
  };
  await saveWorkspace(record);
  return record;
}
