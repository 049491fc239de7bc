import type { VmBackend } from '../../backend/types';
import { type ComposePlan, safeVolumeName } from '../../devcontainer/compose-plan';
import type { WorkspacePlan } from '../../devcontainer/plan';
import { MicrovmError } from '../../errors';
import type { MountSpec } from '../../mount';
import { hooksPathsOf } from '../../mount/git-hooks';
import { coveredHostPaths, hostPathsInside, protectedPart } from '../../mount/view';
import { openWorkspace, workspaceVolume } from '../record';
import { ComposeServices } from './compose-services';

interface StartEvents {
  log(line: string): void;
  serviceOutput?(service: string, chunk: Buffer): void;
  serviceCrashed?(service: string, message: string): void;
}

/**
 * The workspace's other compose services, started for its plan: named volumes kept per
 * workspace (`<project>_<volume>` in the workspace's namespace, as the primary's are), binds
 * shared with the workspace folder's policy, the workspace's network mode.
 */
/**
 * How a service VM shares a folder of the workspace: with the workspace share's policy, and
 * the host directories the workspace VM's volumes cover (node_modules, .venv: the host's own
 * copy or the type projection) kept read-only: the service VM has no volume there, and must
 * not plant in them what host tools run. A bind at or inside a protected name is read-only.
 */
export function serviceShare(
  plan: Pick<WorkspacePlan, 'mounts' | 'volumes'>,
): (hostPath: string, guestPath: string, readOnly: boolean) => MountSpec {
  const folderShare = plan.mounts[0];
  if (!folderShare)
    throw new MicrovmError(
      'E_CONFIG',
      "a compose workspace plan has no workspace share to model the services' binds on; plan it with planWorkspace",
    );
  const covered = coveredHostPaths(
    plan.mounts,
    plan.volumes.map((v) => v.mountPoint),
  );
  const hooksPaths = hooksPathsOf(folderShare.hostPath);
  return (hostPath, guestPath, readOnly) => ({
    ...folderShare,
    hostPath,
    guestPath,
    // A bind at or inside .git, .vscode, ... would start past the view's protection of those names.
    readOnly: readOnly || protectedPart(folderShare.hostPath, hostPath, folderShare.protect, hooksPaths) !== undefined,
    protectPaths: hostPathsInside({ hostPath }, covered),
    fileEvents: false,
  });
}

export function startServices(
  plan: WorkspacePlan,
  compose: ComposePlan,
  events: StartEvents,
  progress: (step: string) => void,
  signal: AbortSignal,
  backend?: VmBackend,
): Promise<ComposeServices> {
  const record = plan.hostFolder ? openWorkspace(plan.hostFolder) : undefined;
  const share = serviceShare(plan);
  const folderShare = plan.mounts[0] as MountSpec;
  return ComposeServices.start({
    plan: compose,
    primary: { name: compose.primary, ports: compose.primaryPorts },
    folder: plan.hostFolder ?? folderShare.hostPath,
    network: plan.network,
    allow: plan.allow,
    volumeName: (service, source, target) => {
      const name = safeVolumeName(`${compose.project}_${source ?? `${service}-anon-${target}`}`);
      return record ? workspaceVolume(record, name) : name;
    },
    share,
    signal,
    ...(backend ? { backend } : {}),
    events: {
      log: (line) => events.log(line),
      output: (service, chunk) => events.serviceOutput?.(service, chunk),
      progress,
      crashed: (service, message) => {
        events.log(message);
        events.serviceCrashed?.(service, message);
      },
    },
  });
}
