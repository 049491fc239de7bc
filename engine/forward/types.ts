/** Where a forward listens on the host: always 127.0.0.1. */
export interface ForwardAddress {
  address: '127.0.0.1';
  port: number;
  family: 'IPv4';
}

/** `--publish HOST:GUEST`: host port 0 picks a free port. */
export interface PublishSpec {
  hostPort: number;
  guestPort: number;
}
