import * as net from 'node:net';
import { randomBytes } from 'node:crypto';
import { MicrovmError } from '../errors';
import { encodeFrame, Frame, FrameDecoder, FrameError } from './frame';
import { FrameType, MAX_FORWARD_STREAMS, OUTPUT_WINDOW, PROTO_VERSION, Status, statusName, Tag } from './protocol';
import { parseTlv, TlvError, TlvFields, TlvWriter } from './tlv';
import { withDeadline } from './process';
import { FORWARD_QUEUE, StreamKind, StreamTable } from './stream-table';

/** What the guest agent says about itself when it connects. */
export interface AgentInfo {
  protoVersion: number;
  agentVersion: string;
  kernel: string;
  features: string[];
}

/** What a stream's owner receives. Output handlers return nothing; credit is granted via grantOutput. */
export interface StreamHandlers {
  onStdout?(data: Buffer): void;
  onStderr?(data: Buffer): void;
  onStdinCredit?(bytes: number): void;
  /** CLOSE_STDOUT: the guest side of a TCP stream half-closed; no more output follows. */
  onOutputEnd?(): void;
  /**
   * For a call the VM cannot do without (RESTORED): turns the agent's refusal into the error
   * that ends the whole connection, before any later frame is read, so that no call sent
   * after it can succeed on a guest in the wrong state.
   */
  fatalRefusal?(refusal: MicrovmError): MicrovmError;
}

interface OpenStream {
  handlers: StreamHandlers;
  resolve(fields: TlvFields): void;
  reject(err: Error): void;
  /** Output bytes received that the host has not yet granted back. */
  unacked: number;
}

/** A request waiting for its kind's share of the stream table. */
interface QueuedRequest {
  open(id: number): void;
  reject(err: Error): void;
}

const HELLO_INTERVAL_MS = 100;
/** The handshake's way to tell `open` that the connection closed before the agent answered. */
const LOST_BEFORE_ANSWER = new Error('the agent connection closed before the agent answered');

/**
 * One connection to a guest agent: frames, streams and credit (native/agent/protocol.md).
 * Everything from the guest is untrusted: a frame that breaks the protocol closes the
 * connection and fails every open stream with E_AGENT_PROTOCOL.
 */
