import type { VmBackend } from '../../backend/types';
import { type ComposePlan, safeVolumeName } from '../../devcontainer/compose-plan';
import type { WorkspacePlan } from '../../devcontainer/plan';
import { MicrovmError } from '../../errors';
import type { MountSpec } from '../../mount';
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
export function startServices(
  plan: WorkspacePlan,
  compose: ComposePlan,
  events: StartEvents,
  progress: (step: string) => void,
  signal: AbortSignal,
  backend?: VmBackend,
): Promise<ComposeServices> {
  const record = plan.hostFolder ? openWorkspace(plan.hostFolder) : undefined;
  const folderShare = plan.mounts[0];
  if (!folderShare)
    throw new MicrovmError(
      'E_CONFIG',
      "a compose workspace plan has no workspace share to model the services' binds on; plan it with planWorkspace",
    );
  const share = (hostPath: string, guestPath: string, readOnly: boolean): MountSpec => ({
    ...folderShare,
    hostPath,
    guestPath,
    readOnly,
    protectPaths: [],
    fileEvents: false,
  });
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
