import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentClient } from '../../agent/client';
import { AgentConnection } from '../../agent/connection';
import type { AccelChoice } from '../../accel/decide';
import { MicrovmError } from '../../errors';
import type { HealthVerdict } from '../../vm/health';
import { resolveUser, type UserIds } from '../../vm/user';
import type { GuestArch } from '../../qemu/types';
import type { BackendVm, BootSpec, Capabilities } from '../types';
import { AGENT_VSOCK_PORT, vfkitArgv, vfkitKernelCmdline } from './argv';
import { vfkitExitError, type VfkitExit } from './failures';
import { VfkitRest } from './rest';

/** How long a guest gets to power off after Stop before HardStop, then SIGKILL. */
const STOP_GRACE_MS = 3000;

/** What boots a vfkit VM besides the spec: the binary, the (unpacked) kernel and initramfs, the capabilities. */
export interface VfkitBootInputs {
  vfkit: string;
  kernel: string;
  initrd: string;
  capabilities: Capabilities;
  bootTimeoutMs: number;
}

/**
 * What a vfkit VM cannot do yet, every one at once: these need the engine's QEMU-side pieces
 * (the filter view, volumes by serial, the egress proxy, service links, snapshots, hot-plug)
 * ported to Virtualization.framework first.
 */
export function unsupportedForVfkit(spec: BootSpec, restore: boolean, hostArch: GuestArch): string[] {
  const problems: string[] = [];
  const arch = spec.arch ?? 'x86_64';
  if (arch !== hostArch) problems.push(`an ${arch} guest (Virtualization.framework runs ${hostArch} guests only here)`);
  if (restore) problems.push('restoring a snapshot (vfkit has no save/restore)');
  if (spec.machine) problems.push('a q35 workspace VM (no hot-plug, so no suspend)');
  if (spec.workload) problems.push("an image's cmd as a workload");
  if ((spec.volumes?.length ?? 0) > 0 || spec.rootVolume) problems.push('volumes');
  if ((spec.tmpfs?.length ?? 0) > 0) problems.push('tmpfs mounts');
  if (spec.serviceLinks) problems.push('service links');
  if (spec.network === 'allowlist' || spec.network === 'learn') problems.push(`network ${spec.network}`);
  const filtered = (spec.mounts ?? []).filter((m) => m.filter !== false).map((m) => m.hostPath);
  if (filtered.length > 0)
    problems.push(`filtered shares (${filtered.join(', ')}): the framework serves a folder without the filter view`);
  return problems;
}

/**
 * One running vfkit VM (experimental): vfkit started with the spec's command line, the agent
 * reached through vfkit's vsock socket, state and stop through its REST socket. Egress,
 * disk-full and share-refusal events never come: what would raise them is refused at boot.
 */
