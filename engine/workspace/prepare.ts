import * as fs from 'node:fs';
import * as path from 'node:path';
import { throwIfAborted } from '../abort';
import { ConfigChange } from '../devcontainer/changes';
import { ConfigFile, readConfigFile } from '../devcontainer/locate';
import { PlanSettings, planWorkspace, WorkspacePlan } from '../devcontainer/plan';
import { resolveFeatures, type ResolvedFeatures } from '../features/resolve';
import type { RegistryMirrors } from '../image/registry/mirrors';
import { Problem } from '../devcontainer/problems';
import { resolveConfig, ResolvedConfig } from '../devcontainer/resolve';
import { detectLanguages } from '../devcontainer/language';
import { pinDecision, pinned } from './config-pin';
import { containerInputs } from './container';
import type { Hook } from '../devcontainer/lifecycle';
import type { LifecycleState } from './lifecycle';
import { clampToLimits, hostLimits, OverLimit, overLimits } from './limits';
import {
  containerRootVolume,
  openWorkspace,
  saveWorkspace,
  withContainer,
  withImage,
  WorkspaceRecord,
  workspaceVolume,
} from './record';
import { removeVolume } from '../mount/volumes';
import { egressLogFile } from './egress-log';
import { digestOf, lockfileStamps, newContentNote } from './lockfiles';
import { loadCompose, type LoadedCompose } from '../compose/load';

const PREPARE_STEP = 'preparing the workspace';

/** What prepareWorkspace needs: the folder, the user's settings and limits. */
export interface PrepareOptions {
  folder: string;
  settings: PlanSettings;
  /** Host variables `${localEnv:NAME}` may pass into the VM. */
  allowLocalEnv: readonly string[];
  /** The configuration the user chose (an absolute path; see chosenConfigFile), instead of the spec's first. */
  configFile?: string;
  limits?: { maxMemoryMib?: number; maxCpus?: number };
  /** The configuration changed since the last open in ways that take more from the host: apply it, use the previous one, or stop. */
  onConfigChanged(file: string, changes: ConfigChange[]): Promise<'apply' | 'previous' | 'cancel'>;
  /** The workspace asks for more than this host allows: true to open with the allowed amounts. */
  onOverLimits(over: OverLimit[]): Promise<boolean>;
  /** Steps that may take a while (fetching features' metadata from their registries). */
  onProgress?(step: string): void;
  /** Registry host -> mirror URLs for features (default: MICROVM_REGISTRY_MIRRORS). */
  registryMirrors?: RegistryMirrors;
  /** Checked between the steps: an abort stops the preparation with E_ABORTED. */
  signal?: AbortSignal;
}

/** A workspace ready to start: its record, resolved configuration, plan and problems. */
export interface PreparedWorkspace {
  record: WorkspaceRecord;
  resolved: ResolvedConfig;
  /** Volumes named inside this workspace, resources within the host's limits. */
  plan: WorkspacePlan;
  /** Every problem of the configuration and the plan; an error means the folder cannot open as described. */
  problems: Problem[];
  lifecycle: LifecycleState;
}

/**
 * Everything before a workspace VM starts, without any UI: the configuration read on the
 * host and pinned (a change that takes more from the host is put to `onConfigChanged`), the
 * plan, volumes namespaced by the workspace, resources within the host's limits (more is put
 * to `onOverLimits`), and the container's lifecycle state. Undefined when the user said no.
 */
export async function prepareWorkspace(options: PrepareOptions): Promise<PreparedWorkspace | undefined> {
  const record = openWorkspace(options.folder);
  const resolved = await acceptedConfig(record, options);
  if (!resolved) return undefined;
  throwIfAborted(options.signal, PREPARE_STEP);
  const features = await featuresOf(resolved, options);
  throwIfAborted(options.signal, PREPARE_STEP);
  const planned = planWorkspace(
    resolved,
    options.settings,
    { languages: detectLanguages(resolved.folder) },
    features,
    composeOf(resolved, options),
  );
  const volumes = planned.volumes.map((v) => ({ ...v, name: workspaceVolume(record, v.name) }));
  const request = { memoryMib: planned.memoryMib, cpus: planned.vcpus, volumes };
  const limits = hostLimits(options.limits);
  const over = overLimits(request, limits);
  if (over.length > 0 && !(await options.onOverLimits(over))) return undefined;
  throwIfAborted(options.signal, PREPARE_STEP);
  const allowed = over.length > 0 ? clampToLimits(request, limits) : request;
  const approved = planned.network === 'allowlist' ? (record.egress?.allow ?? []) : [];
  const plan = {
    ...planned,
    memoryMib: allowed.memoryMib,
    vcpus: allowed.cpus,
    volumes: allowed.volumes,
    allow: [...new Set([...planned.allow, ...approved])].sort(),
    egressLog: egressLogFile(options.folder),
    hostFolder: options.folder,
  };
  return {
    record,
    resolved,
    plan,
    problems: plan.problems,
    lifecycle: await lifecycleState(record, plan, resolved.file?.file),
  };
}

