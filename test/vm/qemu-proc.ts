import * as fs from 'node:fs';

/** The QEMU process of a VM, found by its state directory (the VM id) in its command line. */
export function qemuPidOf(vmId: string): number {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.startsWith('/') && cmdline.includes('qemu-system') && cmdline.includes(`/${vmId}/`)) return Number(entry);
    } catch {
      // the process ended while we looked
    }
  }
  throw new Error(`no QEMU process for VM ${vmId}`);
}
