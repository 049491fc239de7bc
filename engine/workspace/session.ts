import type { ExecChild } from '../agent/exec-child';
import { resolveContainerEnv } from '../devcontainer/resolve';
import { resolveImageRef } from './image-source';
import type { WorkspacePlan } from '../devcontainer/plan';
import { withImageMetadata } from '../devcontainer/image-metadata';
import { formatProblem, Problems } from '../devcontainer/problems';
import { BuildOptions, BuildProgress, Image } from '../api/image';
import type { Pool } from '../pool/pool';
import type { VmBackend } from '../backend/types';
import { refuseLessIsolated } from './isolation';
import type { ServiceLink } from '../qemu/network';
import { onAbort, throwIfAborted } from '../abort';
import { MicrovmError } from '../errors';
import type { Vm } from '../vm/vm';
import type { GuestListener } from '../agent/port-watch';
import { probeUserEnv } from './user-env';
import { userInfo, UserInfo } from '../vm/user';
import { Lifecycle, LifecycleEvents, LifecycleState, pendingHooks } from './lifecycle';
import { OpenedForward, PortForwards, PortForwardsEvents, PortNotices } from './port-forwards';
import { hostCertificates, installHostCertificates, tlsFailureHint } from './host-certificates';
import { describeEgress } from '../egress/log';
import { appendEgressLog } from './egress-log';
import type { EgressAnswer } from '../egress/ask';
import { approveEgressName } from './record';
import { type ProjectionRun, TypeProjector } from './type-projector';
import type { WarmSnapshots } from './warm-snapshot';
import { startWarm, suspendWarm, WarmStart } from './warm-start';
import type { ComposePlan } from '../devcontainer/compose-plan';
import { ComposeServices, type ServiceForward } from './services/compose-services';
import { startServices } from './services/start';
import { startLoopbackRelay } from './services/loopback-relay';
import { mainArgv } from '../compose/command';

const OPEN_STEP = 'opening the workspace';

/** How a Session starts its VM. */
export interface SessionOptions {
  /** Warm reopen: the workspace VM is suspended at stop({ suspend: true }) and resumed at the next start. */
  warm?: WarmSnapshots;
  /**
   * The hypervisor the workspace VM and a compose workspace's other services run on (default:
   * QEMU). Tests hand a fake here (test/helpers/fake-backend.ts).
   */
  backend?: VmBackend;
}

/** What a session tells the extension; the extension turns these into UI. */
export interface SessionEvents extends PortNotices, Omit<LifecycleEvents, 'progress'> {
  /** A line for the log. */
  log(line: string): void;
  /** The image is being baked (its first boot and snapshot). */
  baking(): void;
  /** The workspace VM is booting. */
  booting(): void;
  /** Forwards or guest listeners changed: the Ports view should refresh. */
  portsChanged(): void;
  /** The VM ended on its own (QEMU died, the guest panicked); the error says why, quoting the guest's console. */
  exited(error: Error): void;
  /**
   * network 'allowlist': the guest asked for a name outside the list. Answer 'once' (this VM),
   * 'always' (approved for the folder too) or 'deny'. Absent: refused without asking.
   */
  askEgress?(name: string, port: number): Promise<EgressAnswer>;
  /** QEMU paused the VM because the host disk holding a volume is full; resume() once space is freed. */
  hostDiskFull?(message: string): void;
  /** A compose service's own output (one channel per service). */
  serviceOutput?(service: string, chunk: Buffer): void;
  /** A compose service stopped while the workspace runs; the message quotes its last lines, escaped. */
  serviceCrashed?(service: string, message: string): void;
}

/**
 * One workspace's VM: the image, its pool of one, the VM and its forwards (PortForwards).
 * It does not know VS Code; the extension drives it and renders what it reports.
 */
/** The container's disk for its root changes: a sparse file, so only what is written takes space. */
const CONTAINER_DISK_MIB = 16384;

