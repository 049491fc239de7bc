import { MicrovmError, shown } from '../errors';
import { firstIssue } from '../options';
import { ContentStore } from '../image/content-store';
import type { RegistryMirrors } from '../image/registry/mirrors';
import { featureJsonText, layerFiles, localFiles } from './files';
import { fetchFeature, fetchLayer } from './fetch';
import { optionValues } from './options';
import { installOrder, type OrderNode } from './order';
import { ociRef, parseFeatureRef, softKey, type FeatureRef, type RefContext } from './reference';
import {
  featureJsonSchema,
  type FeatureJson,
  type FeatureSource,
  type FeatureWarning,
  type ResolvedFeature,
} from './types';

/** What resolveFeatures needs: the features as written, their order, and where to fetch them. */
export interface ResolveFeaturesOptions extends RefContext {
  /** devcontainer.json's `features`: reference -> options (an object, a version string, or true). */
  features: Record<string, unknown>;
  overrideFeatureInstallOrder?: readonly string[];
  store?: ContentStore;
  mirrors?: RegistryMirrors;
  /** A line for each feature fetched. */
  onProgress?: (message: string) => void;
  /** Aborting stops the registry request under way (E_ABORTED). */
  signal?: AbortSignal;
}

/**
 * The features in install order, or every error found (each names its feature, '' for the
 * order as a whole; no feature is installed then).
 */
export interface ResolvedFeatures {
  features: ResolvedFeature[];
  warnings: FeatureWarning[];
  errors: Array<{ feature: string; error: MicrovmError }>;
}

type Node = OrderNode & { feature: ResolvedFeature };

/**
 * Resolves a configuration's features on the host, before any VM: each reference to its
 * source and devcontainer-feature.json (the OCI annotation when present, else the layer; a
 * local folder's file), its options, its dependsOn (recursively, with their options), then
 * the install order. Nothing is installed here: see buildFeaturesImage.
 */
export async function resolveFeatures(opts: ResolveFeaturesOptions): Promise<ResolvedFeatures> {
  const store = opts.store ?? new ContentStore();
  const nodes = new Map<string, Node>();
  const warnings: FeatureWarning[] = [];
  const errors: ResolvedFeatures['errors'] = [];
  const loaded = new Map<string, Promise<Loaded>>();
  const visit = async (userId: string, value: unknown): Promise<string> => {
    const { ref, implied } = parseFeatureRef(userId, opts);
    const cacheKey = ref.kind === 'oci' ? ref.ref.canonical : ref.dir;
    if (!loaded.has(cacheKey)) loaded.set(cacheKey, load(ref, store, opts, warnings));
    const { source, json } = await (loaded.get(cacheKey) as Promise<Loaded>);
    const options = optionValues(userId, json, value, implied, warnings);
    const key = `${source.kind === 'oci' ? source.manifestDigest : source.dir}\0${JSON.stringify(sorted(options))}`;
    if (nodes.has(key)) return key;
    const node: Node = {
      key,
      userId,
      feature: { userId, source, json, options },
      softKeys: softKeysOf(ref, json),
      dependsOn: [],
      installsAfter: installsAfterKeys(json),
      sortKey: `${softKey(ref)}\0${ref.kind === 'oci' ? (ref.ref.tag ?? '') : ''}\0${JSON.stringify(sorted(options))}\0${key}`,
    };
    nodes.set(key, node);
    for (const [depId, depValue] of Object.entries(json.dependsOn ?? {}))
      node.dependsOn.push(await visit(depId, depValue));
    return key;
  };
  for (const [userId, value] of Object.entries(opts.features)) {
    try {
      await visit(userId, value);
    } catch (err) {
      if (!(err instanceof MicrovmError)) throw err;
      errors.push({ feature: userId, error: err });
    }
  }
  if (errors.length > 0) return { features: [], warnings, errors };
  try {
    const ordered = installOrder([...nodes.values()], overrideKeys(opts, [...nodes.values()], warnings));
    return { features: ordered.map((n) => n.feature), warnings, errors };
  } catch (err) {
    if (!(err instanceof MicrovmError)) throw err;
    return { features: [], warnings, errors: [{ feature: '', error: err }] };
  }
}

interface Loaded {
  source: FeatureSource;
  json: FeatureJson;
}

async function load(
  ref: FeatureRef,
  store: ContentStore,
  opts: ResolveFeaturesOptions,
  warnings: FeatureWarning[],
): Promise<Loaded> {
  opts.onProgress?.(`Resolving feature ${ref.userId}`);
  if (ref.kind === 'local')
    return {
      source: { kind: 'local', dir: ref.dir },
      json: parseFeatureJson(ref.userId, featureJsonText(ref.userId, await localFiles(ref.userId, ref.dir))),
    };
  const fetched = await fetchFeature(ref.userId, ref.ref, store, opts.mirrors, opts.signal);
  if (fetched.offline)
    warnings.push({
      feature: ref.userId,
      message: `its registry could not be reached (${fetched.offline})`,
      consequence: `the version stored before (${fetched.manifestDigest}) is used`,
    });
  let text = fetched.metadata;
  if (text === undefined) {
    await fetchLayer(ref.userId, ref.ref, fetched.layer, store, opts.mirrors, opts.signal);
    text = featureJsonText(ref.userId, await layerFiles(ref.userId, store, fetched.layer));
  }
  const json = parseFeatureJson(ref.userId, text);
  if (json.deprecated)
    warnings.push({
      feature: ref.userId,
      message: 'the feature is deprecated by its publisher',
      consequence: 'it is installed all the same; look for its successor',
    });
  return {
    source: { kind: 'oci', ref: ref.ref.canonical, manifestDigest: fetched.manifestDigest, layer: fetched.layer },
    json,
  };
}

function parseFeatureJson(userId: string, text: string): FeatureJson {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new MicrovmError(
      'E_FEATURE_INVALID',
      `feature ${shown(userId)}: its devcontainer-feature.json is not JSON (${(err as Error).message}); fix the file, or ask its publisher`,
    );
  }
  const parsed = featureJsonSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = firstIssue(parsed.error);
  throw new MicrovmError(
    'E_FEATURE_INVALID',
    `feature ${shown(userId)}: its devcontainer-feature.json has ${issue.path.join('.') || 'a problem'}: ${issue.message}; fix the file, or ask its publisher`,
  );
}

/** The resource and its legacy ids under the same registry and namespace. */
function softKeysOf(ref: FeatureRef, json: FeatureJson): string[] {
  if (ref.kind === 'local') return [ref.dir];
  const namespace = ref.resource.slice(0, ref.resource.lastIndexOf('/'));
  return [ref.resource, ...(json.legacyIds ?? []).map((id) => `${namespace}/${id.toLowerCase()}`)];
}

/** installsAfter ids (no version); ones that are not references cannot match a feature and are dropped. */
function installsAfterKeys(json: FeatureJson): string[] {
  return (json.installsAfter ?? []).flatMap((id) => {
    try {
      return [ociRef(id).resource];
    } catch {
      return [];
    }
  });
}

function overrideKeys(opts: ResolveFeaturesOptions, nodes: readonly Node[], warnings: FeatureWarning[]): string[] {
  return (opts.overrideFeatureInstallOrder ?? []).map((id) => {
    const key = softKey(parseFeatureRef(id, opts).ref);
    if (!nodes.some((n) => n.softKeys.includes(key)))
      warnings.push({
        feature: id,
        message: 'overrideFeatureInstallOrder names a feature that is not installed',
        consequence: 'the entry changes nothing',
      });
    return key;
  });
}

function sorted(options: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
