import type { GuestListener } from '../agent/port-watch';
import { autoForwardAction, isDeclared, PortsConfig } from '../devcontainer/ports';
import { isMicrovmError } from '../errors';
import type { TcpForwarder } from '../forward/forwarder';
import {
  chooseHostPort,
  ForwardedPort,
  ForwardOrigin,
  ForwardPlan,
  MAX_AUTO_FORWARDS,
  MAX_CONFIGURED_FORWARDS,
  NoticeBudget,
  planConfigured,
  planForwards,
} from '../ports';
import type { Vm } from '../vm/vm';
import { coalesced, SerialQueue } from './serial-queue';

/** What the forwards tell the extension to show; auto-forward notices are already within the notice budget. */
export interface PortNotices {
  /** A new auto-forward whose onAutoForward is notify or openBrowser. */
  portForwarded?(port: ForwardedPort, action: 'notify' | 'openBrowser'): void;
  /**
   * A declared well-known service port went to a free host port. Resolving true moves it to
   * the same host port, if that is still free; false (or no answer) leaves it where it is.
   */
  confirmSameHostPort?(port: ForwardedPort): Promise<boolean>;
  /** Many new auto-forwards at once: one notice for all of them. */
  portsSummary?(ports: ForwardedPort[]): void;
}

export interface PortForwardsEvents extends PortNotices {
  /** A line for the log. */
  log(line: string): void;
  /** Forwards or guest listeners changed: the Ports view should refresh. */
  changed(): void;
}

/** A forward just made, and whether to offer moving it to the same host port. */
export type OpenedForward = ForwardedPort & { offerSame: boolean };

interface Forward {
  forwarder: TcpForwarder;
  origin: ForwardOrigin;
}

/** How many ports one log line names before it says "and N more". */
const PORTS_PER_LOG_LINE = 10;

/**
 * One VM's forwards, kept in line with its guest listeners by the policy in engine/ports:
 * auto-forwards go to free host ports unless declared, at most MAX_AUTO_FORWARDS of them, and
 * go away with their listener. Every change runs one at a time on one queue; port changes
 * that arrive while one is queued are folded into it. No VS Code here.
 */
export class PortForwards {
  private readonly forwards = new Map<number, Forward>();
  private readonly stoppedByUser = new Set<number>();
  /** Guest port -> the error code that kept it from being forwarded at the last try. */
  private readonly failures = new Map<number, string>();
  private readonly previousHostPort = new Map<number, number>();
  private readonly sameConfirmed = new Set<number>();
  private readonly budget = new NoticeBudget();
  private configuredOverLimit: number[] = [];
  private overLimit: number[] = [];
  private listeners: GuestListener[] = [];
  private readonly queue = new SerialQueue();
  private readonly requestReconcile = coalesced(
    this.queue,
    () => this.reconcile(),
    (err) => {
      if (!this.stopped) this.events.log(`cannot follow the guest's ports: ${err.message}`);
    },
  );
  private stopped = false;
  private stopWatch: (() => void) | undefined;

  constructor(
    private readonly vm: Vm,
    private readonly declarations: PortsConfig,
    private readonly events: PortForwardsEvents,
    private readonly now: () => number = Date.now,
  ) {}

  /** Forwards the configured ports, then follows the guest's listeners. */
  async start(): Promise<void> {
    this.stopWatch = this.vm.onPortsChanged((change) => {
      this.listeners = change.ports;
      this.requestReconcile();
    });
    this.listeners = await this.vm.listeningPorts();
    await this.queue.run(() => this.forwardConfigured());
    await this.queue.run(() => this.reconcile());
  }

  /** The guest's TCP listeners as last reported. */
  get guestListeners(): readonly GuestListener[] {
    return this.listeners;
  }

  /** Guest port -> host port of every forward in place. */
  hostPorts(): Map<number, number> {
    return new Map([...this.forwards].map(([guest, f]) => [guest, f.forwarder.port]));
  }

  /** Why listed ports are not forwarded. */
  notForwarded(): Map<number, string> {
    const notes = new Map<number, string>();
    for (const port of this.configuredOverLimit)
      notes.set(port, `not forwarded: forwardPorts has more than ${MAX_CONFIGURED_FORWARDS} ports`);
    for (const port of this.overLimit)
      notes.set(port, `not forwarded: ${MAX_AUTO_FORWARDS} automatic forwards is the limit; forward it by hand`);
    for (const [port, code] of this.failures) notes.set(port, `not forwarded: ${code}`);
    for (const port of this.stoppedByUser) notes.set(port, 'stopped by you');
    return notes;
  }

  /** Resolves once every change queued so far has been applied. */
  settled(): Promise<void> {
    return this.queue.idle();
  }