/** One workspace VM from start to stop: its image, pool, lifecycle hooks, port forwards, type projection and compose services. The supervisor owns it. */
export class Session {
  private pool: Pool | undefined;
  private vm: Vm | undefined;
  private ports: PortForwards | undefined;
  private lifecycle: Lifecycle | undefined;
  private types: TypeProjector | undefined;
  /** Project the VM's node_modules types onto the host folder (microvm.typeProjection); set before start(). */
  typeProjection = true;
  /** remoteEnv with `${containerEnv:...}` resolved from the VM's environment; unset (null) entries dropped. */
  private remoteEnv: Record<string, string> = {};
  /** remoteEnv's `null` entries: unset in terminals and hooks, the image's value included. */
  private unsetEnv: string[] = [];
  private stopped = false;
  /** Variables that point the guest's toolchains at the host's CAs (none the configuration or image sets itself). */
  private certificateEnv: Record<string, string> = {};
  /** How many host CAs the guest got, for the hint on a TLS failure (said once). */
  private trustedCas = 0;
  private tlsHintSaid = false;
  /** Who terminals and hooks run as: remoteUser, else containerUser, else the image's user. */
  private user: UserInfo | undefined;
  /** Aborted by stop() (and by start()'s signal): cancels the pulls, builds, bake and boot in progress. */
  private readonly abort = new AbortController();
  /** Where progress steps go while start() runs (the progress notification). */
  onProgress: (step: string) => void = () => undefined;

  /** Warm reopen (options.warm): how this start's VM came up, for the suspend at stop. */
  private warmStart: WarmStart | undefined;
  /** The disk keeping the container's root changes, once the image is known. */
  private rootVolume: string | undefined;
  /** A compose workspace's other services, started before the workspace VM. */
  private services: ComposeServices | undefined;

  /**
   * The image's own metadata (its devcontainer.metadata label) joins the plan once the image
   * is known. With `options.warm`, the VM is a suspendable q35 workspace VM: start() resumes
   * a suspended one when it fits, and stop({ suspend: true }) suspends it.
   */
  constructor(
    public plan: WorkspacePlan,
    private readonly events: SessionEvents,
    private readonly state: LifecycleState,
    private readonly options: SessionOptions = {},
  ) {}

  /** The workspace VM; throws when it is not running. */
  get running(): Vm {
    if (!this.vm) throw new Error('the MicroVM is not running');
    return this.vm;
  }

  /** Whether the workspace VM runs and no stop has begun. */
  get isRunning(): boolean {
    return this.vm !== undefined && !this.stopped;
  }

  /**
   * Builds (or reuses) the image, then boots or restores a VM. stop() meanwhile aborts the
   * pull, build, bake or boot in progress, and start() rejects with CancelledError; aborting
   * `options.signal` does the same (a stop()) and start() rejects with E_ABORTED.
   */
  async start(options: { signal?: AbortSignal } = {}): Promise<Vm> {
    const unlink = onAbort(options.signal, () => void this.stop());
    try {
      return await this.boot();
    } catch (err) {
      // The services started for a workspace VM that did not come up go with it.
      await this.services?.stop();
      throwIfAborted(options.signal, OPEN_STEP);
      throw this.stopped ? new CancelledError() : err;
    } finally {
      unlink();
    }
  }

  /**
   * The workspace's image only (a Dockerfile built, features installed, the user looked up,
   * the root disk and snapshot baked), with no VM for the workspace: `microvm build`.
   */
  async image(): Promise<Image> {
    try {
      return await this.buildImage();
    } catch (err) {
      throw this.stopped ? new CancelledError() : err;
    }
  }

