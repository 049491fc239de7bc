import type { AutoForwardAction, PortAttributes } from '../config/schema';
import { plainLine } from '../ui/notice-text';

/** A guest port as the Ports view lists it. Every string is plain text, safe to show. */
export interface PortRow {
  guestPort: number;
  /** '127.0.0.1:PORT' when forwarded. */
  localAddress: string | undefined;
  /** The guest process listening, '' when none is (yet). */
  process: string;
  label: string;
  /** Why the port is not forwarded, '' when it is or when there is nothing to say. */
  note: string;
}

export interface DetectedPort {
  port: number;
  command: string;
}

/** A process name is /proc/PID/comm (15 bytes); a label is the config's. Longer text is cut. */
const MAX_PROCESS_CHARS = 32;
const MAX_LABEL_CHARS = 64;

/** The attributes for a port: an exact key wins over a range such as "3000-3010". */
export function attributesFor(port: number, attributes: Record<string, PortAttributes>): PortAttributes {
  return attributes[String(port)] ?? rangeKeyFor(port, attributes)?.[1] ?? {};
}

function rangeKeyFor(port: number, attributes: Record<string, PortAttributes>): [string, PortAttributes] | undefined {
  return Object.entries(attributes).find(([key]) => {
    const [low, high] = key.split('-').map(Number);
    return high !== undefined && port >= low && port <= high;
  });
}

export function autoForwardAction(port: number, attributes: Record<string, PortAttributes>): AutoForwardAction {
  return attributesFor(port, attributes).onAutoForward ?? 'notify';
}

/** The workspace declared the port: in forwardPorts, or a portsAttributes key (or range) names it. */
export function isDeclared(port: number, forwardPorts: readonly number[], attributes: Record<string, PortAttributes>): boolean {
  return forwardPorts.includes(port) || Object.hasOwn(attributes, String(port)) || rangeKeyFor(port, attributes) !== undefined;
}

/**
 * The rows of the Ports view: every detected port and every configured one, once each,
 * sorted by port. `forwards` maps guest ports to their host port; `notes` says why a port
 * is not forwarded. Process names (from the guest) and labels (from the config) become plain lines.
 */
export function portRows(
  detected: DetectedPort[],
  configured: number[],
  forwards: ReadonlyMap<number, number>,
  attributes: Record<string, PortAttributes>,
  notes: ReadonlyMap<number, string> = new Map(),
): PortRow[] {
  const processes = new Map<number, string>();
  for (const d of detected) if (!processes.get(d.port)) processes.set(d.port, d.command);
  const ports = new Set([...processes.keys(), ...configured, ...forwards.keys()]);
  return [...ports].sort((a, b) => a - b).map((port) => {
    const hostPort = forwards.get(port);
    return {
      guestPort: port,
      localAddress: hostPort === undefined ? undefined : `127.0.0.1:${hostPort}`,
      process: plainLine(processes.get(port) ?? '', MAX_PROCESS_CHARS),
      label: plainLine(attributesFor(port, attributes).label ?? '', MAX_LABEL_CHARS),
      note: hostPort === undefined ? notes.get(port) ?? '' : '',
    };
  });
}
