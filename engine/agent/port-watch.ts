import { AgentConnection } from './connection';
import { FrameType, MAX_LISTENERS, Op, Tag } from './protocol';
import { parseTlv, TlvWriter } from './tlv';

/** A TCP socket listening in the guest. */
export interface GuestListener {
  port: number;
  /** The bound address as the guest shows it: '0.0.0.0', '127.0.0.1', '::', ... */
  address: string;
  family: 4 | 6;
  /** 0 when the owning process could not be found (it may have just exited). */
  pid: number;
  /** The process name (/proc/PID/comm), '' when unknown. */
  command: string;
}

/** The guest's TCP listeners after a change, with what was added and removed since the last one. */
export interface PortsChange {
  ports: GuestListener[];
  added: GuestListener[];
  removed: GuestListener[];
}

/**
 * A WATCH_PORTS stream: the agent pushes the whole list of listeners whenever it changes;
 * this keeps the latest list and tells listeners what was added and removed.
 */
export class PortWatch {
  private ports: GuestListener[] = [];
  private readonly listeners = new Set<(change: PortsChange) => void>();
  private stream = 0;
  private stopped = false;
  /** Resolves with the first list; rejects if the watch could not start. */
  readonly ready: Promise<void>;
  readonly ended: Promise<void>;

  constructor(private readonly connection: AgentConnection) {
    let markReady = (): void => undefined;
    this.ready = new Promise<void>((resolve) => {
      markReady = resolve;
    });
    const response = connection.request(
      new TlvWriter().u32(Tag.OP, Op.WATCH_PORTS),
      {
        onStdout: (data) => {
          this.update(decodeListeners(data));
          connection.grantOutput(this.stream, data.length);
          markReady();
        },
      },
      (stream) => {
        this.stream = stream;
      },
      'watch',
    );
    this.ended = response.then(() => undefined);
    this.ready = Promise.race([this.ready, response.then(() => undefined)]);
    this.ended.catch(() => undefined);
  }

  get current(): GuestListener[] {
    return [...this.ports];
  }

  onChange(listener: (change: PortsChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.listeners.clear();
    if (this.stream !== 0 && this.connection.isOpen(this.stream) && !this.connection.closed) {
      this.connection.send(FrameType.CLOSE_STDIN, this.stream);
    }
  }

  private update(next: GuestListener[]): void {
    const key = (l: GuestListener) => `${l.family}|${l.address}|${l.port}|${l.pid}`;
    const before = new Set(this.ports.map(key));
    const after = new Set(next.map(key));
    const added = next.filter((l) => !before.has(key(l)));
    const removed = this.ports.filter((l) => !after.has(key(l)));
    this.ports = next;
    if (added.length === 0 && removed.length === 0) return;
    for (const listener of [...this.listeners]) listener({ ports: this.current, added, removed });
  }
}

/** How much of a listener's address and process name the host keeps (the guest may send more). */
const MAX_ADDRESS = 64;
const MAX_COMMAND = 256;

/**
 * Decodes a LISTENER list; malformed TLV throws TlvError, which ends the connection. The guest
 * is not trusted: a listener on a port TCP cannot have (0, above 65535) is dropped, so one bad
 * entry cannot stop the forwarding of the others, and its address and process name are cut.
 */
export function decodeListeners(payload: Buffer): GuestListener[] {
  const fields = parseTlv(payload);
  const items = fields.all(Tag.LISTENER);
  return items
    .slice(0, MAX_LISTENERS)
    .map((item) => {
      const f = parseTlv(item);
      return {
        port: f.u32(Tag.PORT) ?? 0,
        address: (f.str(Tag.ADDR) ?? '').slice(0, MAX_ADDRESS),
        family: f.u32(Tag.FAMILY) === 6 ? (6 as const) : (4 as const),
        pid: f.u32(Tag.PID) ?? 0,
        command: (f.str(Tag.COMM) ?? '').slice(0, MAX_COMMAND),
      };
    })
    .filter((listener) => listener.port >= 1 && listener.port <= 65535);
}