  private async boot(): Promise<Vm> {
    if (this.plan.compose)
      this.services = await startServices(
        this.plan,
        this.plan.compose,
        this.events,
        (step) => this.onProgress(step),
        this.abort.signal,
        this.options.backend,
      );
    this.checkStopped();
    const image = await this.buildImage();
    this.checkStopped();
    this.onProgress('Starting the VM');
    const vm = this.options.warm ? await this.warmVm(image, this.options.warm) : await this.pooledVm(image);
    if (this.stopped) {
      await vm.release();
      this.checkStopped();
    }
    this.vm = vm;
    vm.onExit((error) => {
      if (!this.stopped) this.events.exited(error);
    });
    vm.onHostDiskFull((error) => this.events.hostDiskFull?.(error.message));
    this.watchEgress(vm);
    vm.onFileEventProblem((p) => this.events.log(`file events: ${p.message}`));
    vm.onShareRefusal((r) =>
      this.events.log(
        `the shared folder refused the VM: ${r.op} ${JSON.stringify(r.path)} (${r.errno}): ${r.reason}${r.heldBack ? ` (and ${r.heldBack} more)` : ''}`,
      ),
    );
    this.events.log(`VM ${vm.id} is running under ${vm.accel.accel} (${vm.accel.reason})`);
    this.onProgress('Forwarding ports');
    this.ports = new PortForwards(vm, this.plan.ports, this.portEvents());
    await this.ports.start();
    this.certificateEnv = await this.trustHostCertificates(vm, envOf(image));
    const remoteEnv = resolveContainerEnv(this.plan.remoteEnv, envOf(image));
    this.remoteEnv = setEnv(remoteEnv);
    this.unsetEnv = Object.keys(remoteEnv).filter((name) => remoteEnv[name] === null);
    const user = this.user as UserInfo;
    this.events.log(
      `terminals and hooks run as ${user.name} (${user.uid}:${user.gid}${user.groups.length > 0 ? `, groups ${user.groups.join(',')}` : ''})`,
    );
    // A resumed VM is the same container, still running: its hosts are in place and its start hooks ran.
    const resumed = this.warmStart?.resumed ?? false;
    if (!resumed) await this.addHosts(vm);
    if (this.services && this.plan.compose) {
      await this.services.attachPrimary(vm);
      const of = this.plan.compose.primaryNetworkOf;
      if (of)
        startLoopbackRelay(
          vm,
          of,
          this.services.linksFor(this.plan.compose.primary),
          this.services.addressOf(of),
          (line) => this.events.log(line),
        );
      this.startPrimaryCommand(vm, this.plan.compose, image);
    }
    await this.runLifecycle(vm, !resumed);
    if (this.typeProjection)
      this.types = TypeProjector.start(vm, this.plan, this.hooksSettled(), (line) => this.events.log(line));
    return vm;
  }

  private async pooledVm(image: Image): Promise<Vm> {
    this.events.booting();
    this.pool = image.pool({ min: 1, max: 1, acquireTimeoutMs: 0 });
    this.pool.onEvent((event) =>
      this.events.log(
        event.type === 'vm-failed'
          ? `VM ${event.vmId} failed (${event.error.code}): ${event.error.message}`
          : `a VM failed to start: ${event.error.message}`,
      ),
    );
    return this.pool.acquire({ signal: this.abort.signal });
  }

  private async warmVm(image: Image, warm: WarmSnapshots): Promise<Vm> {
    const volumes = [...this.plan.volumes.map((v) => v.name), ...(this.rootVolume ? [this.rootVolume] : [])];
    this.warmStart = await startWarm(
      image,
      warm,
      volumes,
      (line) => this.events.log(line),
      () => this.events.booting(),
    );
    return this.warmStart.vm;
  }

