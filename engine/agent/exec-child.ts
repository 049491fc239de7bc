import { MicrovmError } from '../errors';
import { AgentConnection } from './connection';
import {
  abortable,
  decodeWaitResult,
  encodeProcessRequest,
  HOST_TIMEOUT_GRACE_MS,
  ProcessRequest,
  WaitResult,
} from './process';
import { FrameType, MAX_CHUNK, STDIN_WINDOW } from './protocol';
import { linuxSignalNumber, SignalSpec } from './signals';

/** Output the host holds for a reader before it stops granting credit (the process then blocks). */
const HOST_BUFFER_LIMIT = 1024 * 1024;

/** What a read returns at the end of a stream: a zero-length Buffer, as the seed API has it. */
const END = Buffer.alloc(0);

class OutputQueue {
  private chunks: Buffer[] = [];
  private readers: Array<(chunk: Buffer) => void> = [];
  private ended = false;

  push(chunk: Buffer): void {
    // An empty chunk would read as the end.
    if (chunk.length === 0) return;
    const reader = this.readers.shift();
    if (reader) reader(chunk);
    else this.chunks.push(chunk);
  }

  end(): void {
    this.ended = true;
    for (const reader of this.readers.splice(0)) reader(END);
  }

  read(onTake: (bytes: number) => void): Promise<Buffer> {
    const chunk = this.chunks.shift();
    if (chunk) {
      onTake(chunk.length);
      return Promise.resolve(chunk);
    }
    if (this.ended) return Promise.resolve(END);
    return new Promise((resolve) =>
      this.readers.push((next) => {
        onTake(next.length);
        resolve(next);
      }),
    );
  }
}

/**
 * A streaming guest process (vm.spawn). Reads pull from bounded host buffers; unread output
 * beyond HOST_BUFFER_LIMIT stops the credit, so a slow reader slows the guest process instead
 * of growing host memory. Writes wait for the agent's stdin credit.
 */
export class ExecChild {
  private stream = 0;
  private readonly stdout = new OutputQueue();
  private readonly stderr = new OutputQueue();
  private buffered = 0;
  private owed = 0;
  private stdinCredit = STDIN_WINDOW;
  private creditWaiters: Array<() => void> = [];
  /** Writes go out one after another, and CLOSE_STDIN after all of them, whoever awaits. */
  private stdinQueue: Promise<void> = Promise.resolve();
  private readonly result: Promise<WaitResult>;
  private readonly opened: Promise<void>;
  private finished = false;
  private waiting = false;
  private dropped = 0;

  /**
   * An abort of `signal` kills the process; wait() then rejects with E_ABORTED and the reads end.
   * Made by `vm.spawn()`, not by callers.
   * @internal
   */
  constructor(
    private readonly connection: AgentConnection,
    request: ProcessRequest,
    signal?: AbortSignal,
  ) {
    let markOpen = (): void => undefined;
    this.opened = new Promise<void>((resolve) => {
      markOpen = resolve;
    });
    const response = connection.request(
      encodeProcessRequest(request),
      {
        onStdout: (data) => this.onOutput(this.stdout, data),
        onStderr: (data) => this.onOutput(this.stderr, data),
        onStdinCredit: (bytes) => {
          this.stdinCredit += bytes;
          for (const wake of this.creditWaiters.splice(0)) wake();
        },
      },
      (stream) => {
        this.stream = stream;
        markOpen();
      },
      'exec',
    );
    const hostDeadline = request.timeoutMs > 0 ? request.timeoutMs + HOST_TIMEOUT_GRACE_MS : 0;
    const ended = connection.deadline(
      response.then(decodeWaitResult),
      hostDeadline,
      () =>
        new MicrovmError(
          'E_AGENT_TIMEOUT',
          `the guest agent did not end '${request.argv[0]}' within ${hostDeadline} ms (its timeout plus ${HOST_TIMEOUT_GRACE_MS} ms)`,
        ),
    );
    this.result = abortable(ended, signal, () => this.signal('SIGKILL'), `spawn of '${request.argv[0]}'`);
    this.result.then(
      () => this.finish(),
      () => this.finish(),
    );
    response.catch(() => markOpen());
  }

