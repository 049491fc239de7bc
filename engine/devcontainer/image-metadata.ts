import { featureEntry, withDevcontainerId, type MetadataEntry } from '../features/metadata';
import type { ResolvedFeatures } from '../features/resolve';
import { HOOKS, Hook, LifecycleCommand, toLifecycleCommand } from './lifecycle';
import { mergeConfiguration } from './merge';
import { jsonPath, Problem, Problems, quote } from './problems';

/**
 * What image metadata entries (spec digest §3: the base image's `devcontainer.metadata`
 * label, then one entry per feature in install order) add to a workspace plan: hooks that run
 * before devcontainer.json's own, each with its origin; mounts, placed before the file's
 * (a later one at the same target wins); customizations; users and remoteEnv the file leaves
 * unset. Pure.
 */
export interface OriginCommand {
  /** The feature reference, or 'the image' for a label entry without an id. */
  origin: string;
  command: LifecycleCommand;
}

/** Lifecycle commands from the image's `devcontainer.metadata` label, per hook, each with its origin. */
export type MetadataHooks = Partial<Record<Hook, OriginCommand[]>>;

/** Hooks of the entries, in entry order; a malformed one is skipped with a warning. */
export function metadataHooks(entries: readonly MetadataEntry[], problems: Problems): MetadataHooks {
  const hooks: MetadataHooks = {};
  for (const entry of entries) {
    const origin = typeof entry.id === 'string' ? entry.id : 'the image';
    for (const hook of HOOKS) {
      if (entry[hook] === undefined) continue;
      try {
        const command = toLifecycleCommand(entry[hook]);
        if (command) (hooks[hook] ??= []).push({ origin, command });
      } catch (err) {
        problems.add(
          'warning',
          'invalid-command',
          entryPath(origin, hook),
          `${(err as Error).message}, got ${quote(entry[hook])}`,
          `this ${hook} of ${origin} does not run`,
        );
      }
    }
  }
  return hooks;
}

/** Each feature's metadata entry with `${devcontainerId}` resolved (the one variable feature metadata may use). */
export function featureEntries(features: ResolvedFeatures['features'], devcontainerId: string): MetadataEntry[] {
  return features.map((f) => withDevcontainerId(featureEntry(f), devcontainerId));
}

/** The entries' mounts, each with the JSON path a problem about it names. */
export function metadataMounts(entries: readonly MetadataEntry[]): Array<{ value: unknown; at: string }> {
  return entries.flatMap((entry) =>
    (Array.isArray(entry.mounts) ? (entry.mounts as unknown[]) : []).map((value, i) => ({
      value,
      at: `${entryPath(String(entry.id ?? 'the image'), 'mounts')}[${i}]`,
    })),
  );
}

/** Per tool, every entry's customizations in order, devcontainer.json's last (merge.ts's rule). */
export function mergedCustomizations(
  entries: readonly MetadataEntry[],
  own: Record<string, unknown>,
): Record<string, unknown[]> {
  return mergeConfiguration({ customizations: own }, [...entries]).customizations as Record<string, unknown[]>;
}

/** What the entries ask for that a VM does not do; said once per entry. */
export function metadataProblems(entries: readonly MetadataEntry[], problems: Problems): void {
  for (const entry of entries) {
    if (typeof entry.entrypoint === 'string' && entry.entrypoint) {
      problems.add(
        'warning',
        'feature-entrypoint',
        entryPath(String(entry.id ?? 'the image'), 'entrypoint'),
        `${quote(entry.entrypoint)} is an entrypoint`,
        'it does not run: the VM starts no container entrypoint; start what it starts in a postStartCommand',
      );
    }
  }
}

/** Resolution errors (each names its feature) and warnings, as problems of `$.features`. */
export function featureProblems(resolved: ResolvedFeatures): Problem[] {
  const problems = new Problems();
  for (const { feature, error } of resolved.errors) {
    problems.add(
      'error',
      error.code === 'E_FEATURE_ORDER' ? 'feature-order' : 'feature',
      feature ? jsonPath(['features', feature]) : '$.features',
      error.message,
      'the features cannot be installed, so the folder does not open',
    );
  }
  for (const w of resolved.warnings)
    problems.add('warning', 'feature', jsonPath(['features', w.feature]), w.message, w.consequence);
  return problems.list;
}

function entryPath(origin: string, key: string): string {
  return jsonPath(['features', origin, key]);
}

type PlanPart = {
  metadataHooks: MetadataHooks;
  remoteUser?: string;
  containerUser?: string;
  remoteEnv: Record<string, string | null>;
  customizations: Record<string, unknown[]>;
};

/**
 * The plan with the image's own `devcontainer.metadata` entries merged under it, known once
 * the image is: their hooks run first (before the features'), their users and remoteEnv
 * apply where devcontainer.json sets none, their customizations come first. Mounts and
 * containerEnv of the label are not applied: the image already has its environment, and a
 * mount the image asks for could name host paths.
 */
export function withImageMetadata<P extends PlanPart>(
  plan: P,
  entries: readonly MetadataEntry[],
  problems: Problems,
): P {
  if (entries.length === 0) return plan;
  const own = metadataHooks(entries, problems);
  const hooks: MetadataHooks = {};
  for (const hook of HOOKS) {
    const list = [...(own[hook] ?? []), ...(plan.metadataHooks[hook] ?? [])];
    if (list.length > 0) hooks[hook] = list;
  }
  const last = (key: string) =>
    [...entries]
      .reverse()
      .map((e) => e[key])
      .find((v): v is string => typeof v === 'string' && v !== '');
  const remoteUser = plan.remoteUser ?? last('remoteUser');
  const containerUser = plan.containerUser ?? last('containerUser');
  const remoteEnv = Object.assign(
    {},
    ...entries.map((e) => (isStringMap(e.remoteEnv) ? e.remoteEnv : {})),
    plan.remoteEnv,
  ) as Record<string, string | null>;
  const customizations: Record<string, unknown[]> = {};
  for (const [tool, values] of Object.entries(mergedCustomizations(entries, {})))
    customizations[tool] = [...values, ...(plan.customizations[tool] ?? [])];
  for (const [tool, values] of Object.entries(plan.customizations)) customizations[tool] ??= values;
  return {
    ...plan,
    metadataHooks: hooks,
    remoteEnv,
    customizations,
    ...(remoteUser ? { remoteUser } : {}),
    ...(containerUser ? { containerUser } : {}),
  };
}

function isStringMap(value: unknown): value is Record<string, string | null> {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'string' || v === null)
  );
}
