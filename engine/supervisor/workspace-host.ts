import { abortedError, isMicrovmError, MicrovmError } from '../errors';
import { formatProblem } from '../devcontainer/problems';
import { recommendedExtensions } from '../devcontainer/config';
import { configMismatch, wantedConfigFile } from '../workspace/config-choice';
import { prepareWorkspace } from '../workspace/prepare';
import { CancelledError, Session, SessionEvents } from '../workspace/session';
import { WarmSnapshots } from '../workspace/warm-snapshot';
import { Backlog } from './backlog';
import { errorToWire } from './wire-error';
import type { ClientLink } from './client-link';
import { ProcessTable } from './processes';
import {
  Questions,
  SpawnParams,
  TypesRun,
  StatusResult,
  SupervisorEvent,
  SupervisorState,
  UpParams,
  UpResult,
} from './protocol';

/** Events kept for clients that attach later. */
const BACKLOG_EVENTS = 1000;
const BACKLOG_BYTES = 512 * 1024;

/**
 * The workspace as one supervisor holds it: the Session (started once, by the first `up`),
 * its attached clients, the events they all receive, and the guest processes. Questions
 * only the user can answer (a changed configuration, requests over this host's limits) go
 * to the client whose `up` started the VM, never answered here.
 */
export class WorkspaceHost {
  state: SupervisorState = 'idle';
  readonly clients = new Set<ClientLink>();
  readonly processes: ProcessTable;
  private session: Session | undefined;
  private starting: Promise<UpResult> | undefined;
  /** The configuration the VM runs or starts with (relative to the folder), from the `up` that started it. */
  configFile: string | undefined;
  /** Aborted by stop() (a `down`, the extension's Cancel): stops a start at any step, its preparation included. */
  private readonly startAbort = new AbortController();
  private result: UpResult | undefined;
  private readonly backlog = new Backlog<SupervisorEvent>(
    BACKLOG_EVENTS,
    BACKLOG_BYTES,
    (e) => JSON.stringify(e).length,
  );
  private readonly retries = new Map<number, () => Promise<void>>();
  private nextRetry = 1;

  constructor(
    readonly folder: string,
    readonly workspaceId: string,
    private readonly idleStopMinutes: number,
    private readonly log: (line: string) => void,
    private readonly onVmEnded: (why: string) => void,
  ) {
    this.processes = new ProcessTable(log);
  }

  backlogEvents(): SupervisorEvent[] {
    return this.backlog.list();
  }

  get upResult(): UpResult | undefined {
    return this.state === 'running' ? this.result : undefined;
  }

  get vmId(): string | undefined {
    return this.result?.containerId;
  }

  broadcast(event: SupervisorEvent): void {
    if (event.type !== 'portsChanged' && event.type !== 'state') this.backlog.push(event);
    for (const client of this.clients) if (client.kind) client.event(event);
  }

  /** Starts the VM once; later callers (other windows, `microvm up` again) share that start. */
  up(params: UpParams & { waitForHooks?: boolean }, asker: ClientLink): Promise<UpResult> {
    if (this.state === 'stopping' || this.state === 'stopped') {
      return Promise.reject(
        new MicrovmError(
          'E_SUPERVISOR',
          `the workspace VM of ${this.folder} is stopping; run microvm up again once it has stopped`,
        ),
      );
    }
    // One VM per folder: an `up` for another configuration than the one it runs is refused, never attached to it.
    let wanted: string | undefined;
    try {
      wanted = wantedConfigFile(this.folder, params.configFile);
    } catch (err) {
      return Promise.reject(err);
    }
    const mismatch = this.starting ? configMismatch(this.folder, this.configFile, wanted) : undefined;
    if (mismatch) return Promise.reject(mismatch);
    if (!this.starting) this.configFile = wanted;
    this.starting ??= this.start(params, asker).catch((err: unknown) => {
      this.starting = undefined;
      this.setState('idle');
      throw err;
    });
    return this.starting.then(async (result) => {
      if (params.waitForHooks) await this.session?.hooksSettled();
      return result;
    });
  }

