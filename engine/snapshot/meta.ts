import { createHash } from 'node:crypto';
import { z } from 'zod';
import { fileRecordSchema } from '../file-record';

/** Bumped whenever the snapshot layout or the meaning of an input changes. */
export const SNAPSHOT_FORMAT = 1;

/** Everything a snapshot depends on; a snapshot is reused only when all of them match. */
export interface SnapshotInputs {
  format: number;
  /** The image's manifest digest. */
  image: string;
  /** The root disk file (named by the chain of layer digests). */
  rootDisk: string;
  /** The root disk's recorded sha256: a rebuilt disk (new UUID, new bytes) needs a new snapshot. */
  rootDiskSha256: string;
  /** sha256 of kernel + initramfs (which holds the agent). */
  boot: string;
  /** The kernel command line the bake booted with. */
  cmdline: string;
  agent: string;
  /** QEMU binary path and version: device state does not migrate across versions. */
  qemu: string;
  machine: string;
  accel: string;
  memoryMib: number;
  vcpus: number;
  warmupTag: string;
  /** sha256 over the remaining build options (cmd, env, extra files' contents, network, ...). */
  options: string;
}

/** What Image.fromSnapshot needs to rebuild the Image a snapshot was taken of. */
export const snapshotImageSchema = z.object({
  ref: z.string(),
  name: z.string(),
  manifestDigest: z.string(),
  rootDisk: z.string(),
  config: z.object({
    env: z.array(z.string()),
    entrypoint: z.array(z.string()),
    cmd: z.array(z.string()),
    workingDir: z.string(),
    user: z.string(),
    exposedPorts: z.array(z.number().int().min(1).max(65535)).max(64).optional(),
    architecture: z.string().optional(),
  }),
  memoryMib: z.number().int().positive(),
  vcpus: z.number().int().positive(),
  network: z.enum(['none', 'outbound', 'allowlist', 'learn']),
  /** Network 'none' with a NIC for service links: a VM restored from it needs that NIC too. */
  linkNic: z.literal(true).optional(),
});

export type SnapshotImage = z.infer<typeof snapshotImageSchema>;

export const snapshotMetaSchema = z.object({
  format: z.literal(SNAPSHOT_FORMAT),
  kind: z.enum(['template', 'full']),
  createdAt: z.string(),
  inputs: z.record(z.union([z.string(), z.number()])),
  image: snapshotImageSchema,
  files: z.object({
    state: fileRecordSchema,
    mem: fileRecordSchema.optional(),
  }),
});

export type SnapshotMeta = z.infer<typeof snapshotMetaSchema>;

export function snapshotKey(inputs: SnapshotInputs): string {
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 32);
}

/** The first input that differs, said plainly, or undefined when the snapshot fits. */
export function inputMismatch(recorded: Record<string, string | number>, wanted: SnapshotInputs): string | undefined {
  for (const [name, value] of Object.entries(wanted)) {
    if (recorded[name] !== value) {
      return `its ${name} is ${JSON.stringify(recorded[name])}, this build needs ${JSON.stringify(value)}`;
    }
  }
  return undefined;
}
