import type { VmBackend } from '../../backend/types';
import { type ComposePlan, declaredPorts } from '../../devcontainer/compose-plan';
import type { ComposeService } from '../../compose/types';
import { isMicrovmError } from '../../errors';
import type { MountSpec } from '../../mount';
import { type NetworkMode, type ServiceLink, serviceLinkAddress } from '../../qemu/network';
import type { Vm } from '../../vm/vm';
import { createStateDir, type StateDir } from '../../vm/state-dir';
import { qemuUser } from '../../qemu/run-as';
import { waitHealthy } from './health';
import { serviceLogFile } from './log-file';
import { ServiceRelay } from './relay';
import { serviceFailure, ServiceVm } from './service-vm';

export interface ServicesEvents {
  log(line: string): void;
  /** A service's own output, as it comes (the extension's channel for that service). */
  output(service: string, chunk: Buffer): void;
  progress(step: string): void;
  /** A service's main process ended while the workspace runs; the message quotes its last lines (escaped). */
  crashed(service: string, message: string): void;
}

export interface ComposeServicesOptions {
  plan: ComposePlan;
  /** The primary service's name and declared ports: the other services reach them through the workspace VM. */
  primary: { name: string; ports: number[] };
  /** The workspace folder on the host: where the services' logs are kept. */
  folder: string;
  network: NetworkMode;
  allow: string[];
  /** A service's named volume as an engine volume, kept per workspace. */
  volumeName(service: string, source: string | undefined, target: string): string;
  share(hostPath: string, guestPath: string, readOnly: boolean): MountSpec;
  signal: AbortSignal;
  /** The hypervisor backend the service VMs run on (the workspace's); absent = QEMU. */
  backend?: VmBackend;
  events: ServicesEvents;
}

/** A forward the user asked for (`forwardPorts: ["db:5432"]`): host 127.0.0.1:localPort to the service's port. */
export interface ServiceForward {
  service: string;
  port: number;
  localAddr: string;
}

/**
 * A compose workspace's other services, each its own microVM, and the links between them.
 *
 * No VM shares a network with another: each declared port of each service (`expose`, the
 * service side of `ports`) gets a relay before any VM starts, a unix socket in a private run
 * directory of the workspace, and every VM of the workspace gets the other services' names in
 * /etc/hosts (addresses in the service link block) and links from those addresses to the
 * relays' sockets, enforced by its network guard. A relay carries each connection straight
 * into its service's VM over the agent channel. So `db:5432` works from the app, and nothing
 * else of the db VM is reachable from it; no TCP port on the host leads to a service, so the
 * host reaches one only through forwards asked for (`forwardPorts: ["db:5432"]`).
 */
export class ComposeServices {
  private readonly relays: ServiceRelay[] = [];
  /** The relays' sockets: 0700 (0710 for QEMU's group when QEMU drops to its own user), removed at stop. */
  private linkDir: StateDir | undefined;
  private readonly addresses = new Map<string, string>();
  private readonly running = new Map<string, ServiceVm>();
  private readonly health = new Map<string, Promise<void>>();
  private readonly userForwards: ServiceForward[] = [];
  private stopped = false;

  private constructor(private readonly options: ComposeServicesOptions) {}

  /**
   * Starts the services in dependency order, each after its `depends_on` conditions hold
   * (started, healthy, completed successfully), and returns once the workspace's own service
   * may start (its conditions hold too). A service that fails stops the others and rejects
   * with its last log lines.
   */
  static async start(options: ComposeServicesOptions): Promise<ComposeServices> {
    const services = new ComposeServices(options);
    try {
      await services.startAll();
      return services;
    } catch (err) {
      await services.stop();
      throw err;
    }
  }

  /** Links for a VM of the workspace (not `self`): every declared port of the other services. */
  linksFor(self: string): ServiceLink[] {
    return this.relays
      .filter((r) => r.service !== self)
      .map((r) => ({ address: this.addresses.get(r.service) as string, port: r.port, path: r.path }));
  }

