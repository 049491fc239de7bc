import { Vm } from '../engine';

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
