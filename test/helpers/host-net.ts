import { execFileSync } from 'node:child_process';

/**
 * Real host networking for the netguard tests and bench rows, through iproute2. Every name
 * these create starts with `mvng-`, and each user removes its own names before it starts
 * (a run that was killed leaves them behind) and when it ends, also on failure.
 */

/** Runs `ip [-n NETNS] -batch -` with one command per line; throws with ip's message. */
export function ipBatch(lines: string[], netns?: string): void {
  execFileSync('ip', [...(netns ? ['-n', netns] : []), '-batch', '-'], {
    input: `${lines.join('\n')}\n`,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
}

/** `ip ARGS...`, its stdout. */
export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Deletes links (with their addresses) and then network namespaces; names that do not exist are
 * fine. Links go first: deleting a namespace destroys the veth peers inside it, and their host
 * ends, later, from the kernel's cleanup work, so a link listed a moment ago may be gone.
 */
export function removeHostNet({ netns = [], links = [] }: { netns?: string[]; links?: string[] }): void {
  for (const name of links) deleteIfPresent(['link', 'delete', name], /Cannot find device/);
  const existingNetns = ip('netns', 'list')
    .split('\n')
    .map((l) => l.split(' ')[0]);
  for (const name of netns.filter((n) => existingNetns.includes(n)))
    deleteIfPresent(['netns', 'delete', name], /No such file/);
}

function deleteIfPresent(args: string[], absent: RegExp): void {
  try {
    ip(...args);
  } catch (error) {
    if (!absent.test(String((error as { stderr?: unknown }).stderr ?? ''))) throw error;
  }
}

/** Network namespaces and links need root (CAP_NET_ADMIN); tests skip with this reason otherwise. */
export const NEEDS_ROOT =
  process.getuid?.() === 0 ? false : 'needs root: creates network namespaces, bridges and addresses';