  /**
   * The image, with `${containerEnv:...}` in containerEnv resolved from the image's own
   * environment (a second Image.build of the same image is a cache lookup).
   */
  private async buildImage(): Promise<Image> {
    const options = {
      ...this.buildOptions(),
      ref: await this.imageRef(),
      ...(this.options.backend ? { backend: this.options.backend } : {}),
    };
    // Only to read the image's users from its root disk: no snapshot, no VM.
    const base = await Image.build({ ...options, env: {}, mounts: [], volumes: [], tmpfs: [], snapshot: false });
    this.checkStopped();
    await refuseLessIsolated(base, this.options.backend, 'the image');
    this.user = await this.remoteUser(base);
    const { containerUser } = this.plan;
    const container = await this.state.useImage?.(base.manifestDigest);
    this.rootVolume = container?.rootVolume;
    if (container) {
      this.events.log(
        container.fresh
          ? `a new container from ${base.manifestDigest}: its once-only hooks run, and what it changes outside the folder and the volumes is kept on ${container.rootVolume}`
          : `the container of ${base.manifestDigest} goes on: its changes are kept on ${container.rootVolume}`,
      );
    }
    return Image.build({
      ...options,
      mounts: this.ownedMounts(this.user),
      env: resolveContainerEnv(this.plan.containerEnv, envOf(base)),
      ...(containerUser ? { user: containerUser } : {}),
      ...(container ? { rootVolume: { name: container.rootVolume, sizeMib: CONTAINER_DISK_MIB } } : {}),
      ...(this.services && this.plan.compose
        ? { serviceLinks: this.services.linksFor(this.plan.compose.primary) }
        : {}),
    });
  }

  /**
   * Who terminals and hooks run as: remoteUser, else containerUser, else the image's USER
   * (root when none), looked up in the image's own /etc/passwd and /etc/group, read from its
   * root disk before any VM of it boots. A user the image lacks is a configuration error.
   */
  private async remoteUser(image: Image): Promise<UserInfo> {
    const read = async (file: string): Promise<string> => (await image.readFile(file)) ?? '';
    const { containerUser, remoteUser } = this.plan;
    const lookUp = (field: string, spec: string): Promise<UserInfo> =>
      userInfo(
        spec,
        read,
        (_, why) =>
          new MicrovmError(
            'E_CONFIG',
            `devcontainer.json's ${field} ${JSON.stringify(spec)} is not a user of the image (${why}), so the workspace cannot run as it: ` +
              `create the user in the Dockerfile (useradd) or with a feature such as common-utils, or remove ${field}`,
          ),
      );
    if (containerUser) await lookUp('containerUser', containerUser);
    if (remoteUser) return lookUp('remoteUser', remoteUser);
    return containerUser ? lookUp('containerUser', containerUser) : userInfo(image.config.user ?? '', read);
  }

  /**
   * The shares, owned in the guest by the remote user when it is not root
   * (updateRemoteUserUID, the default): what it creates lands owned by the folder's owner on the host.
   */
  private ownedMounts(user: UserInfo): WorkspacePlan['mounts'] {
    if (!this.plan.updateRemoteUserUID || user.uid === 0 || user.uid > 65535 || user.gid > 65535)
      return this.plan.mounts;
    this.events.log(
      `the shared folder belongs to ${user.name} (${user.uid}:${user.gid}) in the VM: what it creates is the folder owner's on the host`,
    );
    return this.plan.mounts.map((m) => ({ ...m, guestOwner: { uid: user.uid, gid: user.gid } }));
  }

  /**
   * The CAs this host added (microvm.trustHostCertificates) into the guest's store, and the
   * variables that point toolchains at them, except those the image or the configuration set.
   */
  private async trustHostCertificates(vm: Vm, imageEnv: Record<string, string>): Promise<Record<string, string>> {
    const certs = hostCertificates(this.plan.trustCertificates);
    for (const line of certs.skipped.slice(0, 5)) this.events.log(`host certificates: ${line}`);
    if (certs.skipped.length > 5) this.events.log(`host certificates: ${certs.skipped.length - 5} more left out`);
    this.trustedCas = certs.subjects.length;
    if (certs.subjects.length === 0) return {};
    this.onProgress("Trusting the host's certificate authorities");
    const env = await installHostCertificates(vm, certs, (line) => this.events.log(line));
    this.events.log(`the VM trusts the ${certs.subjects.length} CA(s) this host added: ${certs.subjects.join('; ')}`);
    const own = new Set([...Object.keys(imageEnv), ...Object.keys(this.plan.remoteEnv)]);
    return Object.fromEntries(Object.entries(env).filter(([name]) => !own.has(name)));
  }