  private async start(params: UpParams, asker: ClientLink): Promise<UpResult> {
    this.setState('starting');
    const prepared = await prepareWorkspace({
      folder: this.folder,
      settings: params.settings,
      allowLocalEnv: params.allowLocalEnv,
      ...(params.configFile === undefined ? {} : { configFile: params.configFile }),
      ...(params.limits ? { limits: params.limits } : {}),
      onProgress: (step) => this.broadcast({ type: 'progress', step }),
      onConfigChanged: (file, changes) => asker.connection.sendRequest(Questions.configChanged, { file, changes }),
      onOverLimits: (over) => asker.connection.sendRequest(Questions.overLimits, { over }),
      signal: this.startAbort.signal,
    });
    if (!prepared)
      throw new MicrovmError(
        'E_CONFIG',
        `the workspace in ${this.folder} was not opened: the configuration change or the resources it asks for were declined`,
      );
    // The file actually used ("previous" after a change may name the one accepted before).
    this.configFile = prepared.resolved.file?.file;
    const file = prepared.resolved.file?.file ?? 'devcontainer.json';
    for (const problem of prepared.problems)
      this.broadcast({ type: 'log', line: `${problem.severity}: ${formatProblem(file, problem)}` });
    const errors = prepared.problems.filter((p) => p.severity === 'error');
    if (errors.length > 0)
      throw new MicrovmError(
        'E_CONFIG',
        `${file} has ${errors.length} problem(s) that keep the folder from opening as described: ${errors.map((p) => formatProblem(file, p)).join('; ')}`,
      );
    // Warm reopen: a stop suspends the VM (engine/workspace/warm-snapshot.ts) and this start resumes one that still fits.
    const warm = suspendEnabled() ? { warm: new WarmSnapshots(this.folder) } : {};
    const session = new Session(
      prepared.plan,
      this.sessionEvents(params.askForHosts === true),
      prepared.lifecycle,
      warm,
    );
    session.onProgress = (step) => this.broadcast({ type: 'progress', step });
    session.typeProjection = params.typeProjection ?? true;
    this.session = session;
    let vm;
    try {
      vm = await session.start({ signal: this.startAbort.signal });
    } catch (err) {
      this.session = undefined;
      await session.stop();
      throw err instanceof CancelledError
        ? abortedError(`the start of the workspace VM of ${this.folder}`, this.startAbort.signal)
        : err;
    }
    const result: UpResult = {
      containerId: vm.id,
      remoteUser: session.remoteUserName ?? 'root',
      remoteWorkspaceFolder: session.plan.workspaceFolder,
      accel: vm.accel.accel,
      emulated: vm.accel.isolation === 'emulated',
      problems: prepared.problems,
      recommended: recommendedExtensions(prepared.resolved.config, prepared.resolved.raw),
      network: session.plan.network,
      ...(session.plan.compose
        ? { services: session.plan.compose.services.map((s) => s.name), serviceForwards: session.serviceForwards }
        : {}),
    };
    this.result = result;
    this.setState('running');
    void session.hooksSettled().then(() => this.broadcast({ type: 'hooksSettled' }));
    this.log(`VM ${vm.id} running for ${this.folder}`);
    return result;
  }

  private setState(state: SupervisorState): void {
    this.state = state;
    this.broadcast({ type: 'state', state, ...(this.vmId ? { vmId: this.vmId } : {}) });
  }

