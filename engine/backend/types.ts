import type * as net from 'node:net';
import type { AccelChoice } from '../accel/decide';
import type { CollectedResult } from '../agent/client';
import type { AgentInfo } from '../agent/connection';
import type { ExecChild } from '../agent/exec-child';
import type { GuestListener, PortsChange } from '../agent/port-watch';
import type { ProcessRequest } from '../agent/process';
import type { SignalSpec } from '../agent/signals';
import type { EgressAsk } from '../egress/ask';
import type { EgressPolicy } from '../egress/policy';
import type { EgressEvent } from '../egress/proxy';
import type { MicrovmError } from '../errors';
import type { MountSpec, RootVolumeSpec, ShareRefusal, TmpfsSpec, VolumeSpec } from '../mount';
import type { NetworkMode, ServiceLink } from '../qemu/network';
import type { GuestArch } from '../qemu/types';
import type { HealthVerdict } from '../vm/health';
import type { UserIds } from '../vm/user';
import type { FileEventStats } from '../watch/relay';

/**
 * What a hypervisor backend can do on this host, as data: pools, images and VMs ask these
 * fields instead of knowing which backend runs them. QEMU/KVM and QEMU/TCG are the real
 * backends (engine/backend/qemu.ts); an Apple Virtualization.framework backend would fill in
 * its own.
 */
export interface Capabilities {
  /** The backend's name: 'qemu' here, 'fake' in tests, 'apple-vz' one day. */
  backend: string;
  /** The accelerator guests run under. */
  accel: 'kvm' | 'tcg' | 'hvf';
  /** 'hardware' only when a hypervisor isolates the guest; TCG emulation is not a security boundary. */
  isolation: 'hardware' | 'emulated';
  /** A running VM can be saved and restored (pools restore from a baked snapshot, vm.snapshot()). */
  snapshot: boolean;
  /** A VM with virtio-fs shares or volumes can be snapshotted too (QEMU 7.2 cannot migrate vhost-user-fs). */
  snapshotWithShares: boolean;
  /** Devices are hot-plugged into a running VM, so a workspace VM can be suspended and resumed. */
  hotPlug: boolean;
  /** Host folders are shared over virtio-fs. */
  virtioFs: boolean;
  /** The guest agent speaks over vsock (QEMU's agent uses a virtio-serial port instead). */
  vsock: boolean;
}

/** What a VM boots: its root disk, resources, network and storage. */
export interface BootSpec {
  rootDisk: string;
  /** The guest's architecture, from the image config (engine/qemu/arch.ts); absent = x86_64. */
  arch?: GuestArch;
  /** The image's workload (its cmd), started once the agent answers; vm.workloadSignal targets it. */
  workload?: ProcessRequest;
  /** The image's User (name, uid, name:group or uid:gid); processes run as it. Empty = root. */
  user?: string;
  memoryMib: number;
  vcpus: number;
  bootTimeoutMs?: number;
  /** Guest NIC; absent = 'none'. Forwards work either way. */
  network?: NetworkMode;
  /**
   * Other VMs' TCP ports the guest reaches at 198.18.0.0/24, each relayed from a unix socket on
   * the host (engine/qemu/network.ts). Given at all (even empty), the guest has a NIC, also with
   * network 'none': then the links are all it reaches.
   */
  serviceLinks?: ServiceLink[];
  /** Proxy modes ('allowlist', 'learn'): what the VM's egress proxy allows; absent = nothing (fail closed). */
  egress?: EgressPolicy;
  restoreTimeoutMs?: number;
  /** Host folders over virtio-fs and volumes over virtio-blk, mounted before the workload starts (fresh boots only). */
  mounts?: MountSpec[];
  volumes?: VolumeSpec[];
  tmpfs?: TmpfsSpec[];
  /** The disk that keeps the root's changes across boots (fresh boots only). */
  rootVolume?: RootVolumeSpec;
  /**
   * 'q35' for workspace VMs: devices on PCI, the folder's share hot-plugged after the agent
   * answers, so the VM can be suspended and resumed (capabilities.hotPlug). Absent = microvm.
   */
  machine?: 'q35';
  /** Aborting kills the VM while it boots or restores; boot then fails with E_ABORTED and leaves nothing behind. */
  signal?: AbortSignal;
  /**
   * Words added to the end of the guest kernel command line on a fresh boot, each without
   * whitespace or quotes; absent = none. A test hook, reached through a wrapping backend: for
   * example `microvm.vsock=PORT` makes the agent serve vsock instead of the virtio-serial port
   * (native/agent/README.md), which the QEMU backend's host side then cannot reach.
   */
  kernelArgs?: string[];
}

/** A snapshot's files: a template keeps guest RAM in `memFile`; a full snapshot keeps it in the state. */
export interface RestoreSource {
  kind: 'template' | 'full';
  stateFile: string;
  memFile?: string;
}

/**
 * A suspended workspace VM: its RAM file, mapped shared again (virtio-fs needs it), and its
 * device state. Used once: the RAM file moves into the new VM's state directory.
 */
