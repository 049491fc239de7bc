import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { QemuUser } from '../../qemu/run-as';

/** How the relay carries one accepted connection into the service's VM (vm.connectTcp, or a fake in tests). */
export type RelayTarget = (socket: net.Socket) => Promise<void>;

/**
 * One declared port of one service, as the other VMs of the workspace reach it: a unix socket
 * in the workspace's private run directory that the guests' network guard connects `service:port`
 * to (a service link). Its path is known before any VM starts, so every VM is given it at boot;
 * it listens only while the service runs, and each connection is carried straight into the
 * service VM over its agent channel (no TCP listener on the host, for the relay or the service).
 * While the service does not run there is no socket, so the guard's connect fails and the guest
 * sees a reset. Nothing else of the service VM is reachable: only ports a relay exists for, and
 * no host process but the engine's user and QEMU's (the directory is private to the engine, and
 * to QEMU's group) reaches the relay.
 */
export class ServiceRelay {
  private target: RelayTarget | undefined;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private connections = 0;
  private changing: Promise<void> = Promise.resolve();

  /** `dir` is the workspace's private run directory (createStateDir); `qemuUser` the user QEMU drops to, if any. */
  constructor(
    readonly service: string,
    readonly port: number,
    readonly path: string,
    private readonly qemuUser?: QemuUser,
  ) {}

  /**
   * The `index`-th relay of a workspace, its socket in `dir`: `INDEX.sock`, no longer than the
   * agent.sock that createStateDir keeps under the unix socket path limit (for 0..99999).
   */
  static in(dir: string, service: string, port: number, index: number, qemuUser?: QemuUser): ServiceRelay {
    return new ServiceRelay(service, port, path.join(dir, `${index}.sock`), qemuUser);
  }

  /** How many connections it carried: the workspace log reports it. */
  get carried(): number {
    return this.connections;
  }

  /** Connections it carries now. */
  get activeConnections(): number {
    return this.sockets.size;
  }

  /** Whether the relay's socket exists (the service runs). */
  get listening(): boolean {
    return this.server !== undefined;
  }

  /**
   * The service runs: listen, and carry each connection with `target`. Undefined: it stopped;
   * the socket goes away and the connections it carried are closed.
   */
  setTarget(target: RelayTarget | undefined): Promise<void> {
    // One change at a time: a stop while the socket is being opened waits for it, then removes
    // it. A change that failed (a listen refused) does not fail the ones after it.
    const next = this.changing.catch(() => undefined).then(() => this.change(target));
    this.changing = next;
    return next;
  }

  private async change(target: RelayTarget | undefined): Promise<void> {
    this.target = target;
    if (target === undefined) {
      for (const socket of this.sockets) socket.destroy();
      this.sockets.clear();
      await this.stopListening();
      return;
    }
    if (!this.server) await this.listen();
  }

  async close(): Promise<void> {
    await this.setTarget(undefined);
  }

  private async listen(): Promise<void> {
    const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
    server.on('connection', (socket) => this.accept(socket));
    // A socket file left by an engine that was killed: the directory is this workspace's own.
    fs.rmSync(this.path, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    server.on('error', () => undefined);
    try {
      // The directory already keeps others out (0700, or 0710 for QEMU's group); the socket too.
      if (this.qemuUser) {
        fs.chownSync(this.path, process.geteuid?.() ?? 0, this.qemuUser.gid);
        fs.chmodSync(this.path, 0o660);
      } else {
        fs.chmodSync(this.path, 0o600);
      }
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(this.path, { force: true });
      throw err;
    }
    this.server = server;
  }

  private async stopListening(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(this.path, { force: true });
  }

  private accept(socket: net.Socket): void {
    const target = this.target;
    if (target === undefined) {
      socket.destroy();
      return;
    }
    this.connections++;
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => this.sockets.delete(socket));
    // Refused because the VM carries all the connections it takes (E_FORWARD_LIMIT), or the
    // VM went away (the target may throw at once: its VM is stopping): the connection is
    // closed (a unix socket has no reset to send).
    Promise.resolve()
      .then(() => target(socket))
      .catch(() => socket.destroy());
  }
}
