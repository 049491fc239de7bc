import type { VmBackend } from '../../backend/types';
import { buildImage } from '../../build/build';
import type { BuildImageProgress } from '../../build/types';
import { mainArgv } from '../../compose/command';
import type { ComposeService } from '../../compose/types';
import { MicrovmError } from '../../errors';
import type { TcpForwarder } from '../../forward';
import { Image } from '../../api/image';
import type { MountSpec } from '../../mount';
import type { BuildOptions } from '../../api/image';
import type { Pool } from '../../pool/pool';
import type { NetworkMode, ServiceLink } from '../../qemu/network';
import type { Vm } from '../../vm/vm';
import { ServiceLogWriter } from './log-file';
import { TailLines } from './tail-lines';
import { startLoopbackRelay } from './loopback-relay';
import { refuseLessIsolated } from '../isolation';

/** A service VM's memory when the compose file sets none (mem_limit, deploy.resources.limits.memory). */
export const SERVICE_MEMORY_MIB = 512;
const SERVICE_VOLUME_MIB = 8192;

export interface ServiceVmOptions {
  service: ComposeService;
  /** Named volumes of the service, by the compose name (or target, for anonymous ones) -> the engine's volume name. */
  volumeName(source: string | undefined, target: string): string;
  /** A share of a folder inside the workspace (binds), with the workspace's symlink policy. */
  share(hostPath: string, guestPath: string, readOnly: boolean): MountSpec;
  /** The other services' ports this VM reaches by name, and the names as /etc/hosts lines (known at start()). */
  links?: ServiceLink[];
  hosts?: Array<{ name: string; address: string }>;
  /** `network_mode: service:X`: X's ports on this VM's localhost (X's address; undefined when X does not start). */
  networkOf?: { service: string; address: string | undefined };
  network: NetworkMode;
  allow: string[];
  signal: AbortSignal;
  /** The hypervisor backend the service VM runs on (the workspace's); absent = QEMU. */
  backend?: VmBackend;
  logFile: string;
  log(line: string): void;
  /** The service's own output (its main process), as it comes. */
  output(chunk: Buffer): void;
  /** The main process ended while the workspace runs: the service crashed (or finished). */
  exited(code: number, lastLines: string[]): void;
  progress(step: string): void;
}

/**
 * One compose service as its own microVM: its image (pulled, or built from its Dockerfile in
 * the builder VM), its environment, user, named volumes (kept per workspace), tmpfs and binds
 * inside the folder; its main process (entrypoint and command, as docker combines them with
 * the image's) started once the VM runs, with its output in the service's log; its declared
 * ports forwarded on the host for the relays. It does not know the other services.
 */
export class ServiceVm {
  private pool: Pool | undefined;
  private vm: Vm | undefined;
  private stopping = false;
  private exitCode: number | undefined;
  private readonly tail = new TailLines(20);
  private readonly writer: ServiceLogWriter;
  private readonly forwards: TcpForwarder[] = [];
  private ref: string | undefined;

  constructor(private readonly options: ServiceVmOptions) {
    this.writer = new ServiceLogWriter(options.logFile);
  }

  get name(): string {
    return this.options.service.name;
  }

  get running(): Vm {
    if (!this.vm) throw new Error(`service ${this.name} is not running`);
    return this.vm;
  }

  /** Why the service is not running any more (its main process ended), or undefined. */
  get ended(): string | undefined {
    return this.exitCode === undefined ? undefined : `its main process exited with code ${this.exitCode}`;
  }

  get exitStatus(): number | undefined {
    return this.exitCode;
  }

  lastLines(): string[] {
    return this.tail.lines();
  }

  /**
   * Pulls or builds the service's image and reads its config, before any VM: the ports it
   * EXPOSEs join the ports the other VMs reach (postgres and redis images declare theirs so).
   */
  async prepare(): Promise<{ exposedPorts: number[] }> {
    this.ref = await this.imageRef();
    const base = await Image.build({
      ref: this.ref,
      ...this.platform(),
      network: 'none',
      snapshot: false,
      ...this.backendOption(),
    });
    await refuseLessIsolated(base, this.options.backend, `service ${this.options.service.name}'s image`);
    return { exposedPorts: base.config.exposedPorts ?? [] };
  }

  /** Boots the VM (after prepare()), with its links to the other services and their names. */
  async start(links: ServiceLink[], hosts: Array<{ name: string; address: string }>): Promise<void> {
    const { service } = this.options;
    this.options.links = links;
    this.options.hosts = hosts;
    const ref = this.ref ?? (await this.imageRef());
    this.options.progress(`Starting service ${service.name}`);
    const image = await Image.build(this.buildOptions(ref));
    this.pool = image.pool({ min: 1, max: 1, acquireTimeoutMs: 0 });
    this.vm = await this.pool.acquire();
    this.options.log(`service ${service.name}: VM ${this.vm.id} is running under ${this.vm.accel.accel}`);
    await this.addHosts(this.vm);
    const networkOf = this.options.networkOf;
    if (networkOf) startLoopbackRelay(this.vm, networkOf.service, links, networkOf.address, this.options.log);
    this.startMain(this.vm, image);
  }

  /** Forwards `port` of the service to 127.0.0.1 on the host (hostPort 0: any free port). */
  async expose(port: number, hostPort = 0): Promise<TcpForwarder> {
    const forwarder = await this.running.exposeTcp(hostPort, port);
    this.forwards.push(forwarder);
    return forwarder;
  }

