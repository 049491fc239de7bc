import { execFileSync } from 'node:child_process';

/**
 * Real host networking for the netguard tests and bench rows, through iproute2. Every name
 * these create starts with `mvng-`, and each user removes its own names before it starts
 * (a run that was killed leaves them behind) and when it ends, also on failure.
 */

/** Runs `ip [-n NETNS] -batch -` with one command per line; throws with ip's message. */
export function ipBatch(lines: string[], netns?: string): void {
  execFileSync('ip', [...(netns ? ['-n', netns] : []), '-batch', '-'], { input: `${lines.join('\n')}\n`, stdio: ['pipe', 'ignore', 'pipe'] });
}

/** `ip ARGS...`, its stdout. */
export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Deletes network namespaces and links (with their addresses); names that do not exist are fine. */
export function removeHostNet({ netns = [], links = [] }: { netns?: string[]; links?: string[] }): void {
  const existingNetns = ip('netns', 'list').split('\n').map((l) => l.split(' ')[0]);
  for (const name of netns.filter((n) => existingNetns.includes(n))) ip('netns', 'delete', name);
  const existingLinks = (JSON.parse(ip('-j', 'link', 'show')) as Array<{ ifname: string }>).map((l) => l.ifname);
  for (const name of links.filter((n) => existingLinks.includes(n))) ip('link', 'delete', name);
}

/** Network namespaces and links need root (CAP_NET_ADMIN); tests skip with this reason otherwise. */
export const NEEDS_ROOT = process.getuid?.() === 0 ? false : 'needs root: creates network namespaces, bridges and addresses';
