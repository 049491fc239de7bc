import { quote } from '../devcontainer/problems';
import { isLoopback, isPort, parsePortEntry, range } from './ports';
import type { ComposeService } from './types';
import type { ServiceContext, ServicePath } from './service-context';

export function readPorts(
  raw: Record<string, unknown>,
  service: ComposeService,
  ctx: ServiceContext,
  at: ServicePath,
): void {
  const list = raw.ports === undefined ? [] : Array.isArray(raw.ports) ? raw.ports : undefined;
  if (!list)
    ctx.problems.add(
      ctx.file,
      'warning',
      'compose-ports',
      at('ports'),
      `ports is ${quote(raw.ports)}, not a list`,
      'no port of the service is published',
    );
  (list ?? []).forEach((entry, i) => {
    const parsed = parsePortEntry(entry);
    if ('error' in parsed) {
      ctx.problems.add(ctx.file, 'warning', 'compose-port', at('ports', i), parsed.error, 'this port is not published');
      return;
    }
    if (parsed.hostIp && !isLoopback(parsed.hostIp)) {
      ctx.problems.add(
        ctx.file,
        'info',
        'compose-port-address',
        at('ports', i),
        `the port is published on ${parsed.hostIp}`,
        'published on 127.0.0.1 only: forwards never listen beyond this machine',
      );
    }
    for (const port of parsed.ports) {
      if (port.protocol === 'udp') {
        ctx.problems.add(
          ctx.file,
          'warning',
          'compose-port-udp',
          at('ports', i),
          `${port.target}/udp is a UDP port`,
          'not forwarded: forwards are TCP only',
        );
        continue;
      }
      service.ports.push(port);
      if (!service.expose.includes(port.target)) service.expose.push(port.target);
    }
  });
  const expose = raw.expose === undefined ? [] : Array.isArray(raw.expose) ? raw.expose : [raw.expose];
  expose.forEach((entry, i) => {
    const ports =
      typeof entry === 'number'
        ? isPort(entry)
          ? [entry]
          : { error: `${entry} is not a port` }
        : range(String(entry).split('/', 1)[0] ?? '');
    if ('error' in ports)
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-expose',
        at('expose', i),
        ports.error,
        'not reachable from the other services',
      );
    else for (const p of ports) if (!service.expose.includes(p)) service.expose.push(p);
  });
}
