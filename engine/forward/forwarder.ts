import * as net from 'node:net';
import { isMicrovmError, MicrovmError } from '../errors';
import { ForwardAddress } from './types';
import { abortSocket } from '../agent/tcp-stream';
import { MAX_FORWARD_STREAMS } from '../agent/protocol';
import { ForwardRefusal, RefusalNotices } from './refusals';

/**
 * How an accepted host connection reaches the guest (the agent stream, or a fake in tests).
 * Rejecting with E_FORWARD_LIMIT refuses the connection: it is reset and counted.
 */
export type ConnectionHandler = (socket: net.Socket) => Promise<void>;

/**
 * A host TCP listener on 127.0.0.1 whose connections are carried to one guest port.
 * stop() closes the listener at once and lets connections already accepted run to their end.
 */
export class TcpForwarder {
  private stopping: Promise<void> | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;
  private bound: ForwardAddress | undefined;
  private readonly closedListeners: Array<() => void> = [];
  private readonly refusals = new RefusalNotices((refused) => this.describeRefusals(refused));
  private refusedTotal = 0;

  private constructor(
    readonly guestPort: number,
    handle: ConnectionHandler,
  ) {
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
      this.sockets.add(socket);
      socket.setNoDelay(true);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.checkClosed();
      });
      handle(socket).catch((err) => this.onHandlerError(socket, err));
    });
  }

  /** Binds 127.0.0.1:hostPort (0 picks a free port); fails with E_PORT_IN_USE naming the port. */
  static async listen(hostPort: number, guestPort: number, handle: ConnectionHandler): Promise<TcpForwarder> {
    const forwarder = new TcpForwarder(guestPort, handle);
    await forwarder.bind(hostPort);
    return forwarder;
  }

  /** The host address to connect to, as the seed API has it: `"127.0.0.1:PORT"`. */
  get localAddr(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The same address as fields (as `net.Server.address()` gives them). */
  get address(): ForwardAddress {
    return this.bound as ForwardAddress;
  }

  /** The bound host port (a free one when listen() was given 0). */
  get port(): number {
    return this.address.port;
  }

  /** Whether the forwarder still accepts connections (false once stop or destroy began). */
  get listening(): boolean {
    return this.stopping === undefined;
  }

  /** Connections accepted and not yet closed. */
  get activeConnections(): number {
    return this.sockets.size;
  }

  /** Connections refused because the VM carried MAX_FORWARD_STREAMS already, since listen(). */
  get refusedConnections(): number {
    return this.refusedTotal;
  }

  /**
   * Calls `listener` when connections are refused because the VM already carries
   * MAX_FORWARD_STREAMS forwarded connections: at once for the first, then at most once per
   * REFUSAL_NOTICE_INTERVAL_MS with the count, so a flood makes one log line. Returns a disposer.
   */
  onRefused(listener: (notice: ForwardRefusal) => void): () => void {
    return this.refusals.on(listener);
  }

  /** Stops accepting; open connections finish on their own. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      this.server.close();
      this.refusals.close();
      resolve();
    });
    this.checkClosed();
    return this.stopping;
  }

  /** Calls `listener` once the forwarder is stopped and its last connection has closed. */
  onClosed(listener: () => void): void {
    this.closedListeners.push(listener);
    this.checkClosed();
  }

  /** Resets every open connection too (the VM is going away). */
  async destroy(): Promise<void> {
    await this.stop();
    for (const socket of this.sockets) abortSocket(socket);
  }

  private checkClosed(): void {
    if (this.stopping && this.sockets.size === 0) for (const listener of this.closedListeners.splice(0)) listener();
  }

  private async bind(hostPort: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) => reject(bindError(err, hostPort)));
      this.server.listen({ host: '127.0.0.1', port: hostPort, exclusive: true }, () => resolve());
    });
    this.server.on('error', () => undefined);
    const bound = this.server.address() as net.AddressInfo;
    this.bound = { address: '127.0.0.1', port: bound.port, family: 'IPv4' };
  }

  private onHandlerError(socket: net.Socket, err: unknown): void {
    if (!isMicrovmError(err, 'E_FORWARD_LIMIT')) {
      socket.destroy();
      return;
    }
    // A reset tells the client at once; leaving it in the backlog would look like a hang.
    abortSocket(socket);
    this.refusedTotal++;
    this.refusals.record();
  }

  private describeRefusals(refused: number): string {
    return (
      `refused ${refused} connection${refused === 1 ? '' : 's'} to 127.0.0.1:${this.bound?.port} (guest port ${this.guestPort}): ` +
      `the VM already carries ${MAX_FORWARD_STREAMS} forwarded connections, the most it takes; the clients got a reset. ` +
      'Close idle connections (keep-alive pools, stale websockets) and retry'
    );
  }
}

function bindError(err: NodeJS.ErrnoException, hostPort: number): MicrovmError {
  if (err.code === 'EADDRINUSE') {
    return new MicrovmError(
      'E_PORT_IN_USE',
      `host port ${hostPort} (127.0.0.1:${hostPort}) is already in use; stop what listens there, or pick another host port (0 picks a free one)`,
      { cause: err },
    );
  }
  return new MicrovmError('E_FORWARD_FAILED', `cannot listen on 127.0.0.1:${hostPort}: ${err.message}`, { cause: err });
}