  /** Resolves when the process has ended; rejects if the VM or the agent failed. */
  /**
   * Resolves when the process has ended; rejects if the VM or the agent failed. Once a caller
   * waits, unread output past the host buffer is dropped (and counted in `droppedBytes`) so
   * that a process nobody reads can still end: the agent sends all output before it reports
   * the exit, and would otherwise wait for credit forever.
   */
  wait(): Promise<WaitResult> {
    this.waiting = true;
    this.grantIfRoom();
    return this.result;
  }

  /** Output dropped because nobody read it while the caller waited (see wait()). */
  get droppedBytes(): number {
    return this.dropped;
  }

  /**
   * The next stdout chunk (the merged pty output in tty mode); a zero-length Buffer at the
   * end, and on every read after it. Chunks before the end are never empty.
   */
  readStdout(): Promise<Buffer> {
    return this.stdout.read((bytes) => this.consumed(bytes));
  }

  /** The next stderr chunk (nothing in tty mode); a zero-length Buffer at the end. */
  readStderr(): Promise<Buffer> {
    return this.stderr.read((bytes) => this.consumed(bytes));
  }

  /** Writes to the process's stdin, in call order; resolves once the agent has taken the bytes (within its stdin window). */
  writeStdin(data: Buffer | string): Promise<void> {
    const write = this.stdinQueue.then(() => this.sendStdin(data));
    this.stdinQueue = write.catch(() => undefined);
    return write;
  }

  /** Closes the process's stdin once every write made before this call has been sent. */
  closeStdin(): void {
    void this.stdinQueue.then(() => this.sendIfOpen(FrameType.CLOSE_STDIN));
  }

  private async sendStdin(data: Buffer | string): Promise<void> {
    let rest = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    await this.opened;
    while (rest.length > 0 && !this.finished) {
      if (this.stdinCredit === 0) {
        await new Promise<void>((resolve) => this.creditWaiters.push(resolve));
        continue;
      }
      const size = Math.min(rest.length, MAX_CHUNK, this.stdinCredit);
      this.stdinCredit -= size;
      this.sendIfOpen(FrameType.STDIN, rest.subarray(0, size));
      rest = rest.subarray(size);
    }
  }

  /** Sends a signal to the process group in the guest (Linux numbering, or a name). */
  signal(signal: SignalSpec): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32LE(linuxSignalNumber(signal));
    this.sendIfOpen(FrameType.SIGNAL, payload);
  }

  /** Sets the size of the process's pty (`tty: true`); ignored once the process has ended. */
  resize(rows: number, cols: number): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt16LE(clampDimension(rows), 0);
    payload.writeUInt16LE(clampDimension(cols), 2);
    this.sendIfOpen(FrameType.RESIZE, payload);
  }

  private onOutput(queue: OutputQueue, data: Buffer): void {
    this.owed += data.length;
    if (this.waiting && this.buffered >= HOST_BUFFER_LIMIT) {
      this.dropped += data.length;
    } else {
      this.buffered += data.length;
      queue.push(data);
    }
    this.grantIfRoom();
  }

  private consumed(bytes: number): void {
    this.buffered -= bytes;
    this.grantIfRoom();
  }

  private grantIfRoom(): void {
    if (this.owed > 0 && (this.buffered < HOST_BUFFER_LIMIT || this.waiting)) {
      this.connection.grantOutput(this.stream, this.owed);
      this.owed = 0;
    }
  }

  /** Frames sent before the REQUEST went out wait for it, in order. */
  private sendIfOpen(type: number, payload?: Buffer): void {
    void this.opened.then(() => {
      if (this.finished || !this.connection.isOpen(this.stream)) return;
      this.connection.send(type, this.stream, payload);
    });
  }

  private finish(): void {
    this.finished = true;
    this.stdout.end();
    this.stderr.end();
    for (const wake of this.creditWaiters.splice(0)) wake();
  }
}

function clampDimension(value: number): number {
  return Math.max(1, Math.min(0xffff, Math.floor(value)));
}
