import type * as net from 'node:net';
import { isMicrovmError } from '../errors';
import { AgentConnection } from './connection';
import { FrameType, MAX_CHUNK, Op, STDIN_WINDOW, Tag } from './protocol';
import { TlvWriter } from './tlv';

/** Guest bytes the host socket may hold unsent before the guest stops getting credit. */
const HOST_BUFFER_LIMIT = 1024 * 1024;

/**
 * Ends `socket` abruptly: with a TCP reset while that is possible. Once this side has sent
 * its FIN (end()), Node cannot reset it: libuv refuses while the shutdown is pending ('reset
 * EINVAL') and the socket's handle is then never closed, so its fd leaks and the process spins
 * at 100% CPU when it exits. Such a socket is destroyed instead (the peer has our FIN already).
 */
export function abortSocket(socket: net.Socket): void {
  if (socket.destroyed) return;
  // A unix socket (a service link's relay) has no reset: it is closed.
  if (socket.writableEnded || socket.remoteFamily === undefined) socket.destroy();
  else socket.resetAndDestroy();
}

/**
 * Carries one host TCP socket over a TCP_CONNECT stream to `guestPort` on the guest's
 * loopback (native/agent/protocol.md). Both directions are flow-controlled: a slow host
 * reader withholds the guest's output credit, and host data waits for the agent's stdin
 * credit with the socket paused. Half-closes map to CLOSE_STDIN / CLOSE_STDOUT, resets to
 * RESET / an error RESPONSE. Resolves when the stream has ended. Rejects with E_FORWARD_LIMIT,
 * the socket left to the caller, when no forwarded connection of the VM ended in time.
 */
export function pipeSocketToGuest(connection: AgentConnection, socket: net.Socket, guestPort: number): Promise<void> {
  return new GuestTcpPipe(connection, socket).run(guestPort);
}

class GuestTcpPipe {
  private stream = 0;
  private credit = STDIN_WINDOW;
  private pending: Buffer[] = [];
  private hostEnded = false;
  private closeSent = false;
  private owed = 0;
  private done = false;

  constructor(
    private readonly connection: AgentConnection,
    private readonly socket: net.Socket,
  ) {}

  async run(guestPort: number): Promise<void> {
    const { socket } = this;
    socket.pause();
    socket.on('data', (data: Buffer) => this.fromHost(data));
    socket.on('end', () => {
      this.hostEnded = true;
      this.flush();
    });
    socket.on('drain', () => this.grantOwed());
    socket.on('error', () => this.reset());
    socket.on('close', () => this.reset());
    const request = new TlvWriter().u32(Tag.OP, Op.TCP_CONNECT).u32(Tag.PORT, guestPort);
    try {
      await this.connection.request(
        request,
        {
          onStdout: (data) => this.fromGuest(data),
          onOutputEnd: () => socket.end(),
          onStdinCredit: (bytes) => {
            this.credit += bytes;
            this.flush();
          },
        },
        (stream) => {
          this.stream = stream;
          if (socket.destroyed) this.reset();
          else this.flush();
        },
        'forward',
      );
      this.done = true;
      socket.end();
    } catch (err) {
      this.done = true;
      // Never reached the guest because the VM carries all the connections it takes: the
      // caller refuses it (and counts it).
      if (this.stream === 0 && isMicrovmError(err, 'E_FORWARD_LIMIT')) throw err;
      // Refused, reset by the guest program, or the VM went away: the host peer sees a reset.
      abortSocket(socket);
    }
  }

  private fromHost(data: Buffer): void {
    this.pending.push(data);
    this.flush();
  }

  /** Sends what the agent's credit allows; the socket stays paused while data waits. */
  private flush(): void {
    if (this.stream === 0 || this.done) return;
    for (let head = this.pending[0]; head && this.credit > 0; head = this.pending[0]) {
      const size = Math.min(head.length, MAX_CHUNK, this.credit);
      this.send(FrameType.STDIN, head.subarray(0, size));
      this.credit -= size;
      if (size === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(size);
    }
    if (this.pending.length > 0) {
      this.socket.pause();
      return;
    }
    if (!this.socket.destroyed && !this.hostEnded) this.socket.resume();
    if (this.hostEnded && !this.closeSent) {
      this.closeSent = true;
      this.send(FrameType.CLOSE_STDIN);
    }
  }

  private fromGuest(data: Buffer): void {
    this.owed += data.length;
    if (this.socket.destroyed) return this.grantOwed();
    this.socket.write(data);
    if (this.socket.writableLength < HOST_BUFFER_LIMIT) this.grantOwed();
  }

  private grantOwed(): void {
    if (this.owed === 0 || this.done || !this.connection.isOpen(this.stream)) return;
    this.connection.grantOutput(this.stream, this.owed);
    this.owed = 0;
  }

  /** The host socket failed or closed before the stream ended: reset the guest side. */
  private reset(): void {
    if (this.done || this.stream === 0) return;
    if (this.socket.readableEnded && this.socket.writableFinished) return;
    this.done = true;
    this.send(FrameType.RESET);
  }

  private send(type: number, payload?: Buffer): void {
    if (this.connection.closed || !this.connection.isOpen(this.stream)) return;
    this.connection.send(type, this.stream, payload);
  }
}
