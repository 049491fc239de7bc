/** Workspaces: a host folder opened in a VM, its record, its pinned configuration, its limits. */
export {
  openWorkspace,
  saveWorkspace,
  workspaceVolume,
  recordFile,
  withContainer,
  withImage,
  resetContainer,
  containerRootVolume,
} from './record';
export type { WorkspaceRecord } from './record';
export { pinDecision, pinned } from './config-pin';
export type { PinDecision } from './config-pin';
export { clampToLimits, hostLimits, overLimits, MAX_VOLUMES, MAX_VOLUME_MIB } from './limits';
export type { HostLimits, OverLimit, ResourceRequest } from './limits';
export { describeFailure, failedOutcomes, hooksToRun, runHook, splitAtWaitFor } from './lifecycle-runner';
export type { CommandOutcome, HookEnvironment, HookOutput, HookRun } from './lifecycle-runner';
export { parseEnviron, probeUserEnv } from './user-env';
export { containerInputs } from './container';
export { CancelledError, Session, progressStep } from './session';
export type { SessionEvents, SessionOptions } from './session';
export { WarmSnapshots } from './warm-snapshot';
export { LOCKFILES, NODE_LOCKFILES, lockfilesDigest } from './lockfiles';
export { Lifecycle } from './lifecycle';
export type { LifecycleEvents, LifecycleState } from './lifecycle';
export { PortForwards } from './port-forwards';
export type { OpenedForward, PortForwardsEvents, PortNotices } from './port-forwards';
export { coalesced, SerialQueue } from './serial-queue';
export { prepareWorkspace } from './prepare';
export { appendEgressLog, describeLearnedProcesses, egressLogFile, learnedNames, readEgressLog } from './egress-log';
export type { EgressLogLine, LearnedName, LearnedProcess } from './egress-log';
export { approveEgress, approveEgressName } from './record';
export type { PreparedWorkspace, PrepareOptions } from './prepare';
export { projectionTargets, projectTypes } from './type-projection';
export type { ProjectionOptions, ProjectionResult, ProjectionTarget } from './type-projection';
export { TypeProjector } from './type-projector';
export type { ProjectionRun } from './type-projector';
export { DEFAULT_TYPE_LIMITS, judgePath, isProtected, rewritePackageJson, PACKAGE_JSON_FIELDS } from './type-filter';
export type { TypeLimits } from './type-filter';
export { checkTarget, PROJECTION_MARKER } from './type-tree';
