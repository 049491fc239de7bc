import { isWellKnownServicePort } from './well-known';

/** What chooseHostPort needs to know about a guest port to forward. */
export interface HostPortRequest {
  guestPort: number;
  /** In forwardPorts or portsAttributes, or asked for by the user. */
  declared: boolean;
  /** The user agreed, earlier in this session, that this guest port may take the same host port. */
  sameConfirmed?: boolean;
  /** The host port this guest port had earlier in this session (its listener restarted). */
  previousHostPort?: number;
}

/** The host ports to try for a forward, in order. */
export interface HostPortChoice {
  /** Host ports to try in order; the last is always 0: any free port the OS picks. */
  candidates: number[];
  /** Ask the user whether to move the forward to the same host port (a declared well-known service port). */
  offerSame: boolean;
}

/**
 * Which host port a guest port gets. The same number only when the workspace declared the
 * port (and, for a well-known service port, the user agreed); otherwise a free port, so a
 * guest can never take a port a host service is about to bind. A restarted listener gets
 * its previous host port back when that is still free, so its address stays the same.
 */
export function chooseHostPort(request: HostPortRequest): HostPortChoice {
  const { guestPort, declared } = request;
  const wellKnown = isWellKnownServicePort(guestPort);
  const sameAllowed = declared && (!wellKnown || request.sameConfirmed === true);
  const candidates: number[] = sameAllowed ? [guestPort] : [];
  const previous = request.previousHostPort;
  // A previous port other than the guest's own number was picked by the OS when it was free.
  if (previous && previous !== guestPort && !isWellKnownServicePort(previous)) candidates.push(previous);
  candidates.push(0);
  return { candidates, offerSame: declared && wellKnown && request.sameConfirmed !== true };
}