  /** network 'allowlist' or 'learn': each connection the guest asked for, in the log and the workspace's egress log. */
  private watchEgress(vm: Vm): void {
    const { network, egressLog } = this.plan;
    if (network !== 'allowlist' && network !== 'learn') return;
    this.events.log(
      network === 'learn'
        ? 'network learn: the VM reaches any public host name through the egress proxy, and each one is recorded (microvm net-policy)'
        : `network allowlist: the VM reaches only ${this.plan.allow.length > 0 ? this.plan.allow.join(', ') : 'nothing'} through the egress proxy`,
    );
    vm.onEgress((event) => {
      this.events.log(`egress ${describeEgress(event)}`);
      if (egressLog) appendEgressLog(egressLog, { ...event, mode: network });
    });
    const ask = this.events.askEgress;
    const folder = this.plan.hostFolder;
    if (network === 'allowlist' && ask) {
      vm.askForEgress(async (name, port) => {
        const answer = await ask(name, port);
        this.events.log(`egress: ${name}:${port} is not in the allowlist; the user said ${answer}`);
        if (answer === 'always' && folder) await approveEgressName(folder, name);
        return answer;
      });
    }
  }

  /** Hook output that shows an untrusted TLS issuer gets one log line with the fix. */
  private noticeTlsFailure(chunk: Buffer): void {
    if (this.tlsHintSaid) return;
    const hint = tlsFailureHint(chunk.toString('utf8'), this.plan.trustCertificates, this.trustedCas);
    if (!hint) return;
    this.tlsHintSaid = true;
    this.events.log(hint);
  }

  /** `--add-host` entries, appended to the guest's /etc/hosts (on its writable root layer). */
  private async addHosts(vm: Vm): Promise<void> {
    const compose = this.plan.compose;
    const hosts = [...this.plan.hosts, ...(this.services && compose ? this.services.hostsFor(compose.primary) : [])];
    if (hosts.length === 0) return;
    const current = (await vm.readFile('/etc/hosts').catch(() => Buffer.alloc(0))).toString('utf8');
    const lines = hosts.map((h) => `${h.address}\t${h.name}`).join('\n');
    await vm.writeFile('/etc/hosts', `${current}${current.endsWith('\n') || current === '' ? '' : '\n'}${lines}\n`, {
      mode: 0o644,
    });
  }

  /** The image's reference (engine/workspace/image-source.ts); its own metadata label merges into the plan (its hooks run first). */
  private async imageRef(): Promise<string | undefined> {
    const { ref, metadata } = await resolveImageRef({
      plan: this.plan,
      events: this.events,
      onProgress: (step) => this.onProgress(step),
      signal: this.abort.signal,
    });
    const problems = new Problems();
    this.plan = withImageMetadata(this.plan, metadata, problems);
    for (const problem of problems.list) this.events.log(formatProblem("the image's devcontainer.metadata", problem));
    return ref;
  }

