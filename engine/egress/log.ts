import type { EgressEvent } from './proxy';
import { describeGuestProcess } from './attribution';

/**
 * One line per connection for the workspace log and the CLI: `refused evil.example:443 (not
 * in the allowlist)` or `registry.npmjs.org:443 12.1 KiB up, 2.3 MiB down`. Names come from
 * the guest: JSON-quoted when they hold anything but host-name characters. The process, when
 * the agent named it, ends the line: `by curl (pid 312, as the guest reports)`.
 */
export function describeEgress(event: EgressEvent): string {
  const name = /^[A-Za-z0-9.*-]{1,253}$/.test(event.name) ? event.name : JSON.stringify(event.name.slice(0, 253));
  const target = `${name}:${event.port}`;
  const by = event.process ? ` by ${describeGuestProcess(event.process)}` : '';
  if (!event.allowed) return `refused ${target} (${event.reason ?? 'refused'})${by}`;
  const traffic = `${size(event.bytesUp)} up, ${size(event.bytesDown)} down`;
  return `${target} ${traffic}${event.reason ? ` (${event.reason})` : ''}${by}`;
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