  /** The user asked for this port: forwarded whether or not anything listens, kept until the user stops it. */
  forwardByUser(guestPort: number): Promise<OpenedForward> {
    return this.queue.run(async () => {
      this.stoppedByUser.delete(guestPort);
      const existing = this.forwards.get(guestPort);
      if (existing) {
        existing.origin = existing.origin === 'auto' ? 'user' : existing.origin;
        return { guestPort, hostPort: existing.forwarder.port, offerSame: false };
      }
      const opened = await this.open(guestPort, 'user');
      if (opened.offerSame) this.offer(opened);
      this.events.changed();
      return opened;
    });
  }

  /** Stops forwarding a guest port; `byUser` keeps auto-forwarding from bringing it back. */
  unforward(guestPort: number, byUser: boolean): Promise<void> {
    return this.queue.run(async () => {
      if (byUser) this.stoppedByUser.add(guestPort);
      await this.drop([guestPort], byUser ? 'stopped by the user' : 'stopped');
      this.events.changed();
    });
  }

  /**
   * Moves a forward to the same host port as its guest port (the user agreed). The new
   * listener is bound before the old one closes, so a busy port leaves the forward as it was.
   */
  useSameHostPort(guestPort: number): Promise<boolean> {
    return this.queue.run(async () => {
      const current = this.forwards.get(guestPort);
      if (!current) return false;
      if (current.forwarder.port === guestPort) return true;
      let moved: TcpForwarder;
      try {
        moved = await this.vm.exposeTcp(guestPort, guestPort);
      } catch (err) {
        if (!isBindError(err)) throw err;
        this.events.log(
          `127.0.0.1:${guestPort} is not available on the host (${err.code}); guest port ${guestPort} stays at 127.0.0.1:${current.forwarder.port}`,
        );
        return false;
      }
      this.sameConfirmed.add(guestPort);
      this.forwards.set(guestPort, { forwarder: moved, origin: current.origin });
      this.previousHostPort.set(guestPort, guestPort);
      await current.forwarder.stop();
      this.events.log(`guest port ${guestPort} moved to 127.0.0.1:${guestPort} (the user agreed)`);
      this.events.changed();
      return true;
    });
  }

  /** Stops following the guest. The forwards themselves end with the VM. */
  stop(): void {
    this.stopped = true;
    this.queue.close();
    this.stopWatch?.();
    this.forwards.clear();
  }

  /** onAutoForward for a port, by its number, its range or the process listening on it. */
  private action(port: number): string {
    return autoForwardAction(port, this.declarations, this.listeners.find((l) => l.port === port)?.command ?? '');
  }

  private declared(port: number): boolean {
    return isDeclared(port, this.declarations);
  }

  private async forwardConfigured(): Promise<void> {
    const { add, overLimit } = planConfigured(this.declarations.forward);
    this.configuredOverLimit = overLimit;
    if (overLimit.length > 0) {
      this.events.log(
        `forwardPorts lists ${add.length + overLimit.length} ports; only the first ${MAX_CONFIGURED_FORWARDS} are forwarded, not ${portList(overLimit)}`,
      );
    }
    // A port change may have auto-forwarded one of them already: it becomes a configured forward.
    const fresh = add.filter((port) => {
      const existing = this.forwards.get(port);
      if (existing) existing.origin = 'config';
      return !existing;
    });
    const opened = await this.openAll(fresh, 'config');
    this.notify(opened.filter((f) => f.offerSame));
  }

  /** One port change: remove what went away, add what is new (up to the limit), then tell. */
  private async reconcile(): Promise<void> {
    const plan = planForwards({
      listening: this.listeners.map((l) => l.port),
      forwards: new Map([...this.forwards].map(([port, f]) => [port, f.origin])),
      stoppedByUser: this.stoppedByUser,
      ignored: (port) => this.action(port) === 'ignore',
      declared: (port) => this.declared(port),
    });
    await this.drop(plan.remove, 'its guest listener is gone');
    const listening = new Set(this.listeners.map((l) => l.port));
    for (const port of this.failures.keys()) if (!listening.has(port)) this.failures.delete(port);
    const opened = await this.openAll(plan.add, 'auto');
    this.noteOverLimit(plan);
    this.notify(opened);
    this.events.changed();
  }

  /** Opens forwards one by one; a port that cannot be bound is noted and skipped. */
  private async openAll(ports: number[], origin: ForwardOrigin): Promise<OpenedForward[]> {
    const opened: OpenedForward[] = [];
    for (const port of ports) {
      try {
        opened.push(await this.open(port, origin));
      } catch (err) {
        if (!isBindError(err)) throw err;
        this.failures.set(port, err.code);
        this.events.log(`cannot forward guest port ${port}: ${err.message}`);
      }
    }
    if (opened.length > 0) {
      this.events.log(
        `forwarding (${origin}) ${portList(opened.map((f) => `${f.guestPort} -> 127.0.0.1:${f.hostPort}`))}`,
      );
    }
    return opened;
  }