  /** The hooks of this start (postStart only when the container started), with the environment a login shell of the guest has, then remoteEnv. */
  private async runLifecycle(vm: Vm, started: boolean): Promise<void> {
    const user = this.user as UserInfo;
    const phase = { start: started, attach: true };
    // The probe's environment is for hooks only: a start with none to run (a resumed VM, often) skips its shell.
    const probed =
      pendingHooks(this.plan, this.state.done, phase).length > 0
        ? await probeUserEnv(vm, this.plan.userEnvProbe, user, this.plan.workspaceFolder)
        : { env: {} };
    if (probed.problem)
      this.events.log(`userEnvProbe (${this.plan.userEnvProbe}): ${probed.problem}; hooks get remoteEnv only`);
    const env = withoutKeys({ ...this.userEnv(), ...probed.env, ...this.remoteEnv }, this.unsetEnv);
    const where = { cwd: this.plan.workspaceFolder, env, unsetEnv: this.unsetEnv, user: runAs(user) };
    const events = this.events;
    this.lifecycle = new Lifecycle(vm, this.plan, where, this.state, {
      log: (line) => events.log(line),
      output: (label, chunk) => {
        this.noticeTlsFailure(chunk);
        events.output(label, chunk);
      },
      started: (outcome) => events.started?.(outcome),
      finished: (outcome) => events.finished?.(outcome),
      hookFailed: (description, retry) => events.hookFailed(description, retry),
      progress: (step) => this.onProgress(step),
    });
    await this.lifecycle.start(phase);
  }

  /** The session's events as PortForwards hears them; the notices pass through unchanged. */
  private portEvents(): PortForwardsEvents {
    const events = this.events;
    return {
      log: (line) => events.log(line),
      changed: () => events.portsChanged(),
      portForwarded: (port, action) => events.portForwarded?.(port, action),
      confirmSameHostPort: (port) => events.confirmSameHostPort?.(port) ?? Promise.resolve(false),
      portsSummary: (ports) => events.portsSummary?.(ports),
    };
  }

  /** Resolves when the lifecycle hooks that run after the workspace was handed over have ended. */
  async hooksSettled(): Promise<void> {
    await this.lifecycle?.background;
  }

  /** Projects the VM's node_modules types onto the host now ("MicroVM: Refresh Type Definitions"); undefined when the projection is off. */
  async refreshTypes(): Promise<ProjectionRun | undefined> {
    if (!this.types)
      this.events.log(
        'type projection: off (microvm.typeProjection), or no volume covers a node_modules in the shared folder',
      );
    return this.types?.refresh('asked');
  }

  /** Resolves once every type projection started so far has ended, with the last run. */
  async typesSettled(): Promise<ProjectionRun | undefined> {
    return this.types?.settled();
  }

  /** Resumes the VM after QEMU paused it on a full host disk. */
  async resume(): Promise<void> {
    await this.running.resume();
  }

  /** Starts a guest process with a pty in the workspace folder, as the remote user with remoteEnv. */
  spawnPty(argv: string[], size: { rows: number; cols: number }, env: Record<string, string> = {}): ExecChild {
    return this.spawnAsUser(argv, {
      tty: true,
      winsize: size,
      env: { TERM: 'xterm-256color', COLORTERM: 'truecolor', ...env },
    });
  }

  /** Starts a guest process with pipes in the workspace folder, as the remote user with remoteEnv (`microvm run --workspace-folder`). */
  spawn(argv: string[], env: Record<string, string> = {}): ExecChild {
    return this.spawnAsUser(argv, { env });
  }

  private spawnAsUser(
    argv: string[],
    options: { tty?: boolean; winsize?: { rows: number; cols: number }; env: Record<string, string> },
  ): ExecChild {
    const user = this.user;
    return this.running.spawn({
      argv,
      ...(options.tty ? { tty: true, winsize: options.winsize } : {}),
      cwd: this.plan.workspaceFolder,
      env: withoutKeys({ ...options.env, ...this.userEnv(), ...this.remoteEnv }, this.unsetEnv),
      unsetEnv: this.unsetEnv,
      timeoutMs: 0,
      ...(user ? { user: runAs(user) } : {}),
    });
  }

  /** The compose services' forwards that forwardPorts asked for (`db:5432`). */
  get serviceForwards(): ServiceForward[] {
    return this.services?.forwards ?? [];
  }

  /** A compose workspace's other services and their VMs, in start order (none for a single-VM workspace). */
  get serviceVms(): ReadonlyArray<{ service: string; vm: Vm }> {
    return this.services?.vms ?? [];
  }

