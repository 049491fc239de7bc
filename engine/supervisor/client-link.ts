import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import {
  createMessageConnection,
  MessageConnection,
  SocketMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node';
import { ClientKind, Notifications, SupervisorEvent } from './protocol';
import type { ProcessSink } from './processes';

/** A client further behind than this is dropped: its socket closes, nobody else waits for it. */
export const MAX_CLIENT_QUEUE_BYTES = 8 * 1024 * 1024;
/** An exec process's output waits while its client has more than this unread. */
const DRAIN_BELOW_BYTES = 1024 * 1024;

/**
 * One attached client of a supervisor: its JSON-RPC connection, and the bound on what may
 * queue for it. vscode-jsonrpc's writer queues each message until the previous one is
 * written; writing through a stream that accepts at once moves that queue into the socket,
 * where its length can be watched.
 */
export class ClientLink implements ProcessSink {
  readonly connection: MessageConnection;
  kind: ClientKind | undefined;
  /** Answers egress questions (network allowlist names outside the list). */
  asksHosts = false;
  private closed = false;
  private readonly closeListeners = new Set<() => void>();

  constructor(
    private readonly socket: Socket,
    private readonly log: (line: string) => void,
  ) {
    const immediate = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        if (!socket.destroyed) socket.write(chunk);
        callback();
      },
    });
    this.connection = createMessageConnection(new SocketMessageReader(socket), new StreamMessageWriter(immediate));
    socket.on('close', () => this.finish());
    socket.on('error', () => this.finish());
    this.connection.onClose(() => this.finish());
    this.connection.onError(() => undefined);
  }

  onClose(listener: () => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  event(event: SupervisorEvent): void {
    this.notify(() => this.connection.sendNotification(Notifications.event, event));
  }

  output(id: number, stream: 'stdout' | 'stderr', data: Buffer): void {
    this.notify(() =>
      this.connection.sendNotification(Notifications.output, { id, stream, data: data.toString('base64') }),
    );
  }

  exit(id: number, exitCode: number, signal?: string): void {
    this.notify(() =>
      this.connection.sendNotification(Notifications.exit, { id, exitCode, ...(signal ? { signal } : {}) }),
    );
  }

  drained(): Promise<void> {
    if (this.closed || this.socket.writableLength < DRAIN_BELOW_BYTES) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        forget();
        resolve();
      };
      this.socket.once('drain', done);
      const forget = this.onClose(done);
    });
  }

  close(): void {
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private notify(send: () => Promise<void>): void {
    if (this.closed) return;
    if (this.socket.writableLength > MAX_CLIENT_QUEUE_BYTES) {
      this.log(
        `a ${this.kind ?? 'new'} client fell ${this.socket.writableLength} bytes behind (limit ${MAX_CLIENT_QUEUE_BYTES}): dropped, so it cannot hold back the VM or other clients`,
      );
      this.socket.destroy();
      this.finish();
      return;
    }
    send().catch(() => undefined);
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.connection.dispose();
    const listeners = [...this.closeListeners];
    this.closeListeners.clear();
    for (const listener of listeners) listener();
  }
}
