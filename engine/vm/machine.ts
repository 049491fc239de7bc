import { AgentClient } from '../agent/client';
import { AgentConnection } from '../agent/connection';
import { chooseAccel } from '../accel/detect';
import { AccelChoice } from '../accel/decide';
import { onAbort, throwIfAborted } from '../abort';
import { isMicrovmError, MicrovmError } from '../errors';
import { guestAssets } from '../kernel/assets';
import { buildQemuArgv } from '../qemu/argv';
import { guestNetworkEnv, usesEgressProxy } from '../qemu/network';
import { EgressEvent, EgressProxy, startEgressProxy } from '../egress/proxy';
import { attributeConnection, hostAttributionSources } from '../egress/attribution';
import type { EgressAsk } from '../egress/ask';
import { findQemu } from '../qemu/binary';
import { hostTscKhz } from '../qemu/host-tsc';
import { qemuUser } from '../qemu/run-as';
import { SupervisedProcess } from '../host/supervised-process';
import { TailBuffer } from '../host/tail-buffer';
import { ProcessRequest } from '../agent/process';
import { QmpClient } from '../qemu/qmp';
import { createStateDir, StateDir } from './state-dir';
import { setTimeout as delay } from 'node:timers/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { GuestArch, QemuSpec } from '../qemu/types';
import { migrateIn, migrateOut } from './migration';
import { resolveUser, UserIds } from './user';
import { ShareRefusal, Storage } from '../mount';
import type { FileEventStats } from '../watch/relay';
import { HealthVerdict, HealthWatch } from './health';
import { plugShares, unplugShares } from './hotplug';
import { openDiskFds } from './disk-fds';
import * as fs from 'node:fs';
import type { BackendVm, BootSpec, Capabilities, RestoreSource, ResumeSource } from '../backend/types';
import { qemuCapabilities } from '../backend/capabilities';

const BOOT_TIMEOUT_MS = { kvm: 20_000, hvf: 20_000, tcg: 60_000 } as const;
const QUIT_GRACE_MS = 2000;
const BOOT_STEP = 'booting the VM';
const GUEST_SHUTDOWN_MS = 5000;
/** How long a lost agent connection waits for QEMU's exit status to explain it. */
const LOSS_EXPLAIN_WAIT_MS = 1000;

/**
 * One running QEMU process with its agent connection and QMP socket. Owns its state
 * directory; everything is torn down exactly once, however the VM ends.
 */
export class Machine implements BackendVm {
  private readonly exitListeners = new Set<(error: MicrovmError) => void>();
  private stopping: Promise<void> | undefined;
  /** Set when the health check found the agent unresponsive: the error every call and onExit get. */
  private failure: MicrovmError | undefined;
  private readonly health: HealthWatch;
  /** What QEMU can do under this VM's accelerator (engine/backend/capabilities.ts). */
  readonly capabilities: Capabilities;

  private constructor(
    readonly state: StateDir,
    readonly accel: AccelChoice,
    private readonly qemu: SupervisedProcess,
    readonly agent: AgentClient,
    private readonly qmp: QmpClient,
    private readonly memory: QemuSpec['memory'],
    readonly bootMs: number,
    private readonly storage: Storage,
    readonly arch: GuestArch,
  ) {
    this.capabilities = qemuCapabilities(accel, arch);
    this.health = new HealthWatch(
      state.id,
      qmp,
      agent,
      storage.devices.volumes.map((v) => v.file),
      (error) => void this.fail(error),
    );
    void qemu.exited.then(async () => {
      await storage.release();
      const error = this.exitError();
      agent.connection.abort(error);
      qmp.close();
      state.remove();
      for (const listener of this.exitListeners) listener(error);
    });
  }

