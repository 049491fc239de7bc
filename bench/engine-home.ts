import { guestAssets } from '../engine/kernel/assets';
import { homePaths } from '../engine/paths';

/**
 * The engine's files under MICROVM_HOME that bench rows clear before a cold run, measure, or
 * place their own files beside. Their layout is the engine's internal business
 * (engine/paths.ts), so this is the one place the bench reads it; rows import it from here
 * and otherwise reach the engine through its public entry only (a lint rule).
 */
export const engineHome = {
  /** Build contexts and layers (cleared for a cold build). */
  builds: homePaths.builds,
  /** The builder VM's image layout (its blobs are measured). */
  builderImage: homePaths.builderImage,
  /** Volume files (the builder's cache volume, a compose bench's leftovers). */
  volumes: homePaths.volumes,
  /** Workspace records and service logs (a compose bench's leftovers). */
  workspaces: homePaths.workspaces,
  /** Suspended VMs' files: the warm row's raw restore writes its own beside them (same filesystem). */
  suspended: homePaths.suspended,
  /** The network guard's LD_PRELOAD library, measured alone in a network namespace. */
  netguard: homePaths.netguard,
  /** The guest kernel this host boots (its size is part of the memory row's note). */
  kernel: async (): Promise<string> => (await guestAssets()).kernel,
};