  /** Runs the service's health check once in its VM. */
  async probe(test: string[], timeoutMs: number): Promise<{ ok: boolean; output: string }> {
    try {
      const r = await this.running.exec({ argv: test, timeoutMs });
      return { ok: r.exitCode === 0, output: `${r.stdout}${r.stderr}`.trim().slice(-500) };
    } catch (err) {
      return { ok: false, output: (err as Error).message };
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const forwarder of this.forwards.splice(0)) await forwarder.stop().catch(() => undefined);
    const vm = this.vm;
    this.vm = undefined;
    await this.pool?.shutdown();
    await vm?.release().catch(() => undefined);
  }

  private async imageRef(): Promise<string> {
    const { service } = this.options;
    if (!service.build) return service.image as string;
    this.options.progress(`Building service ${service.name}`);
    const built = await buildImage({
      context: service.build.context,
      dockerfile: service.build.dockerfile,
      args: service.build.args,
      ...(service.build.target ? { target: service.build.target } : {}),
      network: this.options.network === 'none' ? 'none' : this.options.network,
      allow: this.options.allow,
      signal: this.options.signal,
      onProgress: (event: BuildImageProgress) => {
        if (event.phase === 'step')
          this.options.progress(`Building service ${service.name}: step ${event.step}/${event.steps}`);
        if (event.phase === 'log') this.record(Buffer.from(`${event.line}\n`));
      },
    });
    this.options.log(
      `service ${service.name}: image built from ${service.build.dockerfile}${built.cached ? ' (cached)' : ''}: ${built.digest}`,
    );
    return built.ref;
  }

  /** The compose `platform` of an image service (a built one is for this machine's). */
  private platform(): { platform?: string } {
    const { platform, build } = this.options.service;
    return platform && !build ? { platform } : {};
  }

  private buildOptions(ref: string): BuildOptions {
    const { service } = this.options;
    const volumes = service.volumes.flatMap((v) =>
      v.type === 'volume'
        ? [{ name: this.options.volumeName(v.source, v.target), mountPoint: v.target, sizeMib: SERVICE_VOLUME_MIB }]
        : [],
    );
    const mounts = service.volumes.flatMap((v) =>
      v.type === 'bind' ? [this.options.share(v.source, v.target, v.readOnly)] : [],
    );
    return {
      ref,
      ...this.platform(),
      name: `${service.name} (${ref})`,
      memoryMib: service.memoryMib ?? SERVICE_MEMORY_MIB,
      vcpus: service.cpus ?? 1,
      env: service.environment,
      // network_mode none: no NIC, and no links to the other services.
      network: service.network?.mode === 'none' ? 'none' : this.options.network,
      allow: this.options.allow,
      volumes,
      mounts,
      tmpfs: service.tmpfs.map((t) => ({ mountPoint: t.target, ...(t.sizeMib ? { sizeMib: t.sizeMib } : {}) })),
      ...(service.user ? { user: service.user } : {}),
      ...(this.options.links?.length && service.network?.mode !== 'none' ? { serviceLinks: this.options.links } : {}),
      ...this.backendOption(),
    };
  }

  private backendOption(): { backend?: VmBackend } {
    return this.options.backend ? { backend: this.options.backend } : {};
  }

  /** The other services by name, and the service's own name as itself, in the guest's /etc/hosts. */
  private async addHosts(vm: Vm): Promise<void> {
    const current = (await vm.readFile('/etc/hosts').catch(() => Buffer.alloc(0))).toString('utf8');
    const lines = [{ name: this.name, address: '127.0.0.1' }, ...(this.options.hosts ?? [])]
      .map((h) => `${h.address}\t${h.name}`)
      .join('\n');
    await vm.writeFile('/etc/hosts', `${current}${current.endsWith('\n') || current === '' ? '' : '\n'}${lines}\n`, {
      mode: 0o644,
    });
  }

  /** entrypoint + command as docker combines them: an entrypoint given by the service drops the image's command. */
  private startMain(vm: Vm, image: Image): void {
    const { service } = this.options;
    const argv = mainArgv(service, image.config);
    if (argv.length === 0) {
      this.options.log(
        `service ${service.name}: neither the image nor the compose file gives a command, so the VM runs without one`,
      );
      return;
    }
    this.options.log(`service ${service.name}: running ${JSON.stringify(argv)}`);
    const child = vm.spawn({
      argv,
      timeoutMs: 0,
      ...(service.workingDir || image.config.workingDir ? { cwd: service.workingDir || image.config.workingDir } : {}),
    });
    void this.pump(() => child.readStdout());
    void this.pump(() => child.readStderr());
    void child.wait().then(
      (result) => this.onExit(result.exitCode),
      (err: Error) => this.onExit(-1, err.message),
    );
  }

  private onExit(code: number, why?: string): void {
    this.exitCode = code;
    if (this.stopping) return;
    if (why) this.record(Buffer.from(`[${why}]\n`));
    this.options.exited(code, this.tail.lines());
  }

  private async pump(read: () => Promise<Buffer>): Promise<void> {
    try {
      for (let chunk = await read(); chunk.length > 0; chunk = await read()) this.record(chunk);
    } catch {
      // The VM went away: its exit is reported by wait().
    }
  }

  private record(chunk: Buffer): void {
    this.tail.push(chunk);
    this.writer.write(chunk.toString('utf8'));
    this.options.output(chunk);
  }
}

/** Thrown when a service cannot start: its name, why, and its last log lines. */
export function serviceFailure(service: string, why: string, lastLines: string[]): MicrovmError {
  const tail = lastLines.length > 0 ? `; its last lines:\n${lastLines.map((l) => `  ${l}`).join('\n')}` : '';
  return new MicrovmError('E_SERVICE_FAILED', `compose service ${JSON.stringify(service)} ${why}${tail}`);
}