  /** A service's address in the service link block (undefined for a service that does not start). */
  addressOf(service: string): string | undefined {
    return this.addresses.get(service);
  }

  /** /etc/hosts lines for a VM of the workspace: the other services by name. */
  hostsFor(self: string): Array<{ name: string; address: string }> {
    return [...this.addresses].filter(([name]) => name !== self).map(([name, address]) => ({ name, address }));
  }

  /** The forwards forwardPorts asked for, for `microvm up`, `microvm ports` and the Ports view. */
  get forwards(): ServiceForward[] {
    return [...this.userForwards];
  }

  /** Every service VM that runs, by name (the workspace's own is not among them). */
  get vms(): Array<{ service: string; vm: Vm }> {
    return [...this.running].map(([service, s]) => ({ service, vm: s.running }));
  }

  /** The workspace VM runs: the other services reach the primary's declared ports through it. */
  async attachPrimary(vm: Vm): Promise<void> {
    for (const relay of this.relays.filter((r) => r.service === this.options.primary.name)) {
      await relay.setTarget((socket) => vm.connectTcp(socket, relay.port));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // No new connection reaches a service while the VMs stop (the others may still connect).
    const relays = this.relays.splice(0);
    await Promise.all(relays.map((relay) => relay.close().catch(() => undefined)));
    // Dependents first, as docker compose stops them.
    for (const service of [...this.running.values()].reverse()) await service.stop().catch(() => undefined);
    this.running.clear();
    this.linkDir?.remove();
    this.linkDir = undefined;
  }

  /**
   * Every image first (pulled or built; its EXPOSE'd ports join the declared ones), then a
   * relay per port and an address per service, then the VMs in dependency order.
   */
  private async startAll(): Promise<void> {
    const { plan, primary } = this.options;
    const reachable = new Map<string, number[]>([[primary.name, primary.ports]]);
    for (const service of plan.services) {
      this.checkStopped();
      const vm = this.serviceVm(service);
      this.running.set(service.name, vm);
      const { exposedPorts } = await this.failing(vm, () => vm.prepare());
      reachable.set(
        service.name,
        [...new Set([...declaredPorts(service), ...exposedPorts])].sort((a, b) => a - b),
      );
    }
    const names = [...reachable.keys()].sort((a, b) => a.localeCompare(b));
    names.forEach((name, i) => this.addresses.set(name, serviceLinkAddress(i)));
    const runAs = qemuUser();
    const linkDir = (this.linkDir = createStateDir(runAs));
    for (const name of names) {
      for (const port of reachable.get(name) ?? [])
        this.relays.push(ServiceRelay.in(linkDir.dir, name, port, this.relays.length, runAs));
    }
    for (const service of plan.services) {
      this.checkStopped();
      await this.conditions(service.name, service.dependsOn);
      await this.startService(this.running.get(service.name) as ServiceVm);
    }
    await this.conditions(primary.name, plan.primaryDependsOn);
    for (const { service, port } of plan.forwards) await this.forward(service, port);
  }

  private serviceVm(service: ComposeService): ServiceVm {
    const { options } = this;
    return new ServiceVm({
      service,
      volumeName: (source, target) => options.volumeName(service.name, source, target),
      share: options.share,
      ...(service.network?.mode === 'service'
        ? { networkOf: { service: service.network.service, address: this.addresses.get(service.network.service) } }
        : {}),
      network: options.network,
      allow: options.allow,
      signal: options.signal,
      ...(options.backend ? { backend: options.backend } : {}),
      logFile: serviceLogFile(options.folder, service.name),
      log: (line) => options.events.log(line),
      output: (chunk) => options.events.output(service.name, chunk),
      progress: (step) => options.events.progress(step),
      exited: (code, lines) => {
        if (this.stopped) return;
        options.events.crashed(
          service.name,
          serviceFailure(service.name, `stopped: its main process exited with code ${code}`, lines).message,
        );
      },
    });
  }

  private async startService(vm: ServiceVm): Promise<void> {
    const name = vm.name;
    await this.failing(vm, () => vm.start(this.linksFor(name), this.hostsFor(name)));
    const relays = this.relays.filter((r) => r.service === name);
    for (const relay of relays) await relay.setTarget((socket) => vm.running.connectTcp(socket, relay.port));
    this.options.events.log(
      `service ${name} started${relays.length > 0 ? `; the other VMs reach it as ${relays.map((r) => `${name}:${r.port}`).join(', ')}` : ''}`,
    );
  }

  /** A service that cannot be pulled, built or booted fails the open, with its last lines. */
  private async failing<T>(vm: ServiceVm, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (this.stopped) throw err;
      const why = isMicrovmError(err) ? `${err.code}: ${err.message}` : (err as Error).message;
      throw serviceFailure(vm.name, `could not start (${why})`, vm.lastLines());
    }
  }