  private sessionEvents(askForHosts: boolean): SessionEvents {
    return {
      // Asked of a window that answers such questions; with none attached, the name is refused.
      ...(askForHosts
        ? {
            askEgress: async (name: string, port: number) => {
              const window = [...this.clients].find((c) => c.asksHosts && !c.isClosed);
              return window
                ? window.connection.sendRequest(Questions.egress, { name, port }).catch(() => 'deny' as const)
                : 'deny';
            },
          }
        : {}),
      // The workspace log also goes to the supervisor's own (bounded) log file, for after the windows are gone.
      log: (line) => {
        this.log(line);
        this.broadcast({ type: 'log', line });
      },
      baking: () => this.broadcast({ type: 'baking' }),
      booting: () => this.broadcast({ type: 'booting' }),
      portsChanged: () => this.broadcast({ type: 'portsChanged' }),
      exited: (error) => {
        this.broadcast({
          type: 'exited',
          message: error.message,
          ...(isMicrovmError(error) ? errorToWire(error) : {}),
        });
        this.onVmEnded(`the VM ended: ${error.message}`);
      },
      output: (label, chunk) => this.broadcast({ type: 'output', label, data: chunk.toString('base64') }),
      started: (o) =>
        this.broadcast({
          type: 'hookStarted',
          description: `${o.name ? `${o.hook} (${o.name})` : o.hook}: ${o.command}`,
        }),
      finished: (o) =>
        this.broadcast({
          type: 'hookFinished',
          description: `${o.name ? `${o.hook} (${o.name})` : o.hook} exited ${o.exitCode}`,
        }),
      hookFailed: (description, retry) => {
        const retryId = this.nextRetry++;
        this.retries.set(retryId, retry);
        this.broadcast({ type: 'hookFailed', description, retryId });
      },
      portForwarded: (port, action) => this.broadcast({ type: 'portForwarded', port, action }),
      portsSummary: (ports) => this.broadcast({ type: 'portsSummary', ports }),
      confirmSameHostPort: async (port) => {
        const window = [...this.clients].find((c) => c.kind === 'extension' && !c.isClosed);
        return window ? window.connection.sendRequest(Questions.sameHostPort, { port }).catch(() => false) : false;
      },
      hostDiskFull: (message) => this.broadcast({ type: 'hostDiskFull', message }),
      serviceOutput: (service, chunk) =>
        this.broadcast({ type: 'serviceOutput', service, data: chunk.toString('base64') }),
      serviceCrashed: (service, message) => this.broadcast({ type: 'serviceCrashed', service, message }),
    };
  }

  get running(): Session {
    if (this.state !== 'running' || !this.session) {
      throw new MicrovmError(
        'E_SUPERVISOR',
        `the workspace VM of ${this.folder} is not running (${this.state}); start it with microvm up --workspace-folder ${JSON.stringify(this.folder)}`,
      );
    }
    return this.session;
  }

  spawn(params: SpawnParams, owner: ClientLink): number {
    const session = this.running;
    // A terminal starts the remote user's shell as VS Code's integrated terminal does (not a login shell).
    const argv = params.argv.length > 0 ? params.argv : [session.shell];
    const child = params.tty
      ? session.spawnPty(argv, params.size ?? { rows: 24, cols: 80 }, params.env ?? {})
      : session.spawn(argv, params.env ?? {});
    return this.processes.add(child, { ...params, argv }, owner);
  }

  async refreshTypes(): Promise<TypesRun | undefined> {
    const run = await this.running.refreshTypes();
    return (
      run && {
        ...run,
        failures: run.failures.map((f) => ({
          guestDir: f.guestDir,
          error: { ...(isMicrovmError(f.error) ? { code: f.error.code } : {}), message: f.error.message },
        })),
      }
    );
  }

  retryHook(retryId: number): Promise<void> {
    const retry = this.retries.get(retryId);
    if (!retry) throw new MicrovmError('E_NO_PROCESS', `no failed hook ${retryId} to retry (it was retried already)`);
    this.retries.delete(retryId);
    return retry();
  }

  status(): StatusResult {
    const forwards =
      this.session && this.state === 'running'
        ? [...this.session.portState().forwards].map(([guestPort, hostPort]) => ({ guestPort, hostPort }))
        : [];
    const serviceForwards = this.session && this.state === 'running' ? this.session.serviceForwards : [];
    return {
      pid: process.pid,
      state: this.state,
      ...(this.vmId ? { vmId: this.vmId } : {}),
      folder: this.folder,
      forwards,
      serviceForwards,
      ...(this.session?.plan.compose ? { primaryService: this.session.plan.compose.primary } : {}),
      processes: this.processes.list(),
      clients: [...this.clients].filter((c) => c.kind).length,
      idleStopMinutes: this.idleStopMinutes,
    };
  }

  /**
   * Stops the VM; idempotent. It is suspended for the next `up` when it can be (its processes
   * that hold the folder are ended, the rest wait in its saved memory); else it stops.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.setState('stopping');
    this.startAbort.abort();
    const session = this.session;
    this.session = undefined;
    await session
      ?.stop({ suspend: suspendEnabled() })
      .catch((err: unknown) => this.log(`stopping the VM: ${isMicrovmError(err) ? err.message : String(err)}`));
    this.setState('stopped');
  }
}

/** MICROVM_SUSPEND=0 turns warm reopen off: stops end the VM and every open boots afresh. */
export function suspendEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.MICROVM_SUSPEND !== '0';
}
