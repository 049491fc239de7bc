import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import {
  createMessageConnection,
  MessageConnection,
  ResponseError,
  SocketMessageReader,
  SocketMessageWriter,
} from 'vscode-jsonrpc/node';
import { abortedOr, onAbort, throwIfAborted } from '../abort';
import { MicrovmError } from '../errors';
import { errorFromWire } from './wire-error';
import { openWorkspace } from '../workspace/record';
import type { ConfigChange } from '../devcontainer/changes';
import type { EgressAnswer } from '../egress/ask';
import type { ForwardedPort } from '../ports/types';
import type { OverLimit } from '../workspace/limits';
import { logTail } from './log-file';
import { supervisorFiles, SupervisorFiles } from './paths';
import {
  ClientKind,
  ErrorData,
  HelloResult,
  Notifications,
  ProcessInfo,
  Questions,
  Requests,
  SpawnParams,
  StatusResult,
  SupervisorEvent,
  UpParams,
  UpResult,
} from './protocol';

/** How long a new supervisor may take to listen (it reads the workspace record, nothing more). */
const START_TIMEOUT_MS = 20_000;
/** How long down() waits for the supervisor to close the connection after the VM stopped. */
const DOWN_TIMEOUT_MS = 10_000;
const UP_STEP = 'opening the workspace';

/** How SupervisorClient.connect attaches. */
export interface ConnectOptions {
  kind: ClientKind;
  /** This client answers egress questions (a window with microvm.askForHosts). */
  asksHosts?: boolean;
  /** Start the supervisor when none runs (default); false: undefined when none runs. */
  start?: boolean;
  idleStopMinutes?: number;
  /** The `microvm` CLI script that runs `__supervise` (default: cli.js beside this bundle). */
  cliPath?: string;
}

/** The answers to questions only the user can give, asked while `up` prepares the workspace. */
export interface UpQuestions {
  /** devcontainer.json changed in ways that matter: apply the changes, open with the previous configuration, or cancel. */
  configChanged(file: string, changes: ConfigChange[]): Promise<'apply' | 'previous' | 'cancel'>;
  /** The configuration asks for more than the host's limits allow without asking: true to go ahead (within the limits). */
  overLimits(over: OverLimit[]): Promise<boolean>;
}

/**
 * A connection to a workspace's supervisor: started when none runs (race-free: two callers at
 * once end up on one), then JSON-RPC over its socket. Engine errors come back with their code.
 */
export class SupervisorClient {
  private readonly eventListeners = new Set<(event: SupervisorEvent) => void>();
  private readonly processes = new Map<number, ClientProcess>();
  private readonly closeListeners = new Set<() => void>();
  /** What the connection said about itself on attach (the backlog of events it missed). */
  hello!: HelloResult;
  questions: UpQuestions | undefined;
  /** Asks whether a forward may move to the same host port as its guest port; the default says no. */
  sameHostPort: (port: ForwardedPort) => Promise<boolean> = async () => false;
  /** Asks whether the guest may reach a host name outside the allowlist; the default denies. */
  askEgress: (name: string, port: number) => Promise<EgressAnswer> = async () => 'deny';

  /** Rejects when the connection closes: a request in flight then fails instead of hanging. */
  private readonly lost: Promise<never>;

