import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { ConfigChange } from '../devcontainer/changes';
import type { EgressAnswer } from '../egress/ask';
import type { PlanSettings } from '../devcontainer/plan';
import type { GuestListener } from '../agent/port-watch';
import type { PortsConfig } from '../devcontainer/ports';
import type { Problem } from '../devcontainer/problems';
import type { ForwardedPort } from '../ports/types';
import type { OverLimit } from '../workspace/limits';
import type { ProjectionResult } from '../workspace/type-projection';
import type { OpenedForward } from '../workspace/port-forwards';
import type { WireError } from './wire-error';

/**
 * The supervisor's RPC surface: JSON-RPC 2.0 (vscode-jsonrpc, as LSP uses) over the
 * workspace's Unix socket. Binary data (pty output, stdin) travels base64-encoded.
 */

export type ClientKind = 'cli' | 'extension';
/** Where a supervisor's workspace VM is in its life. */
export type SupervisorState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

/** What a supervisor tells a client that attaches: who it is, its state, and the events the client missed. */
export interface HelloResult {
  pid: number;
  workspaceId: string;
  folder: string;
  state: SupervisorState;
  vmId?: string;
  /** The configuration the VM runs (or starts with), relative to the folder; absent before the first `up` and for a folder without one. */
  configFile?: string;
  /** What `up` answered, once the VM runs (a reloaded window reattaches with it). */
  up?: UpResult;
  /** Events before this client attached (bounded): the log and hook output it missed. */
  backlog: SupervisorEvent[];
}

/** What a client asks `up` with: its settings and choices. */
export interface UpParams {
  settings: PlanSettings;
  /** network 'allowlist': put names outside the list to a window that asks (else they are refused). */
  askForHosts?: boolean;
  /** Project the VM's node_modules types onto the folder (microvm.typeProjection; default on). */
  typeProjection?: boolean;
  allowLocalEnv: string[];
  limits?: { maxMemoryMib?: number; maxCpus?: number };
  /**
   * The configuration chosen (an absolute path; see chosenConfigFile); absent: the spec's first.
   * A VM already running (or starting) from another one is not reused: E_WORKSPACE_CONFIG.
   */
  configFile?: string;
}

/** The running workspace as `up` answers it. */
export interface UpResult {
  /** The VM's id (the reference CLI's container id): the same for every client of one VM. */
  containerId: string;
  remoteUser: string;
  remoteWorkspaceFolder: string;
  /** The accelerator and whether it isolates (TCG does not). */
  accel: string;
  emulated: boolean;
  /** Every problem of the configuration (errors fail `up` instead). */
  problems: Problem[];
  /** customizations.vscode.extensions, for the window to offer. */
  recommended: string[];
  /** The plan's network mode (after `learn`, the window offers the hosts it reached). */
  network: string;
  /** A compose workspace: the other services that run, each its own VM. */
  services?: string[];
  /** Their forwards that forwardPorts asked for (`db:5432`). */
  serviceForwards?: Array<{ service: string; port: number; localAddr: string }>;
}

/** A guest process the supervisor holds. */
export interface ProcessInfo {
  id: number;
  argv: string[];
  tty: boolean;
  /** Survives its client disconnecting (terminals); exec processes die with their client. */
  persistent: boolean;
  name: string;
  /** Clients attached now. */
  attached: number;
  bufferedBytes: number;
}

/** A guest process a client asks the supervisor to start (a terminal or a command). */
export interface SpawnParams {
  /** Empty: the remote user's shell. */
  argv: string[];
  tty: boolean;
  size?: { rows: number; cols: number };
  env?: Record<string, string>;
  persistent: boolean;
  name?: string;
}

/** What `status` answers: the supervisor's state, its VM and its forwards. */
export interface StatusResult {
  pid: number;
  state: SupervisorState;
  vmId?: string;
  folder: string;
  forwards: Array<{ guestPort: number; hostPort: number }>;
  /** A compose workspace: the other services' forwards (forwardPorts `"db:5432"`), and the workspace's own service. */
  serviceForwards: Array<{ service: string; port: number; localAddr: string }>;
  primaryService?: string;
  processes: ProcessInfo[];
  clients: number;
  idleStopMinutes: number;
}

/** The workspace's ports as the Ports view shows them: configuration, guest listeners, forwards and why some are not forwarded. */
export interface PortStateResult {
  /** The plan's ports (attributes, declared forwards): what the Ports view labels rows with. */
  config: PortsConfig;
  listeners: GuestListener[];
  forwards: Array<[number, number]>;
  notForwarded: Array<[number, string]>;
  /** A compose workspace: its own service's name, and its other services' forwards (forwardPorts `"db:5432"`). */
  primaryService?: string;
  serviceForwards?: Array<{ service: string; port: number; localAddr: string }>;
}

