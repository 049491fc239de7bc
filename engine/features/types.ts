import { z } from 'zod';
import type { Descriptor } from '../image/schemas';

/**
 * devcontainer-feature.json as the spec's schema describes it. Unknown keys pass (features in
 * the wild carry a few); the keys the engine uses are checked, so a wrong type is an
 * E_FEATURE_INVALID naming the feature and the key rather than a surprise at install time.
 */
const optionSchema = z.discriminatedUnion('type', [
  z
    .object({ type: z.literal('boolean'), default: z.boolean().optional(), description: z.string().optional() })
    .passthrough(),
  z
    .object({
      type: z.literal('string'),
      default: z.string().optional(),
      enum: z.array(z.string()).optional(),
      proposals: z.array(z.string()).optional(),
      description: z.string().optional(),
    })
    .passthrough(),
]);

const mountSchema = z.union([
  z.string(),
  z.object({ type: z.enum(['bind', 'volume']), source: z.string().optional(), target: z.string() }).passthrough(),
]);

export const featureJsonSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, ".", "_" and "-"'),
    // Required by the spec's schema, yet local features often leave it out (devcontainers/images'
    // do); the reference CLI installs them all the same.
    version: z.string().min(1).optional(),
    name: z.string().optional(),
    description: z.string().optional(),
    documentationURL: z.string().optional(),
    options: z.record(optionSchema).optional(),
    containerEnv: z.record(z.string()).optional(),
    mounts: z.array(mountSchema).optional(),
    init: z.boolean().optional(),
    privileged: z.boolean().optional(),
    capAdd: z.array(z.string()).optional(),
    securityOpt: z.array(z.string()).optional(),
    entrypoint: z.string().optional(),
    customizations: z.record(z.unknown()).optional(),
    dependsOn: z.record(z.unknown()).optional(),
    installsAfter: z.array(z.string()).optional(),
    legacyIds: z.array(z.string()).optional(),
    deprecated: z.boolean().optional(),
  })
  .passthrough();

/** A feature's `devcontainer-feature.json`, validated. */
export type FeatureJson = z.infer<typeof featureJsonSchema>;
export type FeatureOption = z.infer<typeof optionSchema>;

/** Where a feature's files come from. */
export type FeatureSource =
  /** An OCI artifact: its manifest digest and its one layer (a tar, gzip or not), in the content store. */
  | { kind: 'oci'; ref: string; manifestDigest: string; layer: Descriptor }
  /** A folder under the workspace's .devcontainer/ (a real path on the host). */
  | { kind: 'local'; dir: string };

/** An option's final value: the user's, else the feature's default. */
export type OptionValue = string | boolean;

/**
 * A feature ready to install: plain data (it lives in the WorkspacePlan and in cache keys).
 * `userId` is the reference as devcontainer.json (or a dependsOn) wrote it: the metadata
 * entry's `id` and the origin of its hooks.
 */
export interface ResolvedFeature {
  userId: string;
  source: FeatureSource;
  /** The feature's devcontainer-feature.json, as published. */
  json: FeatureJson;
  options: Record<string, OptionValue>;
}

/** Not fatal: an option the feature does not declare, a registry that was unreachable, ... */
export interface FeatureWarning {
  /** The feature reference as written. */
  feature: string;
  message: string;
  consequence: string;
}

export const FEATURE_MEDIA_TYPES = {
  config: 'application/vnd.devcontainers',
  layer: 'application/vnd.devcontainers.layer.v1+tar',
  metadataAnnotation: 'dev.containers.metadata',
} as const;
