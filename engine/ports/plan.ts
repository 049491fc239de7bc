import { ForwardOrigin } from './types';

/** Auto-forwards per VM: beyond this, guest listeners are listed but not forwarded. */
export const MAX_AUTO_FORWARDS = 32;

/** devcontainer.json forwardPorts honoured per VM: a hostile config cannot open thousands of host listeners. */
export const MAX_CONFIGURED_FORWARDS = 32;

/** What planForwards decides from: the guest's listeners, the forwards in place, the user's choices. */
export interface ForwardState {
  /** Guest ports with a TCP listener now. */
  listening: Iterable<number>;
  /** Forwards in place, by guest port. */
  forwards: ReadonlyMap<number, ForwardOrigin>;
  /** Ports whose forward the user stopped: auto-forwarding leaves them alone. */
  stoppedByUser: ReadonlySet<number>;
  /** onAutoForward "ignore". */
  ignored(port: number): boolean;
  /** In forwardPorts or portsAttributes. */
  declared(port: number): boolean;
}

/** What planForwards decides: forwards to add and remove, and ports left out. */
export interface ForwardPlan {
  /** Auto-forwards to make now: declared ports first, then by port number. */
  add: number[];
  /** Auto-forwards whose guest listener is gone. Config and user forwards are never removed here. */
  remove: number[];
  /** Listening ports left unforwarded because the limit of auto-forwards is reached. */
  overLimit: number[];
}

/** What one port change should do to the auto-forwards: a pure function of the state. */
export function planForwards(state: ForwardState, limit = MAX_AUTO_FORWARDS): ForwardPlan {
  const listening = new Set(state.listening);
  const auto = [...state.forwards].filter(([, origin]) => origin === 'auto').map(([port]) => port);
  const remove = auto.filter((port) => !listening.has(port));
  const wanted = [...listening]
    .filter((port) => !state.forwards.has(port) && !state.stoppedByUser.has(port) && !state.ignored(port))
    .sort((a, b) => Number(state.declared(b)) - Number(state.declared(a)) || a - b);
  const room = Math.max(0, limit - (auto.length - remove.length));
  return { add: wanted.slice(0, room), remove, overLimit: wanted.slice(room) };
}

/** The configured ports to forward at start, once each, and those over the limit. */
export function planConfigured(
  forwardPorts: readonly number[],
  limit = MAX_CONFIGURED_FORWARDS,
): { add: number[]; overLimit: number[] } {
  const unique = [...new Set(forwardPorts)];
  return { add: unique.slice(0, limit), overLimit: unique.slice(limit) };
}