export class AgentConnection {
  private readonly decoder = new FrameDecoder();
  private readonly streams = new Map<number, OpenStream>();
  private readonly table = new StreamTable();
  private readonly queued: Record<StreamKind, QueuedRequest[]> = { control: [], exec: [], forward: [], watch: [] };
  private closedError: Error | undefined;
  private readonly helloNonces = new Set<bigint>();
  private helloWaiter: ((info: AgentInfo) => void) | undefined;
  /** The agent answered our HELLO: from here on every byte is a frame for this connection. */
  private answered = false;
  private lost = false;
  private readonly timeoutListeners = new Set<(error: MicrovmError) => void>();
  /** Set by the VM: a better reason for a missed deadline than "timeout" (QEMU paused on a full host disk). */
  explainTimeout: (() => MicrovmError | undefined) | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly describeLoss: () => Promise<MicrovmError>,
  ) {
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('error', () => this.onLoss());
    socket.on('close', () => this.onLoss());
  }

  /**
   * Connects to the agent socket (retrying while QEMU creates it) and completes the HELLO
   * handshake within `timeoutMs`. `describeLoss` explains a lost connection (for example by
   * reading the QEMU process state) and becomes the error of every open call. With
   * `reconnect`, a connection closed before the agent answered is made anew until the
   * deadline: vfkit closes each one it cannot carry to the guest's vsock port, which nothing
   * listens on until the agent is up.
   */
  static async open(
    socketPath: string,
    opts: {
      timeoutMs: number;
      describeLoss: () => Promise<MicrovmError>;
      abortIf?: () => MicrovmError | undefined;
      reconnect?: boolean;
    },
  ): Promise<{ connection: AgentConnection; info: AgentInfo }> {
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      const socket = await connectWithRetry(socketPath, deadline, opts.abortIf);
      const connection = new AgentConnection(socket, opts.describeLoss);
      try {
        const info = await connection.handshake(deadline, opts.abortIf, opts.reconnect === true);
        return { connection, info };
      } catch (err) {
        connection.close();
        if (err !== LOST_BEFORE_ANSWER) throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, HELLO_INTERVAL_MS));
    }
  }

  get closed(): boolean {
    return this.closedError !== undefined || this.lost;
  }

  /**
   * Sends a REQUEST and resolves with the RESPONSE fields when its status is OK. `kind` decides
   * its share of the agent's stream table: control calls never wait; exec and watch streams
   * wait their turn (FIFO) while their share is used up; a forward waits at most
   * FORWARD_QUEUE.waitMs, behind at most FORWARD_QUEUE.max others, else fails with
   * E_FORWARD_LIMIT (a host connection must not hang forever behind held ones).
   */
  request(
    body: TlvWriter,
    handlers: StreamHandlers = {},
    onOpen?: (stream: number) => void,
    kind: StreamKind = 'control',
  ): Promise<TlvFields> {
    return new Promise<TlvFields>((resolve, reject) => {
      if (this.closedError) return reject(this.closedError);
      const open = (stream: number) => {
        this.streams.set(stream, { handlers, resolve, reject, unacked: 0 });
        this.send(FrameType.REQUEST, stream, body.toBuffer());
        onOpen?.(stream);
      };
      const stream = this.queued[kind].length === 0 ? this.table.open(kind) : undefined;
      if (stream !== undefined) return open(stream);
      if (kind !== 'forward') return void this.queued[kind].push({ open, reject });
      if (this.queued.forward.length >= FORWARD_QUEUE.max) return reject(forwardLimitError('queue'));
      this.queueForward(open, reject);
    });
  }

  /**
   * Rejects after `ms` (0 = never) unless `call` settles first. A missed deadline is told to
   * the timeout listeners, so the VM can check whether its agent still answers.
   */
  deadline<T>(call: Promise<T>, ms: number, onTimeout: () => MicrovmError): Promise<T> {
    return withDeadline(call, ms, () => {
      const error = this.explainTimeout?.() ?? onTimeout();
      for (const listener of this.timeoutListeners) listener(error);
      return error;
    });
  }

  onTimeout(listener: (error: MicrovmError) => void): () => void {
    this.timeoutListeners.add(listener);
    return () => this.timeoutListeners.delete(listener);
  }

  send(type: number, stream: number, payload?: Buffer): void {
    if (this.closedError) throw this.closedError;
    if (this.lost) throw new MicrovmError('E_AGENT_PROTOCOL', 'the connection to the guest agent is lost');
    this.socket.write(encodeFrame(type, stream, payload));
  }

  /** Returns output credit to the guest for bytes the host has consumed. */
  grantOutput(stream: number, bytes: number): void {
    const open = this.streams.get(stream);
    if (!open || bytes <= 0 || this.closedError) return;
    open.unacked -= bytes;
    const credit = Buffer.allocUnsafe(4);
    credit.writeUInt32LE(bytes);
    this.send(FrameType.CREDIT, stream, credit);
  }

  isOpen(stream: number): boolean {
    return this.streams.has(stream);
  }

  close(): void {
    this.abort(new MicrovmError('E_VM_RELEASED', 'the agent connection was closed by the host'));
  }

  /** Ends the connection; every open call fails with `error` (unless another error came first). */
  abort(error: MicrovmError): void {
    this.fail(error);
    this.socket.destroy();
  }

  private async handshake(
    deadline: number,
    abortIf: (() => MicrovmError | undefined) | undefined,
    reconnect: boolean,
  ): Promise<AgentInfo> {
    return new Promise<AgentInfo>((resolve, reject) => {
      const sendHello = () => {
        const nonce = randomBytes(8).readBigUInt64LE();
        this.helloNonces.add(nonce);
        this.send(
          FrameType.HELLO,
          0,
          new TlvWriter().u64(Tag.NONCE, nonce).u32(Tag.PROTO_VERSION, PROTO_VERSION).toBuffer(),
        );
      };
      const finish = (err?: Error, info?: AgentInfo) => {
        clearInterval(timer);
        this.helloWaiter = undefined;
        if (err) reject(err);
        else resolve(info as AgentInfo);
      };
      const tick = () => {
        const aborted = abortIf?.() ?? this.closedError;
        if (aborted) return finish(aborted);
        if (Date.now() > deadline) {
          return finish(new MicrovmError('E_BOOT_TIMEOUT', 'the guest agent did not answer its handshake in time'));
        }
        if (this.lost) return reconnect ? finish(LOST_BEFORE_ANSWER) : undefined;
        sendHello();
      };
      const timer = setInterval(tick, HELLO_INTERVAL_MS);
      this.helloWaiter = (info) => finish(undefined, info);
      sendHello();
    });
  }

  private onData(data: Buffer): void {
    if (this.closedError) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(data, !this.answered);
    } catch (err) {
      return this.protocolError((err as FrameError).message);
    }
    for (const frame of frames) {
      try {
        if (this.answered) this.dispatch(frame);
        else this.beforeAnswer(frame);
      } catch (err) {
        if (err instanceof TlvError || err instanceof ProtocolViolation) return this.protocolError(err.message);
        throw err;
      }
      if (this.closedError) return;
    }
  }

  /**
   * Until the agent answers our HELLO, only that answer means anything. A VM restored from a
   * snapshot may first send what it was sending when the snapshot was taken: the tail of a
   * frame (the decoder skips to the next frame magic), frames of the old host's streams, an
   * ERROR about the tail of one of the old host's frames. None of it is for this connection.
   */
  private beforeAnswer(frame: Frame): void {
    if (frame.type !== FrameType.HELLO) return;
    let fields: TlvFields;
    try {
      fields = parseTlv(frame.payload);
    } catch {
      return;
    }
    this.onHello(fields);
  }

  private dispatch(frame: Frame): void {
    switch (frame.type) {
      case FrameType.HELLO:
        return this.onHello(parseTlv(frame.payload));
      case FrameType.RESPONSE:
        return this.onResponse(frame.stream, parseTlv(frame.payload));
      case FrameType.STDOUT:
      case FrameType.STDERR:
        return this.onOutput(frame);
      case FrameType.CREDIT:
        return this.onCredit(frame);
      case FrameType.CLOSE_STDOUT:
        if (frame.payload.length !== 0)
          throw new ProtocolViolation(`CLOSE_STDOUT frame with ${frame.payload.length} bytes`);
        return this.streams.get(frame.stream)?.handlers.onOutputEnd?.();
      case FrameType.ERROR:
        return this.onErrorFrame(frame.stream, parseTlv(frame.payload));
      default:
        throw new ProtocolViolation(`unexpected frame type ${frame.type} from the guest`);
    }
  }

  private onHello(fields: TlvFields): void {
    const nonce = fields.u64(Tag.NONCE);
    if (nonce === undefined || !this.helloNonces.has(nonce) || !this.helloWaiter) return;
    const protoVersion = fields.u32(Tag.PROTO_VERSION) ?? 0;
    if (protoVersion !== PROTO_VERSION) {
      this.fail(
        new MicrovmError(
          'E_AGENT_VERSION',
          `the guest agent speaks protocol ${protoVersion}, this engine speaks ${PROTO_VERSION}; run \`npm run setup\` to rebuild the initramfs`,
        ),
      );
      return;
    }
    try {
      this.table.startAbove(fields.u32(Tag.STREAM_FLOOR) ?? 0);
    } catch (err) {
      throw new ProtocolViolation(`HELLO: ${(err as Error).message}`);
    }
    this.answered = true;
    this.helloWaiter(infoFrom(fields, protoVersion));
  }

  private onResponse(stream: number, fields: TlvFields): void {
    const open = this.streams.get(stream);
    if (!open) return;
    this.release(stream);
    const status = fields.u32(Tag.STATUS);
    if (status === undefined) throw new ProtocolViolation(`RESPONSE on stream ${stream} has no STATUS`);
    if (status === Status.OK) open.resolve(fields);
    else this.refuse(open, agentRefusal(status, fields));
  }

  private refuse(open: OpenStream, refusal: MicrovmError): void {
    const fatal = open.handlers.fatalRefusal?.(refusal);
    if (fatal) this.fail(fatal);
    open.reject(fatal ?? refusal);
  }

  private onOutput(frame: Frame): void {
    const open = this.streams.get(frame.stream);
    if (!open) return;
    open.unacked += frame.payload.length;
    if (open.unacked > OUTPUT_WINDOW) {
      throw new ProtocolViolation(
        `the guest sent ${open.unacked} output bytes on stream ${frame.stream} beyond its ${OUTPUT_WINDOW}-byte credit`,
      );
    }
    if (frame.type === FrameType.STDOUT) open.handlers.onStdout?.(frame.payload);
    else open.handlers.onStderr?.(frame.payload);
  }

  private onCredit(frame: Frame): void {
    if (frame.payload.length !== 4) throw new ProtocolViolation(`CREDIT frame with ${frame.payload.length} bytes`);
    this.streams.get(frame.stream)?.handlers.onStdinCredit?.(frame.payload.readUInt32LE(0));
  }

  private onErrorFrame(stream: number, fields: TlvFields): void {
    const error = agentRefusal(fields.u32(Tag.STATUS) ?? Status.E_BAD_FRAME, fields);
    if (stream === 0) return this.fail(error);
    const open = this.streams.get(stream);
    if (!open) return;
    this.release(stream);
    this.refuse(open, error);
  }

  private queueForward(open: (stream: number) => void, reject: (err: Error) => void): void {
    const queue = this.queued.forward;
    const waiting: QueuedRequest = {
      open: (stream) => {
        clearTimeout(timer);
        open(stream);
      },
      reject: (err) => {
        clearTimeout(timer);
        reject(err);
      },
    };
    const timer = setTimeout(() => {
      queue.splice(queue.indexOf(waiting), 1);
      reject(forwardLimitError('wait'));
    }, FORWARD_QUEUE.waitMs);
    queue.push(waiting);
  }

  /** Frees a stream's id and share, and hands the share to the oldest request waiting for it. */
  private release(stream: number): void {
    this.streams.delete(stream);
    const kind = this.table.close(stream);
    const next = kind && this.queued[kind].shift();
    if (!next) return;
    const id = this.table.open(kind) as number;
    try {
      next.open(id);
    } catch (err) {
      next.reject(err as Error);
    }
  }

  /** The socket ended: the owner explains why (it may wait briefly for QEMU's exit status). */
  private onLoss(): void {
    if (this.lost || this.closedError) return;
    this.lost = true;
    void this.describeLoss().then((error) => this.fail(error));
  }

  private protocolError(detail: string): void {
    this.fail(
      new MicrovmError(
        'E_AGENT_PROTOCOL',
        `the guest agent broke the wire protocol (${detail}); the VM is treated as broken: release it and acquire another`,
      ),
    );
    this.socket.destroy();
  }

  private fail(error: Error): void {
    if (this.closedError) return;
    this.closedError = error;
    for (const open of this.streams.values()) open.reject(error);
    this.streams.clear();
    for (const queue of Object.values(this.queued)) for (const waiting of queue.splice(0)) waiting.reject(error);
    this.socket.destroy();
  }
}