export class VfkitMachine implements BackendVm {
  readonly memoryFile = undefined;
  readonly diskFull = undefined;
  readonly fileEventStats = [];
  user: UserIds | undefined;
  agentMs = 0;
  bootMs = 0;
  private running = true;
  private readonly exitListeners = new Set<(error: MicrovmError) => void>();
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly id: string,
    readonly capabilities: Capabilities,
    readonly agent: AgentClient,
    private readonly child: ChildProcess,
    private readonly exited: Promise<VfkitExit>,
    private readonly rest: VfkitRest,
    private readonly stateDir: string,
  ) {
    void exited.then((exit) => this.end(vfkitExitError(exit, 'run')));
  }

  readonly accel: AccelChoice = {
    accel: 'hvf',
    isolation: 'hardware',
    reason: "Apple's Virtualization.framework through vfkit",
  };

  static async boot(spec: BootSpec, inputs: VfkitBootInputs): Promise<VfkitMachine> {
    const started = Date.now();
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-vfkit-'));
    const file = (name: string) => path.join(stateDir, name);
    const shares = (spec.mounts ?? []).map((m, i) => ({ hostPath: m.hostPath, tag: `share${i}`, mount: m }));
    const argv = vfkitArgv({
      kernel: inputs.kernel,
      initrd: inputs.initrd,
      cmdline: vfkitKernelCmdline({ rootDisk: true, agentPort: AGENT_VSOCK_PORT, extra: spec.kernelArgs }),
      memoryMib: spec.memoryMib,
      vcpus: spec.vcpus,
      disks: [{ path: spec.rootDisk, readOnly: true }],
      shares,
      agent: { port: AGENT_VSOCK_PORT, socket: file('agent.sock') },
      consoleLog: file('console.log'),
      restSocket: file('rest.sock'),
      network: spec.network === 'outbound',
    });
    const child = spawn(inputs.vfkit, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let output = '';
    child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-8192)));
    const exited = new Promise<VfkitExit>((resolve) => {
      child.on('error', (err) => (output += `\n${err.message}`));
      child.on('close', (code, signal) => resolve({ code, signal, output }));
    });
    let exit: VfkitExit | undefined;
    void exited.then((e) => (exit = e));
    try {
      const { connection, info } = await AgentConnection.open(file('agent.sock'), {
        timeoutMs: spec.bootTimeoutMs ?? inputs.bootTimeoutMs,
        reconnect: true,
        abortIf: () => (exit ? vfkitExitError(exit, 'boot') : undefined),
        describeLoss: async () => vfkitExitError(exit ?? (await exited), 'run'),
      });
      const agent = new AgentClient(connection, info);
      const agentMs = Date.now() - started;
      for (const share of shares) await agent.mount('virtiofs', share.tag, share.mount.guestPath, share.mount.readOnly);
      const machine = new VfkitMachine(
        path.basename(stateDir),
        inputs.capabilities,
        agent,
        child,
        exited,
        new VfkitRest(file('rest.sock')),
        stateDir,
      );
      machine.user = await resolveUser(spec.user ?? '', async (f) => (await agent.readFile(f)).toString('utf8'));
      machine.agentMs = agentMs;
      machine.bootMs = Date.now() - started;
      return machine;
    } catch (err) {
      child.kill('SIGKILL');
      await exited;
      fs.rmSync(stateDir, { recursive: true, force: true });
      throw err;
    }
  }

  get pid(): number | undefined {
    return this.running ? this.child.pid : undefined;
  }

  get alive(): boolean {
    return this.running;
  }

  async checkHealth(): Promise<HealthVerdict> {
    if (!this.running) return 'dead';
    const state = await this.rest.state().catch(() => 'stopped' as const);
    if (state === 'stopped' || state === 'error' || state === 'stopping') return 'dead';
    if (state === 'paused' || state === 'pausing') return 'paused';
    return this.agent.ping().then(
      () => 'healthy',
      () => 'unresponsive',
    );
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
    return Promise.reject(
      new MicrovmError('E_SNAPSHOT', 'vfkit VMs cannot be saved: vfkit has no save/restore command'),
    );
  }

  async resume(): Promise<void> {
    await this.rest.change('Resume');
  }

  suspend(): Promise<string[]> {
    return Promise.reject(new MicrovmError('E_SUSPEND', 'vfkit VMs cannot be suspended: they have no hot-plug'));
  }

  /** Stop (the guest powers off), then HardStop, then SIGKILL; the state directory goes last. */
  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    this.end(new MicrovmError('E_VM_RELEASED', `VM ${this.id} was stopped`));
    const gone = (ms: number) =>
      Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
    for (const change of ['Stop', 'HardStop'] as const) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) break;
      await this.rest.change(change).catch(() => undefined);
      if (await gone(STOP_GRACE_MS)) break;
    }
    this.child.kill('SIGKILL');
    await this.exited;
    this.agent.connection.close();
    fs.rmSync(this.stateDir, { recursive: true, force: true });
  }

  private end(error: MicrovmError): void {
    if (!this.running) return;
    this.running = false;
    for (const listener of [...this.exitListeners]) listener(error);
  }
}
