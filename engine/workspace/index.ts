/** Workspaces: a host folder opened in a VM, its record, its pinned configuration, its limits. */
export { openWorkspace, saveWorkspace, workspaceVolume, recordFile, withContainer } from './record';
export type { WorkspaceRecord } from './record';
export { pinDecision, pinned } from './config-pin';
export type { PinDecision } from './config-pin';
export { clampToLimits, hostLimits, overLimits, MAX_VOLUMES, MAX_VOLUME_MIB } from './limits';
export type { HostLimits, OverLimit, ResourceRequest } from './limits';
export { describeFailure, failedOutcomes, hooksToRun, runHook, splitAtWaitFor } from './lifecycle-runner';
export type { CommandOutcome, HookEnvironment, HookOutput, HookRun } from './lifecycle-runner';
export { parseEnviron, probeUserEnv } from './user-env';
export { containerInputs } from './container';