/** What the Session reports, as every attached client receives it. */
export type SupervisorEvent =
  | { type: 'log'; line: string }
  | { type: 'output'; label: string; data: string }
  | { type: 'progress'; step: string }
  | { type: 'state'; state: SupervisorState; vmId?: string }
  | { type: 'baking' }
  | { type: 'booting' }
  | { type: 'portsChanged' }
  | { type: 'exited'; message: string; code?: string; details?: unknown }
  | { type: 'hookStarted'; description: string }
  | { type: 'hookFinished'; description: string }
  | { type: 'hooksSettled' }
  | { type: 'hookFailed'; description: string; retryId: number }
  | { type: 'portForwarded'; port: ForwardedPort; action: 'notify' | 'openBrowser' }
  | { type: 'portsSummary'; ports: ForwardedPort[] }
  | { type: 'hostDiskFull'; message: string }
  | { type: 'serviceOutput'; service: string; data: string }
  | { type: 'serviceCrashed'; service: string; message: string };

/** The JSON-RPC requests a supervisor answers, typed. */
export const Requests = {
  /** `asksHosts`: this client answers egress questions (a window with microvm.askForHosts). */
  hello: new RequestType<{ kind: ClientKind; asksHosts?: boolean }, HelloResult, void>('hello'),
  up: new RequestType<UpParams, UpResult, void>('up'),
  status: new RequestType0<StatusResult, void>('status'),
  down: new RequestType0<void, void>('down'),
  spawn: new RequestType<SpawnParams, { id: number }, void>('proc/spawn'),
  list: new RequestType0<ProcessInfo[], void>('proc/list'),
  /** Attaches to a process: the reply carries its buffered output, live output follows as notifications. */
  attach: new RequestType<{ id: number }, { replay: string; dropped: number }, void>('proc/attach'),
  detach: new RequestType<{ id: number }, void, void>('proc/detach'),
  write: new RequestType<{ id: number; data: string }, void, void>('proc/write'),
  closeStdin: new RequestType<{ id: number }, void, void>('proc/closeStdin'),
  resize: new RequestType<{ id: number; rows: number; cols: number }, void, void>('proc/resize'),
  signal: new RequestType<{ id: number; signal: string }, void, void>('proc/signal'),
  kill: new RequestType<{ id: number }, void, void>('proc/kill'),
  portState: new RequestType0<PortStateResult, void>('ports/state'),
  forward: new RequestType<{ guestPort: number }, OpenedForward, void>('ports/forward'),
  unforward: new RequestType<{ guestPort: number; byUser: boolean }, void, void>('ports/unforward'),
  useSameHostPort: new RequestType<{ guestPort: number }, boolean, void>('ports/useSameHostPort'),
  retryHook: new RequestType<{ retryId: number }, void, void>('hooks/retry'),
  resume: new RequestType0<void, void>('vm/resume'),
  /** A type projection now (Refresh Type Definitions); undefined when the workspace has none. */
  refreshTypes: new RequestType0<TypesRun | undefined, void>('types/refresh'),
};

/** Questions for the user, asked of the client whose `up` needs the answer (never answered by the supervisor itself). */
export const Questions = {
  configChanged: new RequestType<{ file: string; changes: ConfigChange[] }, 'apply' | 'previous' | 'cancel', void>(
    'ask/configChanged',
  ),
  overLimits: new RequestType<{ over: OverLimit[] }, boolean, void>('ask/overLimits'),
  sameHostPort: new RequestType<{ port: ForwardedPort }, boolean, void>('ask/sameHostPort'),
  egress: new RequestType<{ name: string; port: number }, EgressAnswer, void>('ask/egress'),
};

export const Notifications = {
  event: new NotificationType<SupervisorEvent>('event'),
  output: new NotificationType<{ id: number; stream: 'stdout' | 'stderr'; data: string }>('proc/output'),
  exit: new NotificationType<{ id: number; exitCode: number; signal?: string }>('proc/exit'),
};

/** A type projection run as JSON: each failure's error as its code and message. */
export interface TypesRun {
  reason: string;
  results: ProjectionResult[];
  failures: Array<{ guestDir: string; error: { code?: string; message: string } }>;
}

/** A failure carried over JSON-RPC keeps the engine's error code and details in its data. */
export type ErrorData = WireError;