  /**
   * The links the workspace VM reaches the other compose services through: each service
   * port's address in the guest and the host port of its relay (none for a single-VM workspace).
   */
  get serviceLinks(): ServiceLink[] {
    return this.services && this.plan.compose ? this.services.linksFor(this.plan.compose.primary) : [];
  }

  /**
   * overrideCommand false: the primary service's own main process runs in the workspace VM, as
   * the container's would: its entrypoint and command combined with the image's, in its
   * working_dir (else the image's), its output in the service's channel.
   */
  private startPrimaryCommand(vm: Vm, compose: ComposePlan, image: Image): void {
    const main = compose.primaryMain;
    if (!main) return;
    const argv = mainArgv(main, image.config);
    if (argv.length === 0) {
      this.events.log(
        `service ${compose.primary}: overrideCommand is false, but neither the image nor the compose file gives a command, so nothing runs`,
      );
      return;
    }
    this.events.log(
      `service ${compose.primary}: running its command ${JSON.stringify(argv)}${main.workingDir ? ` in ${main.workingDir}` : ''} (overrideCommand is false)`,
    );
    const child = vm.spawn({
      argv,
      timeoutMs: 0,
      env: this.plan.containerEnv,
      ...(main.workingDir ? { cwd: main.workingDir } : {}),
    });
    const pump = async (read: () => Promise<Buffer>) => {
      for (let chunk = await read(); chunk.length > 0; chunk = await read())
        this.events.serviceOutput?.(compose.primary, chunk);
    };
    void pump(() => child.readStdout()).catch(() => undefined);
    void pump(() => child.readStderr()).catch(() => undefined);
    void child.wait().then(
      (r) => {
        if (!this.stopped) this.events.log(`service ${compose.primary}: its command exited with code ${r.exitCode}`);
      },
      () => undefined,
    );
  }

  /** Who terminals and hooks run as, once start() looked it up. */
  get remoteUserName(): string | undefined {
    return this.user?.name;
  }

  /** The remote user's login shell (terminals start it). */
  get shell(): string {
    return this.user?.shell ?? '/bin/sh';
  }

  /** HOME, USER and SHELL of the remote user, as a login would set them, and the host CAs' variables. */
  private userEnv(): Record<string, string> {
    const user = this.user;
    return {
      ...this.certificateEnv,
      ...(user ? { HOME: user.home, USER: user.name, LOGNAME: user.name, SHELL: user.shell } : {}),
    };
  }

  /**
   * Forwards a guest port the user asked for: the same host port when free, unless it is a
   * well-known service port (then a free one, and the user is asked about the same one).
   */
  forward(guestPort: number): Promise<OpenedForward> {
    return this.forwarding.forwardByUser(guestPort);
  }

  /** Stops forwarding a guest port; `byUser` keeps auto-forwarding from bringing it back. */
  unforward(guestPort: number, byUser = false): Promise<void> {
    return this.forwarding.unforward(guestPort, byUser);
  }

  /** Moves a forward to the same host port as its guest port; false if that host port is taken. */
  useSameHostPort(guestPort: number): Promise<boolean> {
    return this.forwarding.useSameHostPort(guestPort);
  }

  /** What the Ports view shows: guest listeners, forwards (guest -> host port), and why a port is not forwarded. */
  portState(): {
    listeners: readonly GuestListener[];
    forwards: Map<number, number>;
    notForwarded: Map<number, string>;
    primaryService?: string;
    serviceForwards?: ServiceForward[];
  } {
    const ports = this.ports;
    if (!ports || this.stopped) return { listeners: [], forwards: new Map(), notForwarded: new Map() };
    const compose = this.plan.compose
      ? { primaryService: this.plan.compose.primary, serviceForwards: this.serviceForwards }
      : {};
    return {
      listeners: ports.guestListeners,
      forwards: ports.hostPorts(),
      notForwarded: ports.notForwarded(),
      ...compose,
    };
  }

  /** Resolves once every port change seen so far has been applied. */
  async portsSettled(): Promise<void> {
    await this.ports?.settled();
  }

