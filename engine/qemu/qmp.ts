import * as net from 'node:net';
import { MicrovmError } from '../errors';

const MAX_LINE = 1024 * 1024;

export interface QmpEvent {
  event: string;
  data?: unknown;
}

type Pending = { resolve(value: unknown): void; reject(err: Error): void };

/** A QMP client on QEMU's private socket: newline-delimited JSON, bounded lines. */
export class QmpClient {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(event: QmpEvent) => void>();
  private greeted: Pending | undefined;
  private closedError: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.fail(new MicrovmError('E_QMP', 'the QMP connection closed (QEMU exited)')));
    socket.on('error', () => undefined);
  }

  /** Retries until `timeoutMs`, unless `abortIf` names a reason to stop sooner (QEMU exited). */
  static async connect(socketPath: string, timeoutMs: number, abortIf?: () => Error | undefined): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(socketPath, () => resolve(s));
          s.once('error', reject);
        });
        const client = new QmpClient(socket);
        await new Promise((resolve, reject) => {
          client.greeted = { resolve, reject };
        });
        await client.execute('qmp_capabilities');
        return client;
      } catch (err) {
        const stopped = abortIf?.();
        if (stopped) throw stopped;
        if (Date.now() > deadline) {
          throw new MicrovmError('E_QMP', `cannot open QMP at ${socketPath}: ${(err as Error).message}`, {
            cause: err,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(JSON.stringify({ execute: command, arguments: args, id }) + '\n');
    });
  }

  onEvent(listener: (event: QmpEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    if (this.buffer.length > MAX_LINE && !this.buffer.includes('\n')) {
      this.fail(new MicrovmError('E_QMP', `QMP sent a line longer than ${MAX_LINE} bytes`));
      this.socket.destroy();
      return;
    }
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if ('QMP' in message) {
      this.greeted?.resolve(undefined);
      this.greeted = undefined;
    } else if (typeof message.event === 'string') {
      for (const listener of this.listeners) listener({ event: message.event, data: message.data });
    } else if (typeof message.id === 'number') {
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (!waiter) return;
      if ('error' in message) {
        const error = message.error as { desc?: string };
        waiter.reject(new MicrovmError('E_QMP', `QMP command failed: ${error.desc ?? JSON.stringify(error)}`));
      } else {
        waiter.resolve(message.return);
      }
    }
  }

  private fail(error: Error): void {
    if (this.closedError) return;
    this.closedError = error;
    this.greeted?.reject(error);
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}
