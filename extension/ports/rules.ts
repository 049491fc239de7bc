import { attributesFor, PortsConfig, Session } from '../../engine/index';
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
  /** A compose workspace: the service the port belongs to (the view groups rows by it). */
  service?: string;
  /** Another service's forward (forwardPorts `"db:5432"`): opened and copied, not stopped from the view. */
  serviceForward?: boolean;
}

export interface DetectedPort {
  port: number;
  command: string;
}

/** A process name is /proc/PID/comm (15 bytes); a label is the config's. Longer text is cut. */
const MAX_PROCESS_CHARS = 32;
const MAX_LABEL_CHARS = 64;

/**
 * The rows of the Ports view: every detected port and every configured one, once each,
 * sorted by port. `forwards` maps guest ports to their host port; `notes` says why a port
 * is not forwarded. Process names (from the guest) and labels (from the config) become plain lines.
 */
export function portRows(
  detected: DetectedPort[],
  declared: Pick<PortsConfig, 'forward' | 'attributes' | 'otherAttributes'>,
  forwards: ReadonlyMap<number, number>,
  notes: ReadonlyMap<number, string> = new Map(),
): PortRow[] {
  const processes = new Map<number, string>();
  for (const d of detected) if (!processes.get(d.port)) processes.set(d.port, d.command);
  const ports = new Set([...processes.keys(), ...declared.forward, ...forwards.keys()]);
  return [...ports]
    .sort((a, b) => a - b)
    .map((port) => {
      const hostPort = forwards.get(port);
      return {
        guestPort: port,
        localAddress: hostPort === undefined ? undefined : `127.0.0.1:${hostPort}`,
        process: plainLine(processes.get(port) ?? '', MAX_PROCESS_CHARS),
        label: plainLine(attributesFor(port, declared, processes.get(port) ?? '').label ?? '', MAX_LABEL_CHARS),
        note: hostPort === undefined ? (notes.get(port) ?? '') : '',
      };
    });
}

/** The Ports view's rows for a running session. */
export function sessionRows(session: Pick<Session, 'portState'> & { plan: Pick<Session['plan'], 'ports'> }): PortRow[] {
  const state = session.portState();
  const own = portRows([...state.listeners], session.plan.ports, state.forwards, state.notForwarded);
  if (!state.primaryService) return own;
  const primary = plainLine(state.primaryService, MAX_LABEL_CHARS);
  const services = (state.serviceForwards ?? []).map((f) => ({
    guestPort: f.port,
    localAddress: f.localAddr,
    process: '',
    label: '',
    note: '',
    service: plainLine(f.service, MAX_LABEL_CHARS),
    serviceForward: true,
  }));
  return [...own.map((row) => ({ ...row, service: primary })), ...services];
}

/** A compose workspace's service in the Ports view: its ports are its children. */
export interface ServiceGroup {
  group: string;
}

/**
 * The Ports view's tree: the rows as they are for a single-VM workspace; in a compose workspace
 * (some row names a service), one group per service in the rows' order (the workspace's own
 * first, as sessionRows() puts it), each holding that service's rows. A row without a service
 * in a compose workspace goes to the group named "".
 */
export function portTree(rows: readonly PortRow[], element?: PortRow | ServiceGroup): Array<PortRow | ServiceGroup> {
  if (element && 'group' in element) return rows.filter((r) => (r.service ?? '') === element.group);
  if (element) return [];
  if (!rows.some((r) => r.service !== undefined)) return [...rows];
  return [...new Set(rows.map((r) => r.service ?? ''))].map((group) => ({ group }));
}
