import { Pool, Vm } from '../engine';
import { AgentClient } from '../engine/agent/client';
import { AgentConnection } from '../engine/agent/connection';

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

/** Where acquire-with-restore time goes: ms from `start()` to the HELLO reply and to the RESTORED reply. */
export interface RestorePhases {
  start(): void;
  /** [helloMs, restoredMs] of the last acquire since start(). */
  last(): [number, number] | undefined;
  dispose(): void;
}

/**
 * Wraps AgentConnection.open (the HELLO handshake) and AgentClient#restored (fresh RNG seed
 * and clock) to timestamp them, bench-only. Fails loudly if either is missing.
 */
export function traceRestorePhases(): RestorePhases {
  const open = AgentConnection.open;
  const restored = AgentClient.prototype.restored;
  if (typeof open !== 'function' || typeof restored !== 'function') {
    throw new Error('bench: cannot trace restore phases (AgentConnection.open or AgentClient#restored changed); the harness needs a public hook');
  }
  let started = 0;
  let hello: number | undefined;
  let done: number | undefined;
  AgentConnection.open = async function (...args: Parameters<typeof open>) {
    const result = await open.apply(this, args);
    hello = performance.now() - started;
    return result;
  };
  AgentClient.prototype.restored = async function (this: AgentClient, ...args: Parameters<typeof restored>) {
    await restored.apply(this, args);
    done = performance.now() - started;
  };
  return {
    start: () => { started = performance.now(); hello = undefined; done = undefined; },
    last: () => (hello !== undefined && done !== undefined ? [hello, done] : undefined),
    dispose: () => {
      AgentConnection.open = open;
      AgentClient.prototype.restored = restored;
    },
  };
}
