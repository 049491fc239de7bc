import { MicrovmError } from '../../errors';

/** The vsock port the guest agent listens on; vfkit connects each host connection of the agent socket to it. */
export const AGENT_VSOCK_PORT = 1024;

/** Everything a vfkit command line is made of, as the backend decides it (absolute host paths). */
export interface VfkitSpec {
  /** An uncompressed kernel on Apple silicon (vfkit refuses a compressed one there). */
  kernel: string;
  initrd: string;
  /** Kernel command line words; none may hold a double quote (vfkit's quoting has no escape). */
  cmdline: string[];
  memoryMib: number;
  vcpus: number;
  /** virtio-blk disks in order: the guest sees them as /dev/vda, /dev/vdb, ... */
  disks: Array<{ path: string; readOnly: boolean }>;
  /** virtio-fs shares: the guest mounts `tag`. */
  shares: Array<{ hostPath: string; tag: string }>;
  /** The agent channel: vfkit listens on `socket` and connects each host connection to guest vsock `port`. */
  agent: { port: number; socket: string };
  /** Where the guest console (hvc0) is written. */
  consoleLog: string;
  /** vfkit's REST service (state, stop) on this Unix socket. */
  restSocket: string;
  /** A NAT'ed guest NIC (VZNATNetworkDeviceAttachment); absent = no NIC. */
  network: boolean;
  pidFile?: string;
}

/**
 * The vfkit command line for `spec` (doc/usage.md of crc-org/vfkit): the Linux bootloader,
 * resources, one `--device` per disk, share, vsock port, NIC and the console, and the REST
 * socket. vfkit splits device options at every comma and the bootloader's outside double
 * quotes, with no escape: a value holding a comma (or a quote) is refused here, every one at
 * once, rather than handed to vfkit to misread.
 */
export function vfkitArgv(spec: VfkitSpec): string[] {
  const problems: string[] = [];
  const value = (what: string, text: string): string => {
    if (/[,"\n]/.test(text)) problems.push(`${what} ${JSON.stringify(text)} holds a comma, a quote or a newline`);
    return text;
  };
  const cmdline = spec.cmdline.join(' ');
  if (/["\n]/.test(cmdline))
    problems.push(`the kernel command line ${JSON.stringify(cmdline)} holds a quote or a newline`);
  const argv = [
    '--cpus',
    String(spec.vcpus),
    '--memory',
    String(spec.memoryMib),
    '--bootloader',
    `linux,kernel=${value('kernel', spec.kernel)},initrd=${value('initrd', spec.initrd)},cmdline="${cmdline}"`,
  ];
  for (const disk of spec.disks)
    argv.push('--device', `virtio-blk,path=${value('disk', disk.path)}${disk.readOnly ? ',readonly' : ''}`);
  for (const share of spec.shares) {
    if (!/^[A-Za-z0-9_.-]{1,36}$/.test(share.tag))
      problems.push(`share tag ${JSON.stringify(share.tag)} is not 1-36 of [A-Za-z0-9_.-]`);
    argv.push('--device', `virtio-fs,sharedDir=${value('shared folder', share.hostPath)},mountTag=${share.tag}`);
  }
  if (!Number.isInteger(spec.agent.port) || spec.agent.port < 1024 || spec.agent.port > 0xffffffff)
    problems.push(`agent vsock port ${spec.agent.port} is not a whole number from 1024`);
  argv.push(
    '--device',
    `virtio-vsock,port=${spec.agent.port},socketURL=${value('agent socket', spec.agent.socket)},connect`,
  );
  if (spec.network) argv.push('--device', 'virtio-net,nat');
  argv.push('--device', `virtio-serial,logFilePath=${value('console log', spec.consoleLog)}`);
  argv.push('--device', 'virtio-rng');
  argv.push('--restful-uri', `unix://${value('REST socket', spec.restSocket)}`);
  if (spec.pidFile) argv.push('--pidfile', value('pid file', spec.pidFile));
  if (problems.length > 0) {
    throw new MicrovmError(
      'E_BAD_OPTION',
      `cannot pass these to vfkit: ${problems.join('; ')}; move the files to paths without commas or quotes`,
    );
  }
  return argv;
}

/** The kernel command line of a vfkit guest: the console is the virtio console (hvc0). */
export function vfkitKernelCmdline(opts: { rootDisk: boolean; agentPort: number; extra?: string[] }): string[] {
  return [
    'console=hvc0',
    'panic=-1',
    'quiet',
    'rdinit=/init',
    ...(opts.rootDisk ? ['microvm.root=/dev/vda', 'microvm.rootfstype=ext4'] : []),
    `microvm.vsock=${opts.agentPort}`,
    ...(opts.extra ?? []),
  ];
}
