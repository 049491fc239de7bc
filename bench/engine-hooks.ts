import { Pool, type ServiceLink, type Session, Vm } from '../engine';
import type { Vm as AnyVm } from '../engine/vm/vm';

interface PingCapable {
  machine?: { agent?: { ping?: () => Promise<void> } };
}

/**
 * The agent's PING on a pooled VM. The public Vm has no ping, so this reaches the agent
 * client of the VM's machine; it fails loudly if the engine's internals change shape.
 */
export function agentPing(vm: Vm): Promise<void> {
  const agent = (vm as unknown as PingCapable).machine?.agent;
  if (typeof agent?.ping !== 'function') {
    throw new Error('bench: cannot reach the agent PING of a Vm (engine internals changed); the harness needs a public ping hook');
  }
  return agent.ping();
}

interface PoolInternals {
  idle?: Array<{ machine?: { pid?: number } }>;
}

/**
 * The QEMU pids of a pool's idle VMs. The public Pool only counts them (stats()), so this
 * reads the pool's idle list; it fails loudly if the engine's internals change shape.
 */
export function idleQemuPids(pool: Pool): number[] {
  const idle = (pool as unknown as PoolInternals).idle;
  if (!Array.isArray(idle)) {
    throw new Error('bench: cannot reach the idle VMs of a Pool (engine internals changed); the harness needs a public hook for QEMU pids');
  }
  return idle.map((entry) => {
    const pid = entry.machine?.pid;
    if (typeof pid !== 'number') throw new Error('bench: an idle pooled VM has no QEMU pid (engine internals changed)');
    return pid;
  });
}


interface MachineCapable {
  machine?: { pid?: number; memoryFile?: string };
}

/**
 * A VM's QEMU pid and the file of its guest RAM (a fresh boot's shared RAM file). The public
 * Vm has neither, so this reaches its machine; it fails loudly if the internals change shape.
 */
export function vmQemu(vm: AnyVm): { pid: number; memoryFile: string } {
  const machine = (vm as unknown as MachineCapable).machine;
  if (typeof machine?.pid !== 'number' || typeof machine.memoryFile !== 'string') {
    throw new Error('bench: cannot reach the QEMU pid and RAM file of a Vm (engine internals changed, or the VM was restored from a snapshot)');
  }
  return { pid: machine.pid, memoryFile: machine.memoryFile };
}

interface SessionInternals {
  services?: { linksFor?: (self: string) => ServiceLink[]; vms?: Array<{ service: string; vm: AnyVm }> };
}

/**
 * A compose session's other services: their VMs and the host ports of the relays the
 * workspace VM reaches them through (`linksFor` the primary). The public Session has only
 * the forwards forwardPorts asked for; this fails loudly if the internals change shape.
 */
export function composeInternals(session: Session, primary: string): { vms: Array<{ service: string; vm: AnyVm }>; links: ServiceLink[] } {
  const services = (session as unknown as SessionInternals).services;
  if (typeof services?.linksFor !== 'function' || !Array.isArray(services.vms)) {
    throw new Error('bench: cannot reach the compose services of a Session (engine internals changed); the harness needs a public hook for them');
  }
  return { vms: services.vms, links: services.linksFor(primary) };
}