export interface ResumeSource {
  kind: 'suspended';
  stateFile: string;
  memFile: string;
}

/** The guest's TCP listeners as they change (the agent's WATCH_PORTS). */
export interface GuestPortWatch {
  /** Resolves with the first list; rejects if the watch could not start. */
  readonly ready: Promise<void>;
  readonly current: GuestListener[];
  /** Calls `listener` with each change of the list; returns the unsubscribe. */
  onChange(listener: (change: PortsChange) => void): () => void;
  /** Ends the watch. */
  stop(): void;
}

/** The guest agent as a VM handle uses it (engine/agent/client.ts is the real one). */
export interface GuestAgent {
  readonly info: AgentInfo;
  /** Runs a process to its end and collects its output (at most `maxBuffer` bytes a stream). */
  exec(request: ProcessRequest, maxBuffer: number, signal?: AbortSignal): Promise<CollectedResult>;
  /** Starts a process and streams its stdio. */
  spawn(request: ProcessRequest, signal?: AbortSignal): ExecChild;
  /** Writes a guest file whole, with `mode`. */
  writeFile(path: string, data: Buffer, mode: number, timeoutMs?: number): Promise<void>;
  /** Reads a guest file whole. */
  readFile(path: string, timeoutMs?: number): Promise<Buffer>;
  /** Sends a signal to the image's baked workload (its `cmd`). */
  signalWorkload(signal: SignalSpec): Promise<void>;
  /** Resolves once the agent answered a PING within `timeoutMs`. */
  ping(timeoutMs?: number): Promise<void>;
  /** Carries `socket` to `guestPort` on the guest's loopback; resolves when the connection ended. */
  connectTcp(socket: net.Socket, guestPort: number): Promise<void>;
  /** Watches the guest's TCP listeners. */
  watchPorts(): GuestPortWatch;
  /** `call`, failed with `onTimeout()` past `ms` (a missed deadline also triggers a health check). */
  deadline<T>(call: Promise<T>, ms: number, onTimeout: () => MicrovmError): Promise<T>;
}

/**
 * One running VM as its backend provides it: what a pool keeps, checks and ends, and what
 * the Vm handle it lends calls. engine/vm/machine.ts is QEMU's.
 */
export interface BackendVm {
  readonly id: string;
  readonly accel: AccelChoice;
  readonly capabilities: Capabilities;
  readonly agent: GuestAgent;
  /** The process that runs the guest (QEMU's pid), while it runs. */
  readonly pid: number | undefined;
  /** The shared file holding the guest's RAM, when it has one (a fresh boot). */
  readonly memoryFile: string | undefined;
  readonly alive: boolean;
  /** Milliseconds from the boot's start until the agent answered, and until the mounts were made. */
  readonly agentMs: number;
  readonly bootMs: number;
  /** The ids processes run as (the image's User); undefined = root. */
  readonly user: UserIds | undefined;
  /** Set while the VM is paused because a volume's host disk is full. */
  readonly diskFull: MicrovmError | undefined;
  readonly fileEventStats: Array<{ guestPath: string } & FileEventStats>;
  /** Asks the VM whether it still answers (used on release and after a missed deadline). */
  checkHealth(): Promise<HealthVerdict>;
  /** Called once when the VM ends, for whatever reason, with the error pending calls got. */
  onExit(listener: (error: MicrovmError) => void): () => void;
  /** Called when a volume's host disk fills and the VM pauses. */
  onDiskFull(listener: (error: MicrovmError) => void): () => void;
  /** Called with each connection through the VM's egress proxy. */
  onEgress(listener: (event: EgressEvent) => void): () => void;
  /** The question asked for a name outside the allowlist (`ask` mode); undefined refuses. */
  askForEgress(ask: EgressAsk | undefined): void;
  /** Called with each operation a share's filter refused. */
  onShareRefusal(listener: (refusal: ShareRefusal) => void): () => void;
  /** Called when host file events could not reach the guest. */
  onFileEventProblem(listener: (problem: MicrovmError) => void): () => void;
  /** Saves the device state to `stateFile` and leaves the VM paused (capabilities.snapshot). */
  saveState(stateFile: string): Promise<'template' | 'full'>;
  /** Lets a paused VM run again. */
  resume(): Promise<void>;
  /** Saves a workspace VM for a later resume and ends it (capabilities.hotPlug); returns what the guest killed. */
  suspend(stateFile: string, memFile: string): Promise<string[]>;
  /** Ends the VM; idempotent. */
  stop(): Promise<void>;
}

/**
 * A hypervisor: what it can do here, and how it boots or restores a VM. Image.build takes one
 * (`backend`, default QEMU); its pools and workspace VMs boot through it.
 */
export interface VmBackend {
  readonly name: string;
  /** What this backend can do on this host for guests of `arch` (default x86_64), decided once. */
  capabilities(arch?: GuestArch): Promise<Capabilities>;
  /** Boots a VM from `spec`, or restores one from a snapshot or a suspended state. */
  boot(spec: BootSpec, restore?: RestoreSource | ResumeSource): Promise<BackendVm>;
}
