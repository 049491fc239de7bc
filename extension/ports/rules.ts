import type { AutoForwardAction, PortAttributes } from '../config/schema';

/** A guest port as the Ports view lists it. */
export interface PortRow {
  guestPort: number;
  /** '127.0.0.1:PORT' when forwarded. */
  localAddress: string | undefined;
  /** The guest process listening, '' when none is (yet). */
  process: string;
  label: string;
}

export interface DetectedPort {
  port: number;
  command: string;
}

/** The attributes for a port: an exact key wins over a range such as "3000-3010". */
export function attributesFor(port: number, attributes: Record<string, PortAttributes>): PortAttributes {
  if (attributes[String(port)]) return attributes[String(port)];
  for (const [key, value] of Object.entries(attributes)) {
    const [low, high] = key.split('-').map(Number);
    if (high !== undefined && port >= low && port <= high) return value;
  }
  return {};
}

export function autoForwardAction(port: number, attributes: Record<string, PortAttributes>): AutoForwardAction {
  return attributesFor(port, attributes).onAutoForward ?? 'notify';
}

/**
 * The rows of the Ports view: every detected port and every configured one, once each,
 * sorted by port. `forwards` maps guest ports to their host port.
 */
export function portRows(
  detected: DetectedPort[],
  configured: number[],
  forwards: ReadonlyMap<number, number>,
  attributes: Record<string, PortAttributes>,
): PortRow[] {
  const processes = new Map<number, string>();
  for (const d of detected) if (!processes.get(d.port)) processes.set(d.port, d.command);
  const ports = new Set([...processes.keys(), ...configured, ...forwards.keys()]);
  return [...ports].sort((a, b) => a - b).map((port) => {
    const hostPort = forwards.get(port);
    return {
      guestPort: port,
      localAddress: hostPort === undefined ? undefined : `127.0.0.1:${hostPort}`,
      process: processes.get(port) ?? '',
      label: attributesFor(port, attributes).label ?? '',
    };
  });
}

/** Detected ports that should be forwarded now: not forwarded yet, not ignored, not stopped by the user. */
export function portsToForward(
  detected: DetectedPort[],
  forwards: { has(port: number): boolean },
  stoppedByUser: ReadonlySet<number>,
  attributes: Record<string, PortAttributes>,
): number[] {
  const ports = new Set(detected.map((d) => d.port));
  return [...ports].filter((p) => !forwards.has(p) && !stoppedByUser.has(p) && autoForwardAction(p, attributes) !== 'ignore');
}