  private constructor(
    private readonly connection: MessageConnection,
    readonly files: SupervisorFiles,
  ) {
    let lose: (err: Error) => void = () => undefined;
    this.lost = new Promise<never>((_, reject) => {
      lose = reject;
    });
    this.lost.catch(() => undefined);
    connection.onNotification(Notifications.event, (event) => {
      for (const listener of this.eventListeners) listener(event);
    });
    connection.onNotification(Notifications.output, ({ id, stream, data }) =>
      this.processes.get(id)?.deliver(stream, Buffer.from(data, 'base64')),
    );
    connection.onNotification(Notifications.exit, ({ id, exitCode, signal }) => {
      this.processes.get(id)?.end(exitCode, signal);
      this.processes.delete(id);
    });
    connection.onRequest(Questions.configChanged, ({ file, changes }) => this.ask().configChanged(file, changes));
    connection.onRequest(Questions.overLimits, ({ over }) => this.ask().overLimits(over));
    connection.onRequest(Questions.sameHostPort, ({ port }) => this.sameHostPort(port));
    connection.onRequest(Questions.egress, ({ name, port }) => this.askEgress(name, port));
    connection.onClose(() => {
      lose(new Error('the supervisor closed the connection'));
      for (const proc of this.processes.values())
        proc.end(-1, undefined, 'the connection to the workspace supervisor closed');
      this.processes.clear();
      for (const listener of this.closeListeners) listener();
    });
    connection.onError(() => undefined);
  }

  /** Connects to the folder's supervisor, starting one when none runs (unless `start: false`, which resolves undefined then). */
  static async connect(folder: string, options: ConnectOptions): Promise<SupervisorClient | undefined> {
    const record = openWorkspace(folder);
    const files = supervisorFiles(record.id);
    const socket = await tryConnect(files.socket);
    if (socket) return SupervisorClient.over(socket, files, options.kind, options.asksHosts);
    if (options.start === false) return undefined;
    return SupervisorClient.over(
      await startSupervisor(record.folder, files, options),
      files,
      options.kind,
      options.asksHosts,
    );
  }

  /** The running supervisor of a workspace id (`microvm ls` of a folder that may be gone), or undefined. */
  static async existing(workspaceId: string, kind: ClientKind): Promise<SupervisorClient | undefined> {
    const files = supervisorFiles(workspaceId);
    const socket = await tryConnect(files.socket);
    return socket ? SupervisorClient.over(socket, files, kind) : undefined;
  }

  private static async over(
    socket: net.Socket,
    files: SupervisorFiles,
    kind: ClientKind,
    asksHosts = false,
  ): Promise<SupervisorClient> {
    const connection = createMessageConnection(new SocketMessageReader(socket), new SocketMessageWriter(socket));
    const client = new SupervisorClient(connection, files);
    connection.listen();
    client.hello = await client.request(() => connection.sendRequest(Requests.hello, { kind, asksHosts }));
    return client;
  }