  private async open(guestPort: number, origin: ForwardOrigin): Promise<OpenedForward> {
    const choice = chooseHostPort({
      guestPort,
      declared: origin !== 'auto' || this.declared(guestPort),
      sameConfirmed: this.sameConfirmed.has(guestPort),
      previousHostPort: this.previousHostPort.get(guestPort),
    });
    const forwarder = await this.bind(guestPort, choice.candidates);
    forwarder.onRefused((notice) => this.events.log(notice.message));
    const hostPort = forwarder.port;
    this.forwards.set(guestPort, { forwarder, origin });
    this.previousHostPort.set(guestPort, hostPort);
    this.failures.delete(guestPort);
    return { guestPort, hostPort, offerSame: choice.offerSame };
  }

  /** Tries the candidate host ports in order; the last one (0, any free port) is taken as it comes. */
  private async bind(guestPort: number, candidates: number[]): Promise<TcpForwarder> {
    for (const hostPort of candidates.slice(0, -1)) {
      try {
        return await this.vm.exposeTcp(hostPort, guestPort);
      } catch (err) {
        if (!isBindError(err)) throw err;
      }
    }
    return this.vm.exposeTcp(candidates.at(-1) ?? 0, guestPort);
  }

  private async drop(ports: number[], why: string): Promise<void> {
    const dropped: string[] = [];
    for (const port of ports) {
      const forward = this.forwards.get(port);
      if (!forward) continue;
      this.forwards.delete(port);
      await forward.forwarder.stop();
      dropped.push(`${port} (127.0.0.1:${forward.forwarder.port})`);
    }
    if (dropped.length > 0) this.events.log(`stopped forwarding ${portList(dropped)}: ${why}`);
  }

  /** Over-limit ports are listed with a reason; the log hears of it once each time the limit is reached. */
  private noteOverLimit(plan: ForwardPlan): void {
    if (plan.overLimit.length > 0 && this.overLimit.length === 0) {
      this.events.log(
        `${MAX_AUTO_FORWARDS} guest ports are auto-forwarded, the limit: ${plan.overLimit.length} more are listed in the Ports view as not forwarded (${portList(plan.overLimit)})`,
      );
    }
    this.overLimit = plan.overLimit;
  }

  /** Tells the extension about new forwards, within the notice budget: each on its own, or one summary. */
  private notify(opened: OpenedForward[]): void {
    const told = opened.filter((f) => this.action(f.guestPort) !== 'silent');
    const decision = this.budget.admit(
      told.map((f) => f.guestPort),
      this.now(),
    );
    for (const forward of told.filter((f) => decision.each.includes(f.guestPort))) {
      if (forward.offerSame) this.offer(forward);
      else
        this.events.portForwarded?.(
          plain(forward),
          ['openBrowser', 'openBrowserOnce', 'openPreview'].includes(this.action(forward.guestPort))
            ? 'openBrowser'
            : 'notify',
        );
    }
    const summary = told.filter((f) => decision.summary.includes(f.guestPort));
    if (summary.length > 0) this.events.portsSummary?.(summary.map(plain));
  }

  /** Asks, without holding the queue: the answer may take as long as the user likes. */
  private offer(forward: ForwardedPort): void {
    const ask = this.events.confirmSameHostPort;
    if (!ask) return;
    ask
      .call(this.events, plain(forward))
      .then((yes) => (yes && !this.stopped ? this.useSameHostPort(forward.guestPort) : false))
      .catch((err: Error) => this.events.log(`guest port ${forward.guestPort} stays where it is: ${err.message}`));
  }
}

function plain(forward: ForwardedPort): ForwardedPort {
  return { guestPort: forward.guestPort, hostPort: forward.hostPort };
}

/** A host port that is taken or not allowed: try the next candidate. */
function isBindError(err: unknown): err is Error & { code: 'E_PORT_IN_USE' | 'E_FORWARD_FAILED' } {
  return isMicrovmError(err, 'E_PORT_IN_USE') || isMicrovmError(err, 'E_FORWARD_FAILED');
}

function portList(items: Array<number | string>): string {
  const shown = items.slice(0, PORTS_PER_LOG_LINE).join(', ');
  return items.length > PORTS_PER_LOG_LINE ? `${shown} and ${items.length - PORTS_PER_LOG_LINE} more` : shown;
}
