import type * as net from 'node:net';
import { isMicrovmError, MicrovmError } from '../errors';
import { AgentConnection, AgentInfo } from './connection';
import { ExecChild } from './exec-child';
import {
  abortable,
  decodeWaitResult,
  encodeProcessRequest,
  HOST_TIMEOUT_GRACE_MS,
  ProcessRequest,
  WaitResult,
} from './process';
import { FileEventKind, FrameType, MAX_FILE, MAX_FILE_EVENTS, MountKind, Op, Tag } from './protocol';
import { PortWatch } from './port-watch';
import { linuxSignalNumber, SignalSpec } from './signals';
import { pipeSocketToGuest } from './tcp-stream';
import { TlvFields, TlvWriter } from './tlv';

export interface CollectedResult extends WaitResult {
  stdout: Buffer;
  stderr: Buffer;
}

/**
 * Host deadlines (ms) for calls that run no user process: generous for TCG on a loaded host,
 * bounded so that a hung agent is noticed. File calls take a caller's timeoutMs instead.
 */
export const CALL_DEADLINE_MS = { file: 30_000, mount: 30_000, control: 10_000, ping: 3_000 } as const;

/** The most of UNMOUNT's list of killed processes the host reads (the agent sends at most 2 KiB). */
const MAX_KILLED_TEXT = 4096;

/** Calls the guest agent offers, over one AgentConnection. */
const MOUNT_KINDS = {
  virtiofs: MountKind.VIRTIOFS,
  volume: MountKind.VOLUME,
  tmpfs: MountKind.TMPFS,
  parked: MountKind.PARKED,
} as const;

export class AgentClient {
  constructor(
    readonly connection: AgentConnection,
    readonly info: AgentInfo,
  ) {}

  /** Carries `socket` to `guestPort` on the guest's loopback (TCP_CONNECT); resolves when the connection ended. */
  connectTcp(socket: net.Socket, guestPort: number): Promise<void> {
    return pipeSocketToGuest(this.connection, socket, guestPort);
  }

  /** The guest's TCP listeners, pushed by the agent whenever they change (WATCH_PORTS). */
  watchPorts(): PortWatch {
    return new PortWatch(this.connection);
  }

  /** `call`, failed with `onTimeout()` past `ms`; a missed deadline also triggers the VM's health check. */
  deadline<T>(call: Promise<T>, ms: number, onTimeout: () => MicrovmError): Promise<T> {
    return this.connection.deadline(call, ms, onTimeout);
  }