/**
 * The configuration's features resolved on the host (references, options, order; no VM):
 * their problems join the configuration's, their hooks and mounts the plan.
 */
async function featuresOf(resolved: ResolvedConfig, options: PrepareOptions): Promise<ResolvedFeatures | undefined> {
  const { config, configPath, folder } = resolved;
  if (Object.keys(config.features).length === 0 || !configPath) return undefined;
  return resolveFeatures({
    features: config.features,
    overrideFeatureInstallOrder: config.overrideFeatureInstallOrder,
    folder,
    configDir: fs.realpathSync(path.dirname(configPath)),
    ...(options.registryMirrors ? { mirrors: options.registryMirrors } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** The configuration's compose project read on the host (files inside the folder only; no VM). */
export function composeOf(
  resolved: ResolvedConfig,
  options: { allowLocalEnv: readonly string[]; env?: NodeJS.ProcessEnv },
): LoadedCompose | undefined {
  const { config, configPath, folder } = resolved;
  if (!config.compose || !configPath) return undefined;
  return loadCompose({
    folder,
    configDir: fs.realpathSync(path.dirname(configPath)),
    files: config.compose.files,
    service: config.compose.service,
    ...(config.compose.runServices ? { runServices: config.compose.runServices } : {}),
    env: options.env ?? process.env,
    allowLocalEnv: options.allowLocalEnv,
  });
}

async function acceptedConfig(record: WorkspaceRecord, options: PrepareOptions): Promise<ResolvedConfig | undefined> {
  const file = readConfigFile(options.folder, options.configFile);
  const resolve = (f: ConfigFile | undefined) =>
    resolveConfig({ folder: options.folder, file: f ?? null, allowLocalEnv: options.allowLocalEnv });
  const resolved = resolve(file);
  if (!file || !resolved.raw) return resolved;
  const decision = pinDecision(record, file, resolved.raw);
  if (decision.kind === 'use') {
    if (decision.reason !== 'unchanged') await saveWorkspace(pinned(record, file, resolved.raw));
    return resolved;
  }
  const choice = await options.onConfigChanged(file.file, decision.changes);
  if (choice === 'apply') {
    await saveWorkspace(pinned(record, file, resolved.raw));
    return resolved;
  }
  if (choice === 'previous' && record.config) {
    const { file: name, digest, accepted } = record.config;
    return resolve({ file: name, digest, text: JSON.stringify(accepted) });
  }
  return undefined;
}

/**
 * The workspace's container for this plan (a new one when what makes it changed), and the
 * record of its once-only hooks: each is written down when it succeeds.
 */
async function lifecycleState(
  record: WorkspaceRecord,
  plan: WorkspacePlan,
  configFile: string | undefined,
): Promise<LifecycleState> {
  const latest = openWorkspace(record.folder);
  let current = withContainer(latest, containerInputs(plan), configFile);
  if (current !== latest) await saveWorkspace(current);
  // New content (a lockfile changed since updateContentCommand last succeeded): it runs again, alone of the once-only hooks.
  const stamps = lockfileStamps(record.folder);
  const content = digestOf(stamps);
  const newContent = (c: WorkspaceRecord['container']) =>
    c?.contentDigest !== undefined && c.contentDigest !== content && c.hooksDone.includes('updateContentCommand');
  const doneOf = (c: WorkspaceRecord['container']) =>
    (c?.hooksDone ?? []).filter((h) => h !== 'updateContentCommand' || !newContent(c)) as Hook[];
  const state: LifecycleState = {
    done: doneOf(current.container),
    ...(newContent(current.container) ? { notes: [newContentNote(current.container?.contentFiles, stamps)] } : {}),
    markDone: async (hook) => {
      // The record as it is now (other writers: approvals, a suspended state), with this hook done.
      const fresh = openWorkspace(record.folder);
      const container = (fresh.container ?? current.container) as NonNullable<WorkspaceRecord['container']>;
      current = {
        ...fresh,
        container: {
          ...container,
          hooksDone: [...new Set([...container.hooksDone, hook])],
          ...(hook === 'updateContentCommand' ? { contentDigest: content, contentFiles: stamps } : {}),
        },
      };
      await saveWorkspace(current);
    },
    useImage: async (digest) => {
      const next = withImage(current, digest);
      const rootVolume = containerRootVolume(current);
      // A new container starts from the image alone: what the old one changed goes.
      if (next.fresh) await removeVolume(rootVolume);
      if (next.record !== current) {
        current = next.record;
        await saveWorkspace(current);
        state.done = doneOf(current.container);
      }
      return { rootVolume, fresh: next.fresh };
    },
  };
  return state;
}
