/** The engine's public API (dist/engine.js). */
import { Image } from './image/image';
import { Pool as PoolOf } from './pool/pool';
import { Vm as VmOf } from './vm/vm';

export { Image };
export type { BuildOptions, BuildProgress } from './image/image';
/** A pool of an image's VMs; what it lends snapshots to an Image. */
export type Pool = PoolOf<Image>;
export const Pool = PoolOf;
export type { PoolEvent, PoolStats } from './pool/pool';
/** A VM lent by an image's pool: vm.snapshot(dir) gives an Image. */
export type Vm = VmOf<Image>;
export const Vm = VmOf;
export type { ExecResult, SpawnOptions } from './vm/vm';
export { ExecChild } from './agent/exec-child';
export type { WaitResult } from './agent/process';
export type { AcquireOptions, PoolOptions, ExecOptions } from './options';
export { engineInfo } from './info';
export type { EngineInfo } from './info';
/**
 * Errors: one class, `MicrovmError`, whose `code` names the failure and whose `details` are
 * typed per code (`ErrorDetailsByCode`). `isMicrovmError(err, code)` narrows both;
 * `isMicrovmError(err)` gives `AnyMicrovmError`, where checking `code` narrows `details`.
 */
export { MicrovmError, isMicrovmError } from './errors';
export type {
  AgentRefusalDetails, AnyMicrovmError, BuildFailureDetails, DockerfileLocation, ErrorCode, ErrorDetailsByCode, HostDiskFullDetails,
  ImageUseLocation, MicrovmErrorOptions, VolumeDetails,
} from './errors';
export { TcpForwarder } from './forward/forwarder';
export type { ForwardAddress } from './forward/types';
export type { ForwardRefusal } from './forward/refusals';
export * from './ports';
export type { GuestListener, PortsChange } from './agent/port-watch';
export type { NetworkMode, ServiceLink } from './qemu/network';
export { serviceLinkAddress, SERVICE_LINK_NET } from './qemu/network';
export type { EgressEvent } from './egress/proxy';
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
export { DEFAULT_LANGUAGE_IMAGES, detectLanguages, LANGUAGES, LANGUAGE_NAMES, languageImage } from './devcontainer/language';
export type { DetectedLanguage, Language } from './devcontainer/language';
export type { UserInfo } from './vm/user';
