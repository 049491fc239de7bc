import {
  ClientProcess,
  GuestListener,
  OpenedForward,
  PortsConfig,
  Requests,
  SupervisorClient,
  TypesRun,
} from '../../engine/index';
import type { GuestProcess, TerminalSize } from '../terminal/guest-terminal';

/** What the Ports view shows, as the supervisor last reported it. */
interface PortSnapshot {
  config: PortsConfig;
  listeners: GuestListener[];
  forwards: Map<number, number>;
  notForwarded: Map<number, string>;
  /** A compose workspace: its own service, and the other services' forwards. */
  primaryService?: string;
  serviceForwards?: Array<{ service: string; port: number; localAddr: string }>;
}

const NO_PORTS: PortSnapshot = {
  config: { forward: [], servicePorts: [], publish: [], attributes: {} },
  listeners: [],
  forwards: new Map(),
  notForwarded: new Map(),
};

/**
 * The window's handle on its workspace VM, which the workspace's supervisor owns: the calls
 * the extension made on an in-process Session, made over the supervisor's socket instead.
 * Closing the window (or reloading it) only detaches; stop() stops the VM.
 */
export class SupervisedWorkspace {
  private ports: PortSnapshot = NO_PORTS;
  private running = true;
  /** The configuration the VM runs, relative to the folder (undefined: the engine's default, or none). */
  configFile: string | undefined;

  constructor(
    readonly client: SupervisorClient,
    public workspaceFolder: string,
  ) {
    client.onClose(() => {
      this.running = false;
    });
  }

  get isRunning(): boolean {
    return this.running;
  }

  get plan(): { workspaceFolder: string; ports: PortsConfig } {
    return { workspaceFolder: this.workspaceFolder, ports: this.ports.config };
  }

  portState(): Omit<PortSnapshot, 'config'> {
    return this.running ? this.ports : NO_PORTS;
  }

  /** Fetches the ports anew (after a portsChanged event). */
  async refreshPorts(): Promise<void> {
    const state = await this.client.call((c) => c.sendRequest(Requests.portState));
    this.ports = {
      config: state.config,
      listeners: state.listeners,
      forwards: new Map(state.forwards),
      notForwarded: new Map(state.notForwarded),
      ...(state.primaryService ? { primaryService: state.primaryService } : {}),
      ...(state.serviceForwards ? { serviceForwards: state.serviceForwards } : {}),
    };
  }

  forward(guestPort: number): Promise<OpenedForward> {
    return this.client.call((c) => c.sendRequest(Requests.forward, { guestPort }));
  }

  unforward(guestPort: number, byUser = false): Promise<void> {
    return this.client.call((c) => c.sendRequest(Requests.unforward, { guestPort, byUser }));
  }

  useSameHostPort(guestPort: number): Promise<boolean> {
    return this.client.call((c) => c.sendRequest(Requests.useSameHostPort, { guestPort }));
  }

  resume(): Promise<void> {
    return this.client.call((c) => c.sendRequest(Requests.resume));
  }

  /** A type projection now; undefined when the workspace has none. */
  refreshTypes(): Promise<TypesRun | undefined> {
    return this.client.call((c) => c.sendRequest(Requests.refreshTypes));
  }

  retryHook(retryId: number): Promise<void> {
    return this.client.call((c) => c.sendRequest(Requests.retryHook, { retryId }));
  }

  /** A new terminal: the remote user's shell in a pty that outlives this window. */
  async spawnTerminal(size: TerminalSize): Promise<GuestProcess> {
    const proc = await this.client.spawn({
      argv: [],
      tty: true,
      size,
      env: { TERM: 'xterm-256color', COLORTERM: 'truecolor' },
      persistent: true,
      name: 'MicroVM',
    });
    return guestProcess(proc);
  }

  /** An existing terminal's pty (after a window reload): its recent output first, then live. */
  async attachTerminal(id: number): Promise<GuestProcess> {
    const { process, replay } = await this.client.attach(id);
    return guestProcess(process, replay);
  }

  /** Leaves the VM running (a window reload). */
  detach(): void {
    this.running = false;
    this.client.close();
  }

  /** "MicroVM: Stop": the VM and its supervisor end. */
  async stop(): Promise<void> {
    this.running = false;
    try {
      await this.client.down();
    } finally {
      this.client.close();
    }
  }
}

/**
 * A supervisor's pty as a terminal reads it: output as a queue of chunks, ended by the
 * process's exit, after which reads give a zero-length Buffer (the engine's ExecChild contract).
 */
function guestProcess(proc: ClientProcess, replay?: Buffer): GuestProcess {
  const chunks: Buffer[] = replay && replay.length > 0 ? [replay] : [];
  let ended = false;
  let waiting: ((chunk: Buffer) => void) | undefined;
  const wake = () => {
    const resolve = waiting;
    const chunk = chunks.shift() ?? (ended ? Buffer.alloc(0) : undefined);
    if (!resolve || !chunk) return;
    waiting = undefined;
    resolve(chunk);
  };
  proc.onOutput((_stream, data) => {
    if (data.length === 0) return;
    chunks.push(data);
    wake();
  });
  const exited = proc.exited.then((result) => {
    ended = true;
    wake();
    if (result.error) throw new Error(result.error);
    return { exitCode: result.exitCode, signal: result.signal ?? null };
  });
  exited.catch(() => undefined);
  return {
    writeStdin: (data) => proc.write(data),
    readStdout: () =>
      new Promise<Buffer>((resolve) => {
        waiting = resolve;
        wake();
      }),
    resize: (rows, cols) => void proc.resize(rows, cols).catch(() => undefined),
    signal: (signal) => void proc.signal(signal).catch(() => undefined),
    wait: () => exited,
  };
}