  /** Calls `listener` with each event of the supervisor; returns the function that stops it. */
  onEvent(listener: (event: SupervisorEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** Calls `listener` when the connection closes; returns the function that stops it. */
  onClose(listener: () => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /**
   * Starts the workspace VM (or joins the start under way). Aborting `options.signal` sends
   * `down`: the supervisor stops the start at whatever step it is (a pull, a build, the bake,
   * the boot) and ends, and this call rejects with E_ABORTED.
   */
  async up(
    params: UpParams & { waitForHooks?: boolean },
    questions: UpQuestions,
    options: { signal?: AbortSignal } = {},
  ): Promise<UpResult> {
    const { signal } = options;
    throwIfAborted(signal, UP_STEP);
    this.questions = questions;
    const unlink = onAbort(signal, () => void this.down().catch(() => undefined));
    try {
      return await this.request(() => this.connection.sendRequest(Requests.up, params));
    } catch (err) {
      throw abortedOr(err, signal, UP_STEP);
    } finally {
      unlink();
    }
  }

  /** The supervisor's state, VM and forwards. */
  status(): Promise<StatusResult> {
    return this.request(() => this.connection.sendRequest(Requests.status));
  }

  /** Stops the VM; resolves once the supervisor has let go of the workspace (the next start gets a new one). */
  async down(): Promise<void> {
    await this.request(() => this.connection.sendRequest(Requests.down));
    await Promise.race([
      this.lost.catch(() => undefined),
      new Promise((resolve) => setTimeout(resolve, DOWN_TIMEOUT_MS).unref()),
    ]);
  }

  /** The guest processes the supervisor holds. */
  list(): Promise<ProcessInfo[]> {
    return this.request(() => this.connection.sendRequest(Requests.list));
  }

  /** Starts a guest process (as the remote user, in the workspace folder, with remoteEnv); this client is attached. */
  async spawn(params: SpawnParams): Promise<ClientProcess> {
    const { id } = await this.request(() => this.connection.sendRequest(Requests.spawn, params));
    return this.track(id);
  }

  /** Attaches to a running process: its recent output (a pty's) first, then live output. */
  async attach(id: number): Promise<{ process: ClientProcess; replay: Buffer }> {
    const proc = this.track(id);
    const { replay } = await this.request(() => this.connection.sendRequest(Requests.attach, { id }));
    return { process: proc, replay: Buffer.from(replay, 'base64') };
  }

  /** A typed request to the supervisor, for the calls without a wrapper here (ports, hooks). */
  call<R>(send: (connection: MessageConnection) => Promise<R>): Promise<R> {
    return this.request(() => send(this.connection));
  }

  /** Closes this connection; the VM keeps running. */
  close(): void {
    this.connection.end();
    this.connection.dispose();
  }

  private track(id: number): ClientProcess {
    const proc = this.processes.get(id) ?? new ClientProcess(id, this.connection, (p) => this.request(p));
    this.processes.set(id, proc);
    return proc;
  }

  private ask(): UpQuestions {
    if (!this.questions) throw new MicrovmError('E_SUPERVISOR', 'the supervisor asked a question outside of up');
    return this.questions;
  }

  private async request<R>(send: () => Promise<R>): Promise<R> {
    try {
      return await Promise.race([send(), this.lost]);
    } catch (err) {
      throw fromRpcError(err, this.files.socket);
    }
  }
}

/** A guest process held by the supervisor, as one client sees it. */
export class ClientProcess {
  private readonly listeners = new Set<(stream: 'stdout' | 'stderr', data: Buffer) => void>();
  private pending: Array<['stdout' | 'stderr', Buffer]> = [];
  private resolveExit!: (result: { exitCode: number; signal?: string; error?: string }) => void;
  readonly exited = new Promise<{ exitCode: number; signal?: string; error?: string }>((resolve) => {
    this.resolveExit = resolve;
  });

  constructor(
    readonly id: number,
    private readonly connection: MessageConnection,
    private readonly request: <R>(send: () => Promise<R>) => Promise<R>,
  ) {}

  /** Output arriving before the first listener is kept for it. */
  onOutput(listener: (stream: 'stdout' | 'stderr', data: Buffer) => void): void {
    this.listeners.add(listener);
    for (const [stream, data] of this.pending.splice(0)) listener(stream, data);
  }

  /** Output from the supervisor, kept until a listener takes it. */
  deliver(stream: 'stdout' | 'stderr', data: Buffer): void {
    if (this.listeners.size === 0) this.pending.push([stream, data]);
    for (const listener of this.listeners) listener(stream, data);
  }

  /** The process ended: wait() resolves. */
  end(exitCode: number, signal?: string, error?: string): void {
    this.resolveExit({ exitCode, ...(signal ? { signal } : {}), ...(error ? { error } : {}) });
  }

  /** Writes to the process's stdin. */
  write(data: Buffer | string): Promise<void> {
    return this.request(() =>
      this.connection.sendRequest(Requests.write, { id: this.id, data: Buffer.from(data).toString('base64') }),
    );
  }

  /** Closes the process's stdin (EOF). */
  closeStdin(): Promise<void> {
    return this.request(() => this.connection.sendRequest(Requests.closeStdin, { id: this.id }));
  }

  /** Sets the size of the process's pty. */
  resize(rows: number, cols: number): Promise<void> {
    return this.request(() => this.connection.sendRequest(Requests.resize, { id: this.id, rows, cols }));
  }

  /** Sends a signal (`'SIGINT'`, ...) to the process. */
  signal(signal: string): Promise<void> {
    return this.request(() => this.connection.sendRequest(Requests.signal, { id: this.id, signal }));
  }

  /** Stops receiving its output; the process keeps running in the VM. */
  detach(): Promise<void> {
    return this.request(() => this.connection.sendRequest(Requests.detach, { id: this.id }));
  }

  /** Kills the process (SIGKILL). */
  kill(): Promise<void> {
    return this.request(() => this.connection.sendRequest(Requests.kill, { id: this.id }));
  }
}

function tryConnect(socketPath: string): Promise<net.Socket | undefined> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve(undefined);
      else
        reject(
          new MicrovmError(
            'E_SUPERVISOR',
            `cannot connect to the workspace supervisor at ${socketPath} (${err.code}): ${err.message}; check the permissions of ${path.dirname(socketPath)}`,
          ),
        );
    });
  });
}

