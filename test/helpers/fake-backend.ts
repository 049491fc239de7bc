import * as net from 'node:net';
import {
  type BackendVm,
  type BootSpec,
  type Capabilities,
  type CollectedResult,
  type ExecChild,
  type GuestAgent,
  type GuestListener,
  type GuestPortWatch,
  type HealthVerdict,
  MicrovmError,
  type PortsChange,
  type VmBackend,
  type WaitResult,
} from '../../engine';

/**
 * A hypervisor backend with no hypervisor, for unit tests of Pool and Session: its "VMs" are
 * plain objects the test steers (boot delays and failures, health verdicts, crashes, guest
 * listeners). The guest's loopback is the host's, so a forward reaches a server the test
 * runs on 127.0.0.1.
 */
export class FakeBackend implements VmBackend {
  readonly name = 'fake';
  /** Every VM booted, in boot order. */
  readonly vms: FakeVm[] = [];
  readonly specs: BootSpec[] = [];
  /** Milliseconds a boot takes. */
  bootDelayMs = 0;
  /** Called with each VM as it boots, before anyone uses it (to steer its agent). */
  onBoot: (vm: FakeVm) => void = () => undefined;
  /** The most VMs running at once so far. */
  peakRunning = 0;
  private failures: Error[] = [];
  private held: Array<() => void> | undefined;
  private nextId = 1;

  constructor(readonly caps: Partial<Capabilities> = {}) {}

  capabilities(): Promise<Capabilities> {
    return Promise.resolve(fakeCapabilities(this.caps));
  }

  async boot(spec: BootSpec): Promise<BackendVm> {
    this.specs.push(spec);
    if (this.held) await new Promise<void>((resolve) => this.held?.push(resolve));
    if (this.bootDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.bootDelayMs));
    const failure = this.failures.shift();
    if (failure) throw failure;
    const vm = new FakeVm(`fake-${this.nextId++}`, fakeCapabilities(this.caps));
    this.onBoot(vm);
    this.vms.push(vm);
    this.peakRunning = Math.max(this.peakRunning, this.running().length);
    return vm;
  }

  /** The next `count` boots fail with `error`. */
  failBoots(count: number, error: Error): void {
    for (let i = 0; i < count; i++) this.failures.push(error);
  }

  /** Boots wait from now on until resumeBoots(). */
  holdBoots(): void {
    this.held ??= [];
  }

  resumeBoots(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const go of held) go();
  }

  /** Boots started and not yet through holdBoots. */
  get heldBoots(): number {
    return this.held?.length ?? 0;
  }

  running(): FakeVm[] {
    return this.vms.filter((vm) => vm.alive);
  }
}

export function fakeCapabilities(overrides: Partial<Capabilities> = {}): Capabilities {
  return {
    backend: 'fake',
    accel: 'tcg',
    isolation: 'emulated',
    snapshot: false,
    snapshotWithShares: false,
    hotPlug: false,
    virtioFs: false,
    vsock: false,
    ...overrides,
  };
}

/** One fake VM: alive until stopped or crashed; its health verdict is the test's to set. */
export class FakeVm implements BackendVm {
  readonly accel = { accel: 'tcg' as const, isolation: 'emulated' as const, reason: 'the fake backend' };
  readonly agent: FakeAgent;
  readonly pid: number;
  readonly memoryFile = undefined;
  readonly agentMs = 1;
  readonly bootMs = 1;
  readonly user = undefined;
  readonly diskFull = undefined;
  readonly fileEventStats = [];
  health: HealthVerdict = 'healthy';
  /** How many times stop() was called. */
  stops = 0;
  private running = true;
  private readonly exitListeners = new Set<(error: MicrovmError) => void>();
  private static nextPid = 900_000;

  constructor(
    readonly id: string,
    readonly capabilities: Capabilities,
  ) {
    this.pid = FakeVm.nextPid++;
    this.agent = new FakeAgent(() => this.running);
  }

  get alive(): boolean {
    return this.running;
  }

  checkHealth(): Promise<HealthVerdict> {
    return Promise.resolve(this.running ? this.health : 'dead');
  }

  onExit(listener: (error: MicrovmError) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  onDiskFull(): () => void {
    return () => undefined;
  }

  onEgress(): () => void {
    return () => undefined;
  }

  askForEgress(): void {}

  onShareRefusal(): () => void {
    return () => undefined;
  }

  onFileEventProblem(): () => void {
    return () => undefined;
  }

  saveState(): Promise<'template' | 'full'> {
    return Promise.reject(new MicrovmError('E_SNAPSHOT', 'the fake backend cannot snapshot'));
  }

  resume(): Promise<void> {
    return Promise.resolve();
  }

  suspend(): Promise<string[]> {
    return Promise.reject(new MicrovmError('E_SUSPEND', 'the fake backend cannot suspend'));
  }

  stop(): Promise<void> {
    this.stops++;
    this.end(new MicrovmError('E_VM_RELEASED', 'the VM was stopped'));
    return Promise.resolve();
  }

  /** The VM ends on its own (QEMU killed, a guest panic). */
  crash(): void {
    this.end(new MicrovmError('E_VM_EXITED', `fake VM ${this.id} crashed`));
  }

  private end(error: MicrovmError): void {
    if (!this.running) return;
    this.running = false;
    this.agent.watch.stop();
    this.agent.disconnect(error);
    for (const listener of [...this.exitListeners]) listener(error);
  }
}

/** The fake guest agent: files in a map, exec answered by `onExec`, ports from `listen`. */
export class FakeAgent implements GuestAgent {
  readonly info = { protoVersion: 1, agentVersion: 'fake', kernel: 'none', features: [] };
  readonly files = new Map<string, Buffer>();
  readonly watch = new FakePortWatch();
  onExec: (argv: string[]) => Partial<CollectedResult> = () => ({});
  /**
   * How a spawned process ends (it prints nothing); unset, spawn() is refused. A process still
   * running when the VM ends fails its wait() with the VM's error, as the real agent's would.
   */
  onSpawn: ((argv: string[]) => Promise<Partial<WaitResult>>) | undefined;
  /** Every argv spawned, in order. */
  readonly spawned: string[][] = [];
  /** Forwarded connections carried so far. */
  connections = 0;
  private readonly onDisconnect = new Set<(error: MicrovmError) => void>();