  /**
   * Boots a VM, or restores one from a snapshot when `restore` is given: then QEMU starts
   * paused, loads the device state, and the agent gets fresh entropy and the current time.
   */
  static async boot(spec: BootSpec, restore?: RestoreSource | ResumeSource): Promise<Machine> {
    const started = Date.now();
    const arch = spec.arch ?? 'x86_64';
    const assets = await guestAssets(arch);
    const qemuBinary = await findQemu(arch);
    const accel = await chooseAccel(assets, qemuBinary);
    const hasStorage = Boolean(spec.mounts?.length || spec.volumes?.length || spec.tmpfs?.length || spec.rootVolume);
    if (restore && restore.kind !== 'suspended' && hasStorage) {
      throw new MicrovmError(
        'E_BAD_OPTION',
        'a VM with mounts or volumes cannot be restored from a snapshot (QEMU 7.2 cannot migrate vhost-user-fs); boot it fresh',
      );
    }
    if (spec.machine === 'q35' && arch !== 'x86_64') {
      throw new MicrovmError(
        'E_BAD_OPTION',
        `a workspace VM on the q35 machine needs an x86_64 guest, and this image is ${arch}; open it without warm reopen`,
      );
    }
    if (restore?.kind === 'suspended' && spec.machine !== 'q35') {
      throw new MicrovmError(
        'E_BAD_OPTION',
        'only a q35 workspace VM can be resumed from a suspended state; boot it fresh',
      );
    }
    const badArgs = (spec.kernelArgs ?? []).filter((word) => !/^[^\s"']+$/.test(word));
    if (badArgs.length > 0) {
      throw new MicrovmError(
        'E_BAD_OPTION',
        `kernel command-line words ${JSON.stringify(badArgs)} are empty or hold whitespace or quotes; pass each word without them`,
      );
    }
    throwIfAborted(spec.signal, BOOT_STEP);
    const runAs = qemuUser();
    const state = createStateDir(runAs);
    let memory: QemuSpec['memory'];
    try {
      memory = memoryFor(state, restore);
    } catch (err) {
      state.remove();
      throw err;
    }
    let storage: Storage;
    try {
      storage = await Storage.attach(
        spec.mounts ?? [],
        spec.volumes ?? [],
        spec.tmpfs ?? [],
        spec.rootVolume,
        (i) => state.file('virtiofsSocket').replace('{n}', String(i)),
        assets.launcher,
      );
    } catch (err) {
      state.remove();
      throw err;
    }
    const hotplug = spec.machine === 'q35';
    const disks = hotplug ? openDiskFds(storage.devices.volumes) : undefined;
    const argv = buildQemuArgv({
      arch,
      machine: spec.machine,
      hotplugSlots: storage.devices.virtiofs.length,
      accel: accel.accel,
      memoryMib: spec.memoryMib,
      vcpus: spec.vcpus,
      kernel: assets.kernel,
      initrd: assets.initrd,
      cmdline: [...storage.cmdline, ...(spec.kernelArgs ?? [])],
      rootDisk: spec.rootDisk,
      agentSocket: state.file('agentSocket'),
      qmpSocket: state.file('qmpSocket'),
      seccomp: qemuBinary.seccomp,
      runAs: runAs?.name,
      network: spec.network,
      serviceLinks: spec.serviceLinks,
      tscKhz: hostTscKhz(),
      memory,
      incoming: restore && state.file('migrateIn'),
      ...storage.devices,
      ...(disks ? { virtiofs: [], volumes: disks.volumes } : {}),
    });
    let proxy: EgressProxy | undefined;
    try {
      proxy = usesEgressProxy(spec.network) ? await startEgressProxy(spec) : undefined;
    } catch (err) {
      for (const fd of disks?.fds ?? []) fs.closeSync(fd);
      await storage.release();
      state.remove();
      throw err;
    }
    let qemu: SupervisedProcess;
    try {
      qemu = new SupervisedProcess(
        assets.launcher,
        qemuBinary.path,
        argv,
        guestNetworkEnv(spec.network, proxy?.port, proxy?.dnsPort, spec.serviceLinks),
        disks?.fds,
      );
    } finally {
      for (const fd of disks?.fds ?? []) fs.closeSync(fd);
    }
    void qemu.exited.then(() => proxy?.close());
    const unlinkAbort = onAbort(spec.signal, () => qemu.kill());
    const timeoutMs = (restore ? spec.restoreTimeoutMs : spec.bootTimeoutMs) ?? BOOT_TIMEOUT_MS[accel.accel];
    const bootFailure = () =>
      qemu.exitStatus &&
      new MicrovmError('E_BOOT_FAILED', `QEMU exited during ${restore ? 'restore' : 'boot'}${describeExit(qemu)}`);
    try {
      const qmp = await QmpClient.connect(state.file('qmpSocket'), timeoutMs, bootFailure);
      if (restore) await migrateIn(qmp, state.file('migrateIn'), restore.stateFile, restore.kind !== 'full');
      const plug = async () => {
        // QEMU connects to a hot-plugged share's socket after -runas dropped its privileges:
        // the socket is handed to QEMU's user, the only other one that may connect.
        if (runAs) for (const share of storage.devices.virtiofs) fs.chownSync(share.socket, runAs.uid, runAs.gid);
        await plugShares(qmp, storage.devices.virtiofs);
      };
      // A resumed guest is up already: its devices are plugged while its agent reconnects, so
      // that the guest probes them meanwhile. A booting guest gets them once it answers.
      const plugging = restore?.kind === 'suspended' ? plug() : undefined;
      plugging?.catch(() => undefined);
      const { connection, info } = await AgentConnection.open(state.file('agentSocket'), {
        timeoutMs,
        abortIf: bootFailure,
        describeLoss: async () => {
          await Promise.race([qemu.exited, delay(LOSS_EXPLAIN_WAIT_MS)]);
          return lossError(qemu);
        },
      });
      const agent = new AgentClient(connection, info);
      const agentMs = Date.now() - started;
      // Pipelined, not awaited (it costs ~12 ms of cold guest code under TCG): the agent
      // handles frames in order, so RESTORED (the old host's streams ended, fresh entropy, the
      // wall clock) takes effect before any request the caller sends next, and a refusal
      // fails those requests with E_RESTORE_FAILED before any of their answers is read.
      const restored =
        restore &&
        agent.restored(randomBytes(64), BigInt(Date.now()) * 1_000_000n, (refusal) =>
          restoreRefused(state.id, restore, refusal),
        );
      restored?.catch(() => undefined); // handled once the machine exists, below
      if (hotplug) await (plugging ?? plug());
      await storage.mountInGuest(agent, restore?.kind === 'suspended' ? 'shares' : 'all');
      const user = await resolveUser(spec.user ?? '', async (file) => (await agent.readFile(file)).toString('utf8'));
      const machine = new Machine(state, accel, qemu, agent, qmp, memory, Date.now() - started, storage, arch);
      machine.egress = proxy;
      if (proxy && qemu.pid !== undefined) {
        const sources = hostAttributionSources(
          qemu.pid,
          async () => String(await qmp.execute('human-monitor-command', { 'command-line': 'info usernet' })),
          (guestPort) => agent.socketOwner(guestPort),
        );
        const proxyPort = proxy.port;
        proxy.attributeWith((peerPort) => attributeConnection(sources, peerPort, proxyPort));
      }
      machine.hotplug = hotplug;
      machine.agentMs = agentMs;
      machine.user = user;
      restored?.catch((err: Error) => {
        if (isMicrovmError(err, 'E_RESTORE_FAILED')) void machine.fail(err);
      });
      if (spec.workload && !restore) machine.startWorkload(spec.workload);
      unlinkAbort();
      return machine;
    } catch (err) {
      unlinkAbort();
      const exitedOnItsOwn = !spec.signal?.aborted && bootFailure();
      qemu.kill();
      await qemu.exited;
      await storage.release();
      state.remove();
      throwIfAborted(spec.signal, BOOT_STEP);
      if (exitedOnItsOwn) throw exitedOnItsOwn;
      if (err instanceof MicrovmError && err.code === 'E_BOOT_TIMEOUT') {
        throw new MicrovmError(
          'E_BOOT_TIMEOUT',
          `the VM did not become ready within ${timeoutMs} ms under ${accel.accel}${describeExit(qemu)}`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /**
   * Saves the device state to `stateFile` and leaves the VM paused. A VM whose RAM is a
   * shared file (a fresh boot) saves a template: the RAM stays in that file (`memoryFile`).
   * A clone saves everything into the state file.
   */
  async saveState(stateFile: string): Promise<'template' | 'full'> {
    const kind = this.memoryFile ? 'template' : 'full';
    await migrateOut(this.qmp, this.state.file('migrateOut'), stateFile, kind === 'template', qemuUser());
    return kind;
  }

  /** A q35 workspace VM whose shares are hot-plugged (it can be suspended). */
  hotplug = false;

  /** Milliseconds from boot()'s start until the agent answered (a restore: its state loaded), before any mount. */
  agentMs = 0;

  /**
   * Saves this q35 VM for a later resume and ends it: the shares are unmounted in the guest
   * (killing the processes that hold them) and unplugged, the device state goes to
   * `stateFile` and the RAM file is moved to `memFile` (the same tmpfs). The writable disks are
   * left exactly as the saved RAM expects them. Returns what the guest killed.
   */
  async suspend(stateFile: string, memFile: string): Promise<string[]> {
    if (!this.hotplug || !this.memoryFile) {
      throw new MicrovmError(
        'E_SUSPEND',
        `VM ${this.state.id} is not a q35 workspace VM with its RAM in a shared file, so it cannot be suspended; stop it instead`,
      );
    }
    const killed = await this.storage.unmountInGuest(this.agent);
    await unplugShares(this.qmp, this.storage.devices.virtiofs.length);
    await migrateOut(this.qmp, this.state.file('migrateOut'), stateFile, true, qemuUser());
    fs.renameSync(this.memoryFile, memFile);
    this.stopping ??= (async () => {
      this.qmp.execute('quit').catch(() => this.qemu.kill());
      await this.qemu.stop(QUIT_GRACE_MS);
      await this.storage.release();
    })();
    await this.stopping;
    return killed;
  }

  /** Resumes a VM paused by saveState, or by QEMU on a full host disk (it pauses again if the disk is still full). */
  async resume(): Promise<void> {
    await this.qmp.execute('cont');
  }

  /** The shared file holding this VM's RAM, when it has one (fresh boots). */
  get memoryFile(): string | undefined {
    return this.memory.kind === 'file' && this.memory.shared ? this.memory.path : undefined;
  }

  /** The VM's egress proxy (network 'allowlist' or 'learn'). */
  egress: EgressProxy | undefined;

  /** The last output of the workload, for logs and errors. */
  readonly workloadLog = new TailBuffer(64 * 1024);

  /** The ids processes run as (the image's User); undefined = root. */
  user: UserIds | undefined;

  private startWorkload(request: ProcessRequest): void {
    const child = this.agent.spawn({ ...request, workload: true, timeoutMs: 0, user: this.user });
    const drain = async (read: () => Promise<Buffer>) => {
      for (let chunk = await read(); chunk.length > 0; chunk = await read()) this.workloadLog.write(chunk);
    };
    void drain(() => child.readStdout());
    void drain(() => child.readStderr());
    child.wait().then(
      (result) => this.workloadLog.write(Buffer.from(`\n[workload exited: ${result.signal ?? result.exitCode}]\n`)),
      () => undefined,
    );
  }

  get id(): string {
    return this.state.id;
  }

  get alive(): boolean {
    return this.qemu.running && !this.agent.connection.closed;
  }

  get pid(): number | undefined {
    return this.qemu.pid;
  }

  /** Asks QEMU, then the agent, whether this VM can serve calls; an unresponsive one is stopped. */
  checkHealth(): Promise<HealthVerdict> {
    return this.health.check();
  }

  /** E_HOST_DISK_FULL while QEMU keeps the guest paused because a volume's host disk is full. */
  get diskFull(): MicrovmError | undefined {
    return this.health.diskFull;
  }

  /** Hears the connections the guest asked its egress proxy for (network 'allowlist' or 'learn'); returns a disposer. */
  onEgress(listener: (event: EgressEvent) => void): () => void {
    return this.egress?.onEvent(listener) ?? (() => undefined);
  }

  askForEgress(ask: EgressAsk | undefined): void {
    this.egress?.askWith(ask);
  }

  /** Hears what the filter views of this VM's shares refused the guest; returns a disposer. */
  onShareRefusal(listener: (refusal: ShareRefusal) => void): () => void {
    return this.storage.onRefusal(listener);
  }

  /** Hears what went wrong relaying host edits into the guest as file events; returns a disposer. */
  onFileEventProblem(listener: (problem: MicrovmError) => void): () => void {
    return this.storage.onFileEventProblem(listener);
  }

  /** What the relays of host edits into the guest did so far, one entry per share with file events. */
  get fileEventStats(): Array<{ guestPath: string } & FileEventStats> {
    return this.storage.relays.map((r) => ({ guestPath: r.guestPath, ...r.stats }));
  }

  onDiskFull(listener: (error: MicrovmError) => void): () => void {
    return this.health.onDiskFull(listener);
  }

  /** Called once when QEMU exits, for whatever reason, with the error pending calls got. */
  onExit(listener: (error: MicrovmError) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  /** Ends the VM: QMP quit, then SIGKILL after a grace period. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      // A volume's data must reach its disk image: the agent syncs and unmounts before power-off.
      const guestCanSync = !this.failure && !this.health.diskFull;
      if (this.qemu.running && this.storage.hasVolumes && guestCanSync) await shutdownGuest(this.agent, this.qemu);
      if (this.qemu.running) this.qmp.execute('quit').catch(() => this.qemu.kill());
      await this.qemu.stop(QUIT_GRACE_MS);
      await this.storage.release();
    })();
    return this.stopping;
  }

  /**
   * The VM cannot serve (its agent stopped answering, or refused RESTORED): pending and later
   * calls fail with `error` at once, exit listeners get it, and QEMU gets QMP quit, then SIGKILL.
   */
  fail(error: MicrovmError): Promise<void> {
    if (this.failure || this.stopping || !this.qemu.running) return this.stop();
    this.failure = error;
    this.agent.connection.abort(error);
    return this.stop();
  }

  private exitError(): MicrovmError {
    if (this.failure) return this.failure;
    return this.stopping ? new MicrovmError('E_VM_RELEASED', 'the VM was stopped') : lossError(this.qemu);
  }
}

/**
 * Fresh boots keep RAM in a shared file (snapshot-able, and virtio-fs needs shared RAM); clones
 * map a template privately; a suspended VM's RAM file moves into the new state directory
 * (the same tmpfs: a rename) and is mapped shared again.
 */
function memoryFor(state: StateDir, restore: RestoreSource | ResumeSource | undefined): QemuSpec['memory'] {
  if (!restore) return { kind: 'file', path: state.file('memory'), shared: true };
  if (restore.kind === 'suspended') {
    try {
      fs.renameSync(restore.memFile, state.file('memory'));
    } catch (err) {
      // Another open of the same workspace took it first, or it was removed meanwhile.
      throw new MicrovmError(
        'E_RESTORE_FAILED',
        `the suspended VM's memory ${restore.memFile} cannot be taken (${(err as Error).message}); boot the VM afresh`,
        { cause: err },
      );
    }
    return { kind: 'file', path: state.file('memory'), shared: true };
  }
  if (restore.kind === 'template' && restore.memFile) return { kind: 'file', path: restore.memFile, shared: false };
  return { kind: 'ram' };
}

/** Asks the agent to power off (sync, unmount), waiting a few seconds for QEMU to exit; not at all if the agent does not answer. */
async function shutdownGuest(agent: AgentClient, qemu: SupervisedProcess): Promise<void> {
  const answered = await agent.shutdown(GUEST_SHUTDOWN_MS).then(
    () => true,
    (err) => !isMicrovmError(err, 'E_AGENT_TIMEOUT'),
  );
  if (answered) await Promise.race([qemu.exited, delay(GUEST_SHUTDOWN_MS)]);
}

function restoreRefused(vmId: string, restore: RestoreSource | ResumeSource, refusal: MicrovmError): MicrovmError {
  return new MicrovmError(
    'E_RESTORE_FAILED',
    `the guest agent of VM ${vmId} refused RESTORED after its restore from ${path.dirname(restore.stateFile)}: ${refusal.message}; ` +
      'the VM is stopped and its pool restores a replacement: acquire another VM; if every restore fails, delete that snapshot directory so that the next Image.build bakes it again',
    { cause: refusal },
  );
}

function lossError(qemu: SupervisedProcess): MicrovmError {
  if (qemu.running) {
    return new MicrovmError(
      'E_AGENT_PROTOCOL',
      'the connection to the guest agent was lost while QEMU still runs; release this VM',
    );
  }
  return new MicrovmError('E_VM_EXITED', `the VM exited unexpectedly${describeExit(qemu)}`);
}

function describeExit(qemu: SupervisedProcess): string {
  const parts: string[] = [];
  const status = qemu.exitStatus;
  if (status) parts.push(status.signal ? ` (QEMU killed by ${status.signal})` : ` (QEMU exit code ${status.code})`);
  const stderr = qemu.stderr.lastLines(5);
  if (stderr) parts.push(`\nQEMU said:\n${stderr}`);
  const panic = /Kernel panic - not syncing:[^\r\n]*/.exec(qemu.console.text())?.[0];
  if (panic) parts.push(`: the guest kernel panicked (${panic.trim()})`);
  const console = qemu.console.lastLines(15);
  if (console) parts.push(`\nlast guest console lines:\n${console}`);
  return parts.join('');
}