/**
 * Starts a detached supervisor for the folder and connects to it. When another caller starts
 * one at the same moment, one of the two wins the start lock and the other exits at once;
 * both callers end up connected to the winner.
 */
async function startSupervisor(folder: string, files: SupervisorFiles, options: ConnectOptions): Promise<net.Socket> {
  const cli = options.cliPath ?? defaultCliPath();
  const args = [
    cli,
    '__supervise',
    '--workspace-folder',
    folder,
    ...(options.idleStopMinutes !== undefined ? ['--idle-stop-minutes', String(options.idleStopMinutes)] : []),
  ];
  const deadline = Date.now() + START_TIMEOUT_MS;
  let child = launch(process.execPath, args);
  for (;;) {
    const socket = await tryConnect(files.socket);
    if (socket) return socket;
    if (child.failed || Date.now() > deadline) {
      const tail = logTail(files.log);
      throw new MicrovmError(
        'E_SUPERVISOR',
        `the workspace supervisor for ${folder} did not start (${child.failed ?? `no socket after ${START_TIMEOUT_MS / 1000} s`}), so the workspace VM cannot run; ` +
          `its log ${files.log} ends: ${tail || '(empty)'}`,
      );
    }
    // It lost the start lock: to a supervisor starting (its socket comes), or to one stopping (then try again).
    if (child.exitedAt !== undefined && Date.now() - child.exitedAt > RELAUNCH_AFTER_MS)
      child = launch(process.execPath, args);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** How long after a supervisor lost the start lock another is launched, if no socket appeared. */
const RELAUNCH_AFTER_MS = 250;

function launch(node: string, args: string[]): { failed?: string; exitedAt?: number } {
  const state: { failed?: string; exitedAt?: number } = {};
  const child = spawn(node, args, {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
  });
  child.once('exit', (code, signal) => {
    if (code === 0) state.exitedAt = Date.now();
    else state.failed = signal ? `killed by ${signal}` : `exit status ${code}`;
  });
  child.once('error', (err) => {
    state.failed = err.message;
  });
  child.unref();
  return state;
}

/** cli.js beside this bundle (dist/ holds engine.js, cli.js and extension.js), else the repository's dist/cli.js. */
function defaultCliPath(): string {
  const candidates = [path.join(__dirname, 'cli.js'), path.join(__dirname, '..', '..', 'dist', 'cli.js')];
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found)
    throw new MicrovmError(
      'E_SETUP_MISSING',
      `the microvm CLI (cli.js) is not at ${candidates.join(' or ')}, so no workspace supervisor can start; run node esbuild.mjs`,
    );
  return found;
}

/** An RPC failure as the engine error it was in the supervisor (same code and details), or E_SUPERVISOR when the link broke. */
function fromRpcError(err: unknown, socketPath: string): Error {
  if (err instanceof ResponseError) return errorFromWire(err.message, err.data as ErrorData | undefined);
  return new MicrovmError(
    'E_SUPERVISOR',
    `the connection to the workspace supervisor (${socketPath}) failed: ${(err as Error)?.message ?? String(err)}; its log is beside the socket`,
  );
}
