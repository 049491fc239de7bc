import { Pool, Vm } from '../engine';

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

