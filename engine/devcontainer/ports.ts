/**
 * The port settings of a devcontainer.json: `forwardPorts` (numbers, or `"service:port"` for a
 * compose service), `appPort` (published ports), `portsAttributes` (keyed by a port, a range
 * `"3000-3010"` or a regular expression matched against the listening process) and
 * `otherPortsAttributes` for every other port.
 */
export const AUTO_FORWARD_ACTIONS = [
  'notify',
  'openBrowser',
  'openBrowserOnce',
  'openPreview',
  'silent',
  'ignore',
] as const;
/** `onAutoForward`: what happens when a port starts listening. */
export type AutoForwardAction = (typeof AUTO_FORWARD_ACTIONS)[number];

/** `portsAttributes` of one port or range: its label, protocol and what happens when it listens. */
export interface PortAttributes {
  label?: string;
  protocol?: 'http' | 'https';
  onAutoForward?: AutoForwardAction;
  /** The same local port or nothing: no fallback to a free port. */
  requireLocalPort?: boolean;
  elevateIfNeeded?: boolean;
}

/** A workspace's port configuration from devcontainer.json, resolved. */
export interface PortsConfig {
  /** Guest ports to forward from the start (forwardPorts, localhost ones). */
  forward: number[];
  /** `"db:5432"`: ports of compose services. */
  servicePorts: Array<{ service: string; port: number }>;
  /** appPort: published ports, host port -> guest port. */
  publish: Array<{ hostPort: number; guestPort: number }>;
  attributes: Record<string, PortAttributes>;
  otherAttributes?: PortAttributes;
}

const MAX_PORT = 65535;

export function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_PORT;
}

/**
 * One forwardPorts entry: a port, `"localhost:N"`, or `"service:N"`. A service name is one
 * compose accepts (letters, digits, `.`, `_`, `-`): the schema's pattern leaves out `_` and
 * `.`, and real projects name services `postgres_db`.
 */
export function parseForwardPort(value: unknown): { port: number } | { service: string; port: number } | undefined {
  if (isPort(value)) return { port: value };
  const [, host, portText] =
    (typeof value === 'string' ? /^([a-z0-9][a-z0-9_.-]*):(\d{1,5})$/i.exec(value) : null) ?? [];
  const port = Number(portText);
  if (!host || !isPort(port)) return undefined;
  return ['localhost', '127.0.0.1'].includes(host.toLowerCase()) ? { port } : { service: host, port };
}

/** appPort: `3000`, `"8000:8010"` (host:guest), `"127.0.0.1:8000:8010"`, or an array of those. */
export function parseAppPort(value: unknown): Array<{ hostPort: number; guestPort: number }> | undefined {
  const items = Array.isArray(value) ? value : [value];
  const out: Array<{ hostPort: number; guestPort: number }> = [];
  for (const item of items) {
    if (isPort(item)) {
      out.push({ hostPort: item, guestPort: item });
      continue;
    }
    const match =
      typeof item === 'string' ? /^(?:(?:127\.0\.0\.1|localhost):)?(\d{1,5})(?::(\d{1,5}))?$/.exec(item) : null;
    if (!match) return undefined;
    const hostPort = Number(match[1]);
    const guestPort = Number(match[2] ?? match[1]);
    if (!isPort(hostPort) || !isPort(guestPort)) return undefined;
    out.push({ hostPort, guestPort });
  }
  return out;
}

/** A portsAttributes key: a port, a range, or else a regular expression (undefined when it is none). */
export function portKeyMatcher(key: string): ((port: number, process: string) => boolean) | undefined {
  if (/^\d+$/.test(key)) return (port) => port === Number(key);
  const range = /^(\d+)-(\d+)$/.exec(key);
  if (range) return (port) => port >= Number(range[1]) && port <= Number(range[2]);
  try {
    const pattern = new RegExp(key);
    return (_port, process) => process !== '' && pattern.test(process);
  } catch {
    return undefined;
  }
}

/**
 * The attributes for a port: an exact port key wins over a range, a range over a process
 * pattern, and otherPortsAttributes applies when nothing matches.
 */
export function attributesFor(
  port: number,
  ports: Pick<PortsConfig, 'attributes' | 'otherAttributes'>,
  process = '',
): PortAttributes {
  const exact = ports.attributes[String(port)];
  if (exact) return exact;
  const entries = Object.entries(ports.attributes);
  const ranged = entries.find(([key]) => /^\d+-\d+$/.test(key) && portKeyMatcher(key)?.(port, process));
  if (ranged) return ranged[1];
  const pattern = entries.find(([key]) => !/^\d+(-\d+)?$/.test(key) && portKeyMatcher(key)?.(port, process));
  if (pattern) return pattern[1];
  return ports.otherAttributes ?? {};
}

/** What happens when the guest starts listening on `port` (`onAutoForward`, `notify` by default). */
export function autoForwardAction(
  port: number,
  ports: Pick<PortsConfig, 'attributes' | 'otherAttributes'>,
  process = '',
): AutoForwardAction {
  return attributesFor(port, ports, process).onAutoForward ?? 'notify';
}

/** The workspace declared the port: in forwardPorts, or a portsAttributes port or range names it. */
export function isDeclared(port: number, ports: Pick<PortsConfig, 'forward' | 'attributes'>): boolean {
  if (ports.forward.includes(port)) return true;
  return Object.keys(ports.attributes).some((key) => /^\d+(-\d+)?$/.test(key) && portKeyMatcher(key)?.(port, ''));
}
