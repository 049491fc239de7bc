import { z } from 'zod';

/**
 * zod schemas for the JSON documents of an OCI layout. Unknown keys are allowed (the specs
 * let documents grow), except that an index must not also carry `layers` and a manifest must
 * not also carry `manifests` (CVE-2021-41190): see rejectAmbiguous in oci-layout.ts.
 */
export const descriptorSchema = z.object({
  mediaType: z.string().min(1),
  digest: z.string(),
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  urls: z.array(z.string()).optional(),
  platform: z
    .object({
      architecture: z.string(),
      os: z.string(),
      variant: z.string().optional(),
    })
    .optional(),
  annotations: z.record(z.string()).optional(),
});
/** An OCI content descriptor: a blob's media type, digest and size. */
export type Descriptor = z.infer<typeof descriptorSchema>;

export const ociLayoutSchema = z.object({ imageLayoutVersion: z.string() });

export const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema),
});

export const manifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
});

const stringList = z.array(z.string()).nullish();

export const configSchema = z.object({
  architecture: z.string().optional(),
  os: z.string().optional(),
  variant: z.string().optional(),
  config: z
    .object({
      Env: stringList,
      Entrypoint: stringList,
      Cmd: stringList,
      WorkingDir: z.string().nullish(),
      User: z.string().nullish(),
      ExposedPorts: z.record(z.unknown()).nullish(),
    })
    .nullish(),
  rootfs: z.object({ type: z.string(), diff_ids: z.array(z.string()) }).optional(),
});
