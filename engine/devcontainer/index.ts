/** devcontainer.json, read on the host and understood without VS Code. */
export { readConfigFile, listConfigFiles, chosenConfigFile, CONFIG_CANDIDATES, CONFIG_NAMES } from './locate';
export type { ConfigFile } from './locate';
export { consequentialChanges, describeChange } from './changes';
export type { ConfigChange, ChangeCategory } from './changes';
export { resolveConfig, resolveContainerEnv } from './resolve';
export type { ResolvedConfig, ResolveOptions } from './resolve';
export { planWorkspace, VOLUME_SIZE_MIB } from './plan';
export type { WorkspacePlan, PlanSettings, ImageSource } from './plan';
export { recommendedExtensions } from './config';
export type { DevcontainerConfig, BuildConfig, HostRequirements, UserEnvProbe } from './config';
export { formatProblem } from './problems';
export type { Problem, Severity } from './problems';
export { HOOKS, HOOK_SCOPE, commandArgv, describeCommand } from './lifecycle';
export type { Command, Hook, LifecycleCommand, WaitFor } from './lifecycle';
export { attributesFor, autoForwardAction, isDeclared, AUTO_FORWARD_ACTIONS } from './ports';
export type { AutoForwardAction, PortAttributes, PortsConfig } from './ports';
export { devcontainerId } from './variables';