  /**
   * Runs a process to completion, collecting at most `maxBuffer` bytes of output. An abort of
   * `signal` kills it (E_ABORTED).
   */
  async exec(request: ProcessRequest, maxBuffer: number, signal?: AbortSignal): Promise<CollectedResult> {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let total = 0;
    let stream = 0;
    let overflowed = false;
    let killed = false;
    const kill = () => {
      killed = true;
      if (stream === 0 || !this.connection.isOpen(stream) || this.connection.closed) return;
      const payload = Buffer.alloc(4);
      payload.writeUInt32LE(9);
      this.connection.send(FrameType.SIGNAL, stream, payload);
    };
    // Past maxBuffer the process is killed and its remaining output is dropped, but still
    // granted: the agent sends what is left in the pipes before it reports the exit.
    const collect = (into: Buffer[]) => (data: Buffer) => {
      this.connection.grantOutput(stream, data.length);
      if (overflowed) return;
      total += data.length;
      if (total > maxBuffer) {
        overflowed = true;
        kill();
        return;
      }
      into.push(data);
    };
    const response = this.connection.request(
      encodeProcessRequest(request),
      {
        onStdout: collect(stdout),
        onStderr: collect(stderr),
      },
      (id) => {
        stream = id;
        // Aborted while it waited for a stream: it dies as soon as it starts.
        if (killed) kill();
      },
      'exec',
    );
    const hostDeadline = request.timeoutMs > 0 ? request.timeoutMs + HOST_TIMEOUT_GRACE_MS : 0;
    const ended = this.connection.deadline(
      response,
      hostDeadline,
      () =>
        new MicrovmError(
          'E_AGENT_TIMEOUT',
          `the guest agent did not end '${request.argv[0]}' within ${hostDeadline} ms (its timeout plus ${HOST_TIMEOUT_GRACE_MS} ms)`,
        ),
    );
    const fields = await abortable(ended, signal, kill, `exec of '${request.argv[0]}'`);
    if (overflowed) {
      throw new MicrovmError(
        'E_OUTPUT_LIMIT',
        `'${request.argv[0]}' wrote more than ${maxBuffer} bytes of output; it was killed; raise maxBuffer or use vm.spawn() to stream the output`,
      );
    }
    return { ...decodeWaitResult(fields), stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) };
  }

  spawn(request: ProcessRequest, signal?: AbortSignal): ExecChild {
    return new ExecChild(this.connection, request, signal);
  }

  async writeFile(path: string, data: Buffer, mode: number, timeoutMs: number = CALL_DEADLINE_MS.file): Promise<void> {
    checkFileSize(path, data.length);
    await this.call(
      new TlvWriter().u32(Tag.OP, Op.WRITE_FILE).str(Tag.PATH, path).u32(Tag.MODE, mode).raw(Tag.DATA, data),
      timeoutMs,
      `writeFile ${path}`,
    );
  }

  async readFile(path: string, timeoutMs: number = CALL_DEADLINE_MS.file): Promise<Buffer> {
    const fields = await this.call(
      new TlvWriter().u32(Tag.OP, Op.READ_FILE).str(Tag.PATH, path),
      timeoutMs,
      `readFile ${path}`,
    );
    const data = fields.bytes(Tag.DATA) ?? Buffer.alloc(0);
    checkFileSize(path, data.length);
    return Buffer.from(data);
  }

  async signalWorkload(signal: SignalSpec): Promise<void> {
    await this.call(
      new TlvWriter().u32(Tag.OP, Op.SIGNAL_WORKLOAD).u32(Tag.SIGNO, linuxSignalNumber(signal)),
      CALL_DEADLINE_MS.control,
      'workloadSignal',
    );
  }

  /** A round trip through the agent's loop: it answers unless the agent is stuck. */
  async ping(timeoutMs: number = CALL_DEADLINE_MS.ping): Promise<void> {
    await this.call(new TlvWriter().u32(Tag.OP, Op.PING), timeoutMs, 'ping');
  }

  /**
   * Tells a just-restored guest to end the streams of the host that saved it, mix `seed` into
   * its RNG and set its clock to `timeNs`. A refusal ends the connection with `onRefusal`'s
   * error: nothing may run in a clone that kept its template's RNG state.
   */
  async restored(seed: Buffer, timeNs: bigint, onRefusal: (refusal: MicrovmError) => MicrovmError): Promise<void> {
    const body = new TlvWriter().u32(Tag.OP, Op.RESTORED).raw(Tag.RNG_SEED, seed).u64(Tag.TIME_NS, timeNs);
    await this.connection.deadline(
      this.connection.request(body, { fatalRefusal: onRefusal }),
      CALL_DEADLINE_MS.control,
      () =>
        new MicrovmError(
          'E_AGENT_TIMEOUT',
          `the guest agent did not answer RESTORED within ${CALL_DEADLINE_MS.control} ms`,
        ),
    );
  }

  /**
   * Mounts a virtio-fs share (by tag), a virtio-blk ext4 volume (by serial), a tmpfs (source
   * 'tmpfs', `sizeMib` optional) or a mount that unmount() parked (by its park name) at `path` in the guest.
   */
  async mount(
    kind: 'virtiofs' | 'volume' | 'tmpfs' | 'parked',
    source: string,
    path: string,
    readOnly: boolean,
    sizeMib?: number,
  ): Promise<void> {
    const body = new TlvWriter()
      .u32(Tag.OP, Op.MOUNT)
      .u32(Tag.MOUNT_KIND, MOUNT_KINDS[kind])
      .str(Tag.MOUNT_SOURCE, source)
      .str(Tag.PATH, path)
      .u32(Tag.READ_ONLY, readOnly ? 1 : 0);
    if (sizeMib !== undefined) body.u32(Tag.SIZE_MIB, sizeMib);
    await this.call(body, CALL_DEADLINE_MS.mount, `mount ${path}`);
  }

  /**
   * Unmounts `path` in the guest, killing the processes that hold something under it first;
   * resolves with the agent's "PID NAME" description of each (guest text: bounded, shown as text).
   * With `park`, the mount is moved aside under that name instead (mount('parked', park, ...) brings it back).
   */
  async unmount(path: string, park?: string): Promise<string[]> {
    const body = new TlvWriter().u32(Tag.OP, Op.UNMOUNT).str(Tag.PATH, path);
    if (park !== undefined) body.str(Tag.MOUNT_SOURCE, park);
    const fields = await this.call(body, CALL_DEADLINE_MS.mount, `unmount ${path}`);
    const text = Buffer.from(fields.bytes(Tag.DATA) ?? Buffer.alloc(0))
      .subarray(0, MAX_KILLED_TEXT)
      .toString('utf8');
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => line.replace(/[^\x20-\x7e]/g, '?'));
  }

  /**
   * Raises host changes of the share mounted at `mountPoint` as inotify events in the guest
   * (FILE_EVENTS; the agent needs the 'file-events' feature). Paths are relative to the mount.
   */
  async fileEvents(mountPoint: string, events: readonly GuestFileEvent[]): Promise<void> {
    if (events.length > MAX_FILE_EVENTS)
      throw new RangeError(`${events.length} file events in one call; at most ${MAX_FILE_EVENTS}`);
    const body = new TlvWriter().u32(Tag.OP, Op.FILE_EVENTS).str(Tag.PATH, mountPoint);
    for (const event of events) {
      body.nested(
        Tag.FILE_EVENT,
        new TlvWriter().u32(Tag.EVENT_KIND, FileEventKind[event.kind]).str(Tag.EVENT_PATH, event.path),
      );
    }
    await this.call(body, CALL_DEADLINE_MS.control, `file events for ${mountPoint}`);
  }

  /**
   * The guest process that holds the TCP connection from guest port `localPort` (SOCKET_OWNER;
   * the agent needs the 'socket-owner' feature), or undefined when none does. The guest
   * answers: advisory only, never a reason to allow anything. `comm` is printable ASCII.
   */
  async socketOwner(localPort: number): Promise<GuestProcess | undefined> {
    if (!this.info.features.includes('socket-owner')) return undefined;
    let fields: TlvFields;
    try {
      fields = await this.call(
        new TlvWriter().u32(Tag.OP, Op.SOCKET_OWNER).u32(Tag.PORT, localPort),
        CALL_DEADLINE_MS.control,
        `socket owner of port ${localPort}`,
      );
    } catch (err) {
      if (isMicrovmError(err, 'E_FILE_NOT_FOUND')) return undefined;
      throw err;
    }
    const pid = fields.u32(Tag.PID) ?? 0;
    if (pid === 0) return undefined;
    return { pid, comm: (fields.str(Tag.COMM) ?? '').slice(0, 32).replace(/[^\x20-\x7e]/g, '?') };
  }

  /** Asks the agent to sync and power off; resolves when it has acknowledged. */
  async shutdown(timeoutMs: number = CALL_DEADLINE_MS.control): Promise<void> {
    await this.call(new TlvWriter().u32(Tag.OP, Op.SHUTDOWN), timeoutMs, 'shutdown');
  }

  /** One request with a host deadline; a missed one fails with E_AGENT_TIMEOUT and starts the VM's health check. */
  private call(body: TlvWriter, timeoutMs: number, what: string): Promise<TlvFields> {
    return this.connection.deadline(
      this.connection.request(body),
      timeoutMs,
      () =>
        new MicrovmError(
          'E_AGENT_TIMEOUT',
          `the guest agent did not answer ${what} within ${timeoutMs} ms; a slow call may need a larger timeoutMs, and a VM whose agent stopped answering is stopped (E_AGENT_UNRESPONSIVE)`,
        ),
    );
  }
}

/** A guest process as the agent names it: its pid and `/proc/PID/comm`. */
export interface GuestProcess {
  pid: number;
  comm: string;
}

/** One FILE_EVENTS entry: what changed, relative to the mount ('' only for DIR_CHANGED of the mount itself). */
export interface GuestFileEvent {
  kind: keyof typeof FileEventKind;
  path: string;
}

function checkFileSize(path: string, size: number): void {
  if (size > MAX_FILE) {
    throw new MicrovmError(
      'E_FILE_TOO_LARGE',
      `${path} is ${size} bytes; readFile and writeFile carry at most ${MAX_FILE} bytes (4 MiB); use vm.spawn() with stdin/stdout to stream larger files`,
    );
  }
}