  private get forwarding(): PortForwards {
    if (!this.ports || this.stopped) throw new Error('the MicroVM is not running');
    return this.ports;
  }

  /**
   * Stops the VM and everything it owns; safe to call at any point of start(). With
   * `suspend` (and options.warm), a running VM is suspended for the next open instead.
   */
  async stop(options: { suspend?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.ports?.stop();
    this.types?.stop();
    const vm = this.vm;
    this.vm = undefined;
    try {
      // The pool first: releasing first would let it boot a replacement for the released VM.
      await this.pool?.shutdown();
      const warm = this.options.warm;
      if (
        options.suspend &&
        warm &&
        vm &&
        this.warmStart?.vm === vm &&
        (await suspendWarm(warm, this.warmStart, (line) => this.events.log(line)))
      )
        return;
      await vm?.release().catch(() => undefined);
    } finally {
      // The services (and their relays) last: the workspace VM may be linked to them until it stops.
      await this.services?.stop();
    }
  }

  private buildOptions(): BuildOptions {
    const { plan } = this;
    let bakeAnnounced = false;
    return {
      signal: this.abort.signal,
      memoryMib: plan.memoryMib,
      vcpus: plan.vcpus,
      ...(plan.platform ? { platform: plan.platform } : {}),
      network: plan.network,
      allow: plan.allow,
      env: plan.containerEnv,
      mounts: plan.mounts,
      volumes: plan.volumes,
      tmpfs: plan.tmpfs.map((t) => ({ mountPoint: t.target, ...(t.sizeMib ? { sizeMib: t.sizeMib } : {}) })),
      onProgress: (event: BuildProgress) => {
        const step = progressStep(event);
        if (event.phase === 'bake' && !bakeAnnounced) {
          bakeAnnounced = true;
          this.events.baking();
        }
        if (step) {
          this.onProgress(step);
          this.events.log(step);
        }
      },
    };
  }

  private checkStopped(): void {
    if (this.stopped) throw new CancelledError();
  }
}

/** The image's environment (KEY=VALUE strings) as a record. */
function envOf(image: Image): Record<string, string> {
  return Object.fromEntries(
    image.config.env.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
  );
}

/** remoteEnv without its unset (null) entries. */
function setEnv(env: Record<string, string | null>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== null));
}

/** Thrown when the user cancelled a start (a question answered Cancel). */
export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

/** A progress line for the notification, or undefined for events not worth showing. */
export function progressStep(event: BuildProgress): string | undefined {
  switch (event.phase) {
    case 'resolve':
      return `Resolving image ${event.ref}`;
    case 'cleanup':
      return `Removed what a killed process left: ${event.removed.join(', ')}`;
    case 'rebuild':
      return `Rebuilding the root disk: ${event.reason}`;
    case 'rootfs':
      return event.step === 'done' ? undefined : `Building the root disk (${mib(event.bytes)} MiB)`;
    case 'ready':
      return event.cached ? 'Root disk ready (cached)' : `Root disk built in ${(event.ms / 1000).toFixed(1)} s`;
    case 'bake':
      return `Baking a snapshot: ${event.reason}`;
    case 'snapshot':
      return event.baked ? 'Snapshot baked' : 'Using the baked snapshot';
    case 'pull':
      return `Pulling layer ${event.digest.slice(7, 19)}: ${mib(event.bytes)} of ${mib(event.total)} MiB`;
  }
}

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}

/** The ids a process of the workspace runs with. */
function runAs(user: UserInfo): { uid: number; gid: number; groups: number[] } {
  return { uid: user.uid, gid: user.gid, groups: user.groups };
}

/** `env` without the keys in `names`. */
function withoutKeys(env: Record<string, string>, names: string[]): Record<string, string> {
  return names.length === 0 ? env : Object.fromEntries(Object.entries(env).filter(([key]) => !names.includes(key)));
}