  constructor(private readonly alive: () => boolean) {}

  exec(request: { argv: string[] }): Promise<CollectedResult> {
    this.check();
    const result = this.onExec(request.argv);
    return Promise.resolve({
      exitCode: 0,
      signal: null,
      timedOut: false,
      peakRssKib: 0,
      stdout: Buffer.alloc(0),
      stderr: Buffer.alloc(0),
      ...result,
    });
  }

  spawn(request: { argv: string[] }): ExecChild {
    this.check();
    if (!this.onSpawn) throw new MicrovmError('E_AGENT_REFUSED', 'the fake agent cannot spawn processes');
    this.spawned.push(request.argv);
    const ended = this.onSpawn(request.argv);
    const wait = new Promise<WaitResult>((resolve, reject) => {
      const gone = (error: MicrovmError) => reject(error);
      this.onDisconnect.add(gone);
      ended.then((result) => resolve({ exitCode: 0, signal: null, timedOut: false, peakRssKib: 0, ...result }), reject);
    });
    const empty = () => Promise.resolve(Buffer.alloc(0));
    // Only what a caller of a silent process uses; the rest of ExecChild is not faked.
    return {
      wait: () => wait,
      readStdout: empty,
      readStderr: empty,
      closeStdin: () => undefined,
    } as unknown as ExecChild;
  }

  /** The VM ended: calls still waiting on it fail with `error`. */
  disconnect(error: MicrovmError): void {
    for (const gone of [...this.onDisconnect]) gone(error);
    this.onDisconnect.clear();
  }

  writeFile(path: string, data: Buffer): Promise<void> {
    this.check();
    this.files.set(path, Buffer.from(data));
    return Promise.resolve();
  }

  readFile(path: string): Promise<Buffer> {
    this.check();
    const data = this.files.get(path);
    return data
      ? Promise.resolve(data)
      : Promise.reject(new MicrovmError('E_AGENT_REFUSED', `${path}: no such file in the fake guest`));
  }

  signalWorkload(): Promise<void> {
    return Promise.resolve();
  }

  ping(): Promise<void> {
    this.check();
    return Promise.resolve();
  }

  /** The fake guest's loopback is the host's: the socket is piped to 127.0.0.1:guestPort. */
  connectTcp(socket: net.Socket, guestPort: number): Promise<void> {
    this.connections++;
    return new Promise((resolve) => {
      const guest = net.connect({ host: '127.0.0.1', port: guestPort, allowHalfOpen: true });
      socket.pipe(guest);
      guest.pipe(socket);
      const done = () => {
        socket.destroy();
        guest.destroy();
        resolve();
      };
      guest.once('error', done);
      socket.once('error', done);
      guest.once('close', done);
      socket.once('close', done);
    });
  }

  watchPorts(): GuestPortWatch {
    return this.watch;
  }

  deadline<T>(call: Promise<T>): Promise<T> {
    return call;
  }

  private check(): void {
    if (!this.alive()) throw new MicrovmError('E_VM_EXITED', 'the fake VM is not running');
  }
}

/** The guest's TCP listeners, set by the test (`listen`, `close`). */
export class FakePortWatch implements GuestPortWatch {
  readonly ready = Promise.resolve();
  private ports: GuestListener[] = [];
  private readonly listeners = new Set<(change: PortsChange) => void>();

  get current(): GuestListener[] {
    return [...this.ports];
  }

  onChange(listener: (change: PortsChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  stop(): void {
    this.listeners.clear();
  }

  /** A process in the guest listens on `port` (on all addresses). */
  listen(port: number, command = 'server'): void {
    const added: GuestListener = { port, address: '0.0.0.0', family: 4, pid: 100 + port, command };
    this.ports = [...this.ports, added];
    this.emit({ ports: this.current, added: [added], removed: [] });
  }

  close(port: number): void {
    const removed = this.ports.filter((l) => l.port === port);
    this.ports = this.ports.filter((l) => l.port !== port);
    this.emit({ ports: this.current, added: [], removed });
  }

  private emit(change: PortsChange): void {
    for (const listener of [...this.listeners]) listener(change);
  }
}
