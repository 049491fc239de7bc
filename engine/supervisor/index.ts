/** The per-workspace supervisor: owns the workspace VM so it outlives a window; clients attach over a Unix socket. */
export { SupervisorClient, ClientProcess } from './client';
export type { ConnectOptions, UpQuestions } from './client';
export { runSupervisor, DEFAULT_IDLE_STOP_MINUTES } from './server';
export type { SupervisorOptions } from './server';
export { supervisorFiles, supervisorsDir } from './paths';
export type {
  ProcessInfo,
  StatusResult,
  SupervisorEvent,
  SupervisorState,
  TypesRun,
  UpParams,
  UpResult,
} from './protocol';
export { Requests } from './protocol';
export { RingBuffer } from './ring-buffer';
export { Backlog } from './backlog';
export { errorFromWire } from './wire-error';
export type { WireError } from './wire-error';
