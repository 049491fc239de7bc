import * as fs from 'node:fs';

/**
 * QEMU processes this Node process started and that still run. The launcher execs QEMU,
 * so QEMU is a direct child of ours.
 */
export function ourQemuProcesses(): Array<{ pid: number; comm: string }> {
  const found: Array<{ pid: number; comm: string }> = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(ppid) === process.pid && state !== 'Z' && /qemu|microvm-launch/.test(comm)) {
      found.push({ pid: Number(name), comm });
    }
  }
  return found;
}
