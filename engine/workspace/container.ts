import { createHash } from 'node:crypto';
import type { WorkspacePlan } from '../devcontainer/plan';

/**
 * What makes a workspace's container: the image (or how it is built), the environment and
 * user it starts with, and its disks. When any of it changes, the container is new, and its
 * once-only hooks (onCreate, updateContent, postCreate) run again, as a rebuilt dev container's
 * do. Ports, remoteEnv and the hooks' own text do not make a new container.
 */
export function containerInputs(
  plan: Pick<WorkspacePlan, 'source' | 'containerEnv' | 'containerUser' | 'volumes' | 'tmpfs' | 'workspaceFolder'> &
    Partial<Pick<WorkspacePlan, 'features'>>,
): string {
  const features = plan.features ?? [];
  const inputs = {
    source: plan.source,
    // Features are part of the image: another version or other options make a new container. Absent when none, so keys of older records stay.
    ...(features.length > 0
      ? {
          features: features.map((f) => [
            f.userId,
            f.source.kind === 'oci' ? f.source.manifestDigest : f.source.dir,
            f.options,
          ]),
        }
      : {}),
    containerEnv: plan.containerEnv,
    containerUser: plan.containerUser ?? null,
    volumes: plan.volumes.map((v) => [v.name, v.mountPoint]),
    tmpfs: plan.tmpfs.map((t) => t.target),
    workspaceFolder: plan.workspaceFolder,
  };
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 32);
}