  /** Waits for what `dependent` asked of its dependencies (a dependency that is not started was reported when the files were read). */
  private async conditions(dependent: string, dependsOn: ComposeService['dependsOn']): Promise<void> {
    for (const [name, { condition, required }] of Object.entries(dependsOn)) {
      const dependency = this.running.get(name);
      if (!dependency) continue;
      if (condition === 'service_healthy') await this.healthy(dependency, dependent);
      if (condition === 'service_completed_successfully') await this.completed(dependency, dependent, required);
    }
  }

  private healthy(service: ServiceVm, dependent: string): Promise<void> {
    const known = this.health.get(service.name);
    if (known) return known;
    const check = this.options.plan.services.find((s) => s.name === service.name)?.healthcheck;
    const waiting = (async () => {
      if (!check) {
        throw serviceFailure(
          service.name,
          `has no healthcheck, and ${dependent} waits for it to be healthy (depends_on condition service_healthy); add a healthcheck or use service_started`,
          [],
        );
      }
      this.options.events.progress(`Waiting for ${service.name} to be healthy`);
      const result = await waitHealthy(
        check,
        (test, timeoutMs) => service.probe(test, timeoutMs),
        () => service.ended,
      );
      if (result.state === 'unhealthy') {
        throw serviceFailure(
          service.name,
          `did not become healthy after ${result.checks} check(s) (${result.lastOutput || 'the check failed without output'}), so ${dependent} cannot start`,
          service.lastLines(),
        );
      }
      this.options.events.log(`service ${service.name} is healthy`);
    })();
    this.health.set(service.name, waiting);
    return waiting;
  }

  private async completed(service: ServiceVm, dependent: string, required: boolean): Promise<void> {
    this.options.events.progress(`Waiting for ${service.name} to complete`);
    while (service.exitStatus === undefined && !this.stopped) await new Promise((r) => setTimeout(r, 200));
    if (service.exitStatus !== 0 && required) {
      throw serviceFailure(
        service.name,
        `exited with code ${service.exitStatus}, and ${dependent} waits for it to complete successfully`,
        service.lastLines(),
      );
    }
  }

  /** forwardPorts `"db:5432"`: the same port on the host when it is free, else another (logged). */
  private async forward(name: string, port: number): Promise<void> {
    const service = this.running.get(name);
    if (!service) return;
    let forwarder;
    try {
      forwarder = await service.expose(port, port);
    } catch {
      forwarder = await service.expose(port, 0);
      this.options.events.log(
        `${name}:${port}: port ${port} is taken on this machine, so it is forwarded to 127.0.0.1:${forwarder.port}`,
      );
    }
    this.userForwards.push({ service: name, port, localAddr: `127.0.0.1:${forwarder.port}` });
    this.options.events.log(`forwarded ${name}:${port} to 127.0.0.1:${forwarder.port}`);
  }

  private checkStopped(): void {
    if (this.stopped || this.options.signal.aborted)
      throw new Error('the workspace was stopped while its services started');
  }
}
