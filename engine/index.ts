/** The engine's public API (dist/engine.js). */
import { Image } from './api/image';
import { Pool as PoolOf } from './pool/pool';
import { Vm as VmOf } from './vm/vm';

export { Image };
export type { BuildOptions, BuildProgress } from './api/image';
/** A pool of an image's VMs; what it lends snapshots to an Image. */
export type Pool = PoolOf<Image>;
/** The Pool class: what `image.pool()` returns; `new Pool` is for the engine, not callers. */
export const Pool = PoolOf;
export type { PoolEvent, PoolStats } from './pool/pool';
/** A VM lent by an image's pool: vm.snapshot(dir) gives an Image. */
export type Vm = VmOf<Image>;
/** The Vm class, for `instanceof`; VMs come from `pool.acquire()`. */
export const Vm = VmOf;
export type { ExecResult, SpawnOptions } from './vm/vm';
export type {
  BackendVm,
  BootSpec,
  Capabilities,
  GuestAgent,
  GuestPortWatch,
  RestoreSource,
  ResumeSource,
  VmBackend,
} from './backend/types';
export { qemuBackend } from './backend/qemu';
export { vfkitBackend } from './backend/vfkit/backend';
export type { VfkitBackend } from './backend/vfkit/backend';
export type { VfkitHost } from './backend/vfkit/host';
export type { VfkitProbeReport } from './backend/vfkit/probe';
export type { HealthVerdict } from './vm/health';
export type { CollectedResult } from './agent/client';
export type { AgentInfo } from './agent/connection';
export type { UserIds } from './vm/user';
export { ExecChild } from './agent/exec-child';
export type { WaitResult } from './agent/process';
export type { AcquireOptions, PoolOptions, ExecOptions } from './options';
export { engineInfo } from './info';
export type { EngineInfo, GuestArchInfo } from './info';
export type { GuestArch } from './qemu/types';
/**
 * Errors: one class, `MicrovmError`, whose `code` names the failure and whose `details` are
 * typed per code (`ErrorDetailsByCode`). `isMicrovmError(err, code)` narrows both;
 * `isMicrovmError(err)` gives `AnyMicrovmError`, where checking `code` narrows `details`.
 */
export { MicrovmError, isMicrovmError } from './errors';
export type {
  AgentRefusalDetails,
  AnyMicrovmError,
  BuildFailureDetails,
  DockerfileLocation,
  ErrorCode,
  ErrorDetailsByCode,
  HostDiskFullDetails,
  ImageUseLocation,
  MicrovmErrorOptions,
  PlatformMissingDetails,
  VolumeDetails,
} from './errors';
export { TcpForwarder } from './forward/forwarder';
export type { ForwardAddress } from './forward/types';
export type { ForwardRefusal } from './forward/refusals';
export * from './ports';
export type { GuestListener, PortsChange } from './agent/port-watch';
export type { NetworkMode, ServiceLink } from './qemu/network';
export { serviceLinkAddress, SERVICE_LINK_NET } from './qemu/network';
export type { EgressEvent } from './egress/proxy';
export type { GuestProcess } from './agent/client';
export type { EgressAnswer, EgressAsk } from './egress/ask';
export { describeEgress } from './egress/log';
export { PRESETS as EGRESS_PRESETS } from './egress/policy';
export type { ShareRefusal, MountSpec, VolumeSpec, SymlinkPolicy, GitPolicy } from './mount';
export { DEFAULT_PROTECT, removeVolume, volumeFile } from './mount';
export * from './workspace';
export * from './supervisor';
export * from './devcontainer';
export * from './build';
export * from './features';
export { formatMirrorList, MIRRORS_ENV, parseMirrorList } from './image/registry/mirrors';
export type { RegistryMirrors } from './image/registry/mirrors';
export {
  DEFAULT_LANGUAGE_IMAGES,
  detectLanguages,
  LANGUAGES,
  LANGUAGE_NAMES,
  languageImage,
} from './devcontainer/language';
export type { DetectedLanguage, Language } from './devcontainer/language';
export type { UserInfo } from './vm/user';

// The types the signatures above name, so a caller can name them too (and the API reference links them).
/** The generic classes behind {@link Pool} and {@link Vm}, over what `vm.snapshot()` returns. */
export type { Pool as PoolOf } from './pool/pool';
export type { Vm as VmOf } from './vm/vm';
export type { PullProgress } from './image/registry/pull';
export type { ImageConfig } from './image/types';
export type { Descriptor } from './image/schemas';
export type { ExtraFile } from './image/extra-files';
export type { Accel } from './qemu/types';
export type { AccelChoice } from './accel/decide';
export type { FileEventStats } from './watch/relay';
export type { SignalSpec } from './agent/signals';
export type { ConnectionHandler } from './forward/forwarder';
export type { LoadedCompose } from './compose/load';
export type {
  ComposeBuild,
  ComposePort,
  ComposeProject,
  ComposeService,
  ComposeVolume,
  DependsOnCondition,
  HealthCheck,
} from './compose/types';
export type { ComposeConfig } from './devcontainer/config';
export type { ComposePlan } from './devcontainer/compose-plan';
export type { MetadataHooks, OriginCommand } from './devcontainer/image-metadata';
export type { FolderFacts } from './devcontainer/plan';
export { WAIT_FOR } from './devcontainer/lifecycle';
export type { ClientKind, HelloResult, PortStateResult, SpawnParams } from './supervisor/protocol';
export type { SupervisorFiles } from './supervisor/paths';
export type { TrustSetting } from './workspace/host-certificates';
export type { PathVerdict } from './workspace/type-filter';
export type { TargetState } from './workspace/type-tree';
export type { TakeResult } from './workspace/warm-snapshot';
export type { DroppedState } from './workspace/suspended-budget';
export type { ServiceForward } from './workspace/services/compose-services';
export type { EgressPolicy } from './egress/policy';
export type { RootVolumeSpec, TmpfsSpec } from './mount/types';
export type { ProcessRequest } from './agent/process';
