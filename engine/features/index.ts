/** Dev container features: resolved on the host, installed in the builder microVM (see ARCHITECTURE.md, engine/features). */
export { resolveFeatures } from './resolve';
export type { ResolveFeaturesOptions, ResolvedFeatures } from './resolve';
export { buildFeaturesImage } from './build';
export type { FeaturesImage, FeaturesImageOptions } from './build';
export { envName } from './options';
export { featureEntry, labelEntries, METADATA_LABEL } from './metadata';
export type { MetadataEntry } from './metadata';
export type { FeatureJson, FeatureSource, FeatureWarning, OptionValue, ResolvedFeature } from './types';
