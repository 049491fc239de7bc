/**
 * Who asked for a forward: the port watch ('auto'), devcontainer.json `forwardPorts`
 * ('config'), or the user ('user'). Only 'auto' forwards follow the guest's listeners.
 */
export type ForwardOrigin = 'auto' | 'config' | 'user';

/** A forward as the host sees it: guest port -> 127.0.0.1:hostPort. */
export interface ForwardedPort {
  guestPort: number;
  hostPort: number;
}
