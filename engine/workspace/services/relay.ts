import * as net from 'node:net';

/**
 * One declared port of one service, as the other VMs of the workspace reach it: a listener on
 * the host's 127.0.0.1 that the guests' network guard points `service:port` at (a service
 * link), opened before any VM starts so that every VM can be given its address at boot. Each
 * connection is piped to the service VM's own forward of that port once the service runs;
 * before that, or after it stops, connections are closed at once (the guest sees a reset).
 * Nothing else of the service VM is reachable: only ports a relay exists for.
 */
export class ServiceRelay {
  private target: number | undefined;
  private readonly sockets = new Set<net.Socket>();
  private connections = 0;

  private constructor(
    readonly service: string,
    readonly port: number,
    private readonly server: net.Server,
  ) {}

  static async open(service: string, port: number): Promise<ServiceRelay> {
    const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
    const relay = new ServiceRelay(service, port, server);
    server.on('connection', (socket) => relay.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return relay;
  }

  /** The host port the guests' links point at. */
  get hostPort(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** How many connections it carried: the workspace log reports it. */
  get carried(): number {
    return this.connections;
  }

  /** The service VM's forward of this port (127.0.0.1:targetPort), or undefined while it does not run. */
  setTarget(targetPort: number | undefined): void {
    this.target = targetPort;
    if (targetPort === undefined) for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.setTarget(undefined);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    const target = this.target;
    if (target === undefined) {
      socket.resetAndDestroy();
      return;
    }
    this.connections++;
    const upstream = net.connect({ host: '127.0.0.1', port: target, allowHalfOpen: true });
    this.sockets.add(socket);
    this.sockets.add(upstream);
    const end = () => {
      socket.destroy();
      upstream.destroy();
      this.sockets.delete(socket);
      this.sockets.delete(upstream);
    };
    socket.on('error', end);
    upstream.on('error', end);
    socket.on('close', end);
    upstream.on('close', end);
    upstream.once('connect', () => {
      socket.pipe(upstream);
      upstream.pipe(socket);
      socket.resume();
    });
  }
}
