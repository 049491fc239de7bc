/** The engine's public API (dist/engine.js). */
export { Image } from './image/image';
export type { BuildProgress } from './image/image';
export { Pool } from './pool/pool';
export type { PoolStats } from './pool/pool';
export { Vm } from './vm/vm';
export type { ExecResult, SpawnOptions } from './vm/vm';
export { ExecChild } from './agent/exec-child';
export type { WaitResult } from './agent/process';
export type { BuildOptions, PoolOptions, ExecOptions } from './options';
export { engineInfo } from './info';
export type { EngineInfo } from './info';
export { MicrovmError, isMicrovmError } from './errors';
export type { ErrorCode } from './errors';
export { TcpForwarder } from './forward/forwarder';
export type { ForwardAddress } from './forward/types';
export type { GuestListener, PortsChange } from './agent/port-watch';
export type { NetworkMode } from './qemu/network';
export type { ShareRefusal, MountSpec, VolumeSpec, SymlinkPolicy, GitPolicy } from './mount';
