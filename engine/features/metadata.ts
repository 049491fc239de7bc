import type { ResolvedFeature } from './types';

/**
 * Image metadata (spec digest §3): the entries a feature contributes to the
 * `devcontainer.metadata` label and to the merged configuration, and the label read back
 * from an image. Entries are plain JSON objects, merged by engine/devcontainer/merge.ts's rules.
 */
export type MetadataEntry = Record<string, unknown>;

/** The image label that carries devcontainer metadata (the features' and the image's own). */
export const METADATA_LABEL = 'devcontainer.metadata';

/** The reference CLI's pickFeatureProperties: containerEnv is not among them (it is baked into the image as ENV). */
const FEATURE_PROPERTIES = [
  'onCreateCommand',
  'updateContentCommand',
  'postCreateCommand',
  'postStartCommand',
  'postAttachCommand',
  'init',
  'privileged',
  'capAdd',
  'securityOpt',
  'entrypoint',
  'mounts',
  'customizations',
] as const;

/** A feature's entry: its reference as `id`, then the properties it sets. */
export function featureEntry(feature: ResolvedFeature): MetadataEntry {
  const entry: MetadataEntry = { id: feature.userId };
  for (const key of FEATURE_PROPERTIES) if (feature.json[key] !== undefined) entry[key] = feature.json[key];
  return entry;
}

/** The label's entries: an array, or one object (wrapped); anything else counts as none, as in the reference CLI. */
export function labelEntries(labels: Readonly<Record<string, string>> | undefined): MetadataEntry[] {
  const text = labels?.[METADATA_LABEL];
  if (!text) return [];
  try {
    const value: unknown = JSON.parse(text);
    const list = Array.isArray(value) ? value : [value];
    return list.filter((e): e is MetadataEntry => e !== null && typeof e === 'object' && !Array.isArray(e));
  } catch {
    return [];
  }
}

/** `${devcontainerId}`, the one variable feature metadata may use (in mounts, entrypoint and customizations). */
export function withDevcontainerId<T>(value: T, id: string): T {
  return JSON.parse(JSON.stringify(value).replaceAll('${devcontainerId}', id)) as T;
}