class ProtocolViolation extends Error {}

/** A host connection beyond the VM's share of forwarded connections, after waiting or with too many waiting. */
function forwardLimitError(why: 'wait' | 'queue'): MicrovmError {
  const detail =
    why === 'wait'
      ? `none of them ended within ${FORWARD_QUEUE.waitMs} ms`
      : `${FORWARD_QUEUE.max} more connections are waiting already`;
  return new MicrovmError(
    'E_FORWARD_LIMIT',
    `this VM carries ${MAX_FORWARD_STREAMS} forwarded connections, the most its agent takes (MAX_FORWARD_STREAMS), and ${detail}; ` +
      'the new connection was refused; close idle connections (keep-alive pools, stale websockets) and connect again',
  );
}

function infoFrom(fields: TlvFields, protoVersion: number): AgentInfo {
  return {
    protoVersion,
    agentVersion: fields.str(Tag.AGENT_VERSION) ?? 'unknown',
    kernel: fields.str(Tag.KERNEL) ?? 'unknown',
    features: fields.strs(Tag.FEATURE),
  };
}

/** Agent statuses that callers can act on get their own engine code; the rest are refusals. */
const CODE_FOR_STATUS: Partial<Record<number, 'E_FILE_TOO_LARGE' | 'E_FILE_NOT_FOUND' | 'E_NO_WORKLOAD'>> = {
  [Status.E_TOO_LARGE]: 'E_FILE_TOO_LARGE',
  [Status.E_NOT_FOUND]: 'E_FILE_NOT_FOUND',
  [Status.E_NO_WORKLOAD]: 'E_NO_WORKLOAD',
};

function agentRefusal(status: number, fields: TlvFields): MicrovmError {
  const message = fields.str(Tag.ERROR) ?? statusName(status);
  const code = CODE_FOR_STATUS[status] ?? 'E_AGENT_REFUSED';
  return new MicrovmError(code, `the guest agent refused the call: ${message} (${statusName(status)})`, {
    details: { agentStatus: status, errno: fields.u32(Tag.ERRNO) },
  });
}

async function connectWithRetry(
  socketPath: string,
  deadline: number,
  abortIf?: () => MicrovmError | undefined,
): Promise<net.Socket> {
  for (;;) {
    const aborted = abortIf?.();
    if (aborted) throw aborted;
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect(socketPath);
        socket.once('connect', () => {
          socket.removeListener('error', reject);
          resolve(socket);
        });
        socket.once('error', reject);
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > deadline) {
        throw new MicrovmError(
          'E_BOOT_FAILED',
          `cannot connect to the agent socket ${socketPath}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}
