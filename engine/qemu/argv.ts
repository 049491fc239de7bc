import { networkArgs } from './network';
import { QemuSpec } from './types';

/**
 * The QEMU command line for a microVM, as a pure function of its spec. Hardening is not
 * optional: -nodefaults -no-user-config, explicit format=raw, QMP only on a private socket.
 */
export function buildQemuArgv(spec: QemuSpec): string[] {
  const bus = transport(spec);
  return [
    ...machineArgs(spec),
    '-m',
    String(spec.memoryMib),
    ...memoryArgs(spec),
    '-smp',
    String(spec.vcpus),
    '-nodefaults',
    '-no-user-config',
    '-no-reboot',
    '-display',
    'none',
    ...sandboxArgs(spec),
    ...(spec.runAs ? ['-runas', spec.runAs] : []),
    '-chardev',
    'stdio,id=console,signal=off',
    '-serial',
    'chardev:console',
    ...bootArgs(spec),
    ...rootDiskArgs(spec),
    ...storageArgs(spec),
    ...hotplugPortArgs(spec),
    '-device',
    `virtio-serial-${bus}`,
    '-chardev',
    `socket,id=agent,path=${escapeOption(spec.agentSocket)},server=on,wait=off`,
    '-device',
    'virtserialport,chardev=agent,name=agent',
    ...networkArgs(spec.network, bus, spec.serviceLinks),
    '-qmp',
    `unix:${escapeOption(spec.qmpSocket)},server=on,wait=off`,
    ...(spec.incoming ? ['-incoming', `unix:${escapeOption(spec.incoming)}`] : []),
  ];
}

/**
 * QEMU's seccomp filter. With -runas, set*id calls stay allowed: the drop itself is one, and
 * once QEMU has dropped from root to an unprivileged user no uid 0 is left to elevate to
 * (NoNewPrivs and spawn=deny still hold).
 */
function sandboxArgs(spec: QemuSpec): string[] {
  if (!spec.seccomp) return [];
  const elevate = spec.runAs ? '' : ',elevateprivileges=deny';
  return ['-sandbox', `on,obsolete=deny${elevate},spawn=deny,resourcecontrol=deny`];
}

/**
 * The kernel, initramfs and command line, for a fresh boot only. A restored guest is past its
 * boot and never reads them again (a reboot ends QEMU: -no-reboot), while QEMU would copy
 * both files into fw_cfg memory of every clone: about 17 MiB private per VM for nothing.
 */
function bootArgs(spec: QemuSpec): string[] {
  if (spec.incoming) return [];
  return ['-kernel', spec.kernel, '-initrd', spec.initrd, '-append', kernelCmdline(spec).join(' ')];
}

function memoryArgs(spec: QemuSpec): string[] {
  if (spec.memory.kind === 'anonymous') return [];
  if (spec.memory.kind === 'ram') return ['-object', `memory-backend-ram,id=mem,size=${spec.memoryMib}M`];
  const share = spec.memory.shared ? 'on' : 'off';
  return [
    '-object',
    `memory-backend-file,id=mem,size=${spec.memoryMib}M,mem-path=${escapeOption(spec.memory.path)},share=${share}`,
  ];
}

function machineArgs(spec: QemuSpec): string[] {
  const accel = spec.accel === 'tcg' ? 'tcg,thread=multi' : spec.accel;
  if (spec.arch === 'x86_64' && spec.machine === 'q35') {
    // qboot: a minimal firmware that loads -kernel directly, much faster than SeaBIOS under TCG.
    return [
      '-M',
      `q35${memoryBackend(spec)}`,
      '-bios',
      'qboot.rom',
      '-accel',
      accel,
      '-cpu',
      spec.accel === 'tcg' ? 'max' : 'host',
    ];
  }
  if (spec.arch === 'x86_64') {
    return [
      '-M',
      `microvm,rtc=on${memoryBackend(spec)}`,
      '-accel',
      accel,
      '-cpu',
      spec.accel === 'tcg' ? 'max' : 'host',
      '-global',
      'virtio-mmio.force-legacy=false',
    ];
  }
  // aarch64: the virt machine (a device tree, PL011 console, virtio-mmio transports, GICv3 or
  // what KVM offers). Under TCG, 'max' with QEMU's cheap pointer-authentication algorithm:
  // the architected one (QARMA) costs a plain 'max' about three times the boot.
  return [
    '-M',
    `virt,highmem=on,gic-version=max${memoryBackend(spec)}`,
    '-accel',
    accel,
    '-cpu',
    spec.accel === 'tcg' ? 'max,pauth-impdef=on' : 'host',
    '-global',
    'virtio-mmio.force-legacy=false',
  ];
}

function memoryBackend(spec: QemuSpec): string {
  return spec.memory.kind === 'anonymous' ? '' : ',memory-backend=mem';
}

/** The guest kernel command line; snapshots record it, since a restored kernel keeps the one it booted with. */
export function kernelCmdline(spec: Pick<QemuSpec, 'arch' | 'accel' | 'tscKhz' | 'rootDisk' | 'cmdline'>): string[] {
  const console = spec.arch === 'x86_64' ? 'ttyS0' : 'ttyAMA0';
  return [
    `console=${console}`,
    'panic=-1',
    ...(spec.arch === 'x86_64' ? ['reboot=t'] : []),
    'quiet',
    'rdinit=/init',
    ...(spec.arch === 'x86_64' && spec.accel === 'tcg' && spec.tscKhz ? [`tsc_early_khz=${spec.tscKhz}`] : []),
    ...(spec.rootDisk ? ['microvm.root=/dev/vda', 'microvm.rootfstype=ext4'] : []),
    ...spec.cmdline,
  ];
}

function rootDiskArgs(spec: QemuSpec): string[] {
  if (!spec.rootDisk) return [];
  return [
    '-drive',
    `id=root,file=${escapeOption(spec.rootDisk)},format=raw,if=none,readonly=on`,
    '-device',
    `virtio-blk-${transport(spec)},drive=root`,
  ];
}

/** virtio-fs needs shared guest RAM: the file backend with share=on that fresh boots use. */
function storageArgs(spec: QemuSpec): string[] {
  const args: string[] = [];
  const bus = transport(spec);
  for (const [i, fs] of (spec.virtiofs ?? []).entries()) {
    args.push(
      '-chardev',
      `socket,id=vfs${i},path=${escapeOption(fs.socket)}`,
      '-device',
      `vhost-user-fs-${bus},chardev=vfs${i},tag=${escapeOption(fs.tag)}`,
    );
  }
  for (const [i, volume] of (spec.volumes ?? []).entries()) {
    let file = escapeOption(volume.file);
    if (volume.fds) {
      const set = i + 1;
      args.push('-add-fd', `fd=${volume.fds.readWrite},set=${set}`, '-add-fd', `fd=${volume.fds.readOnly},set=${set}`);
      file = `/dev/fdset/${set}`;
    }
    // werror=enospc: on a full host disk QEMU pauses the guest (BLOCK_IO_ERROR) instead of failing its writes.
    args.push(
      '-drive',
      `id=${volumeDriveId(i)},file=${file},format=raw,if=none,discard=unmap,werror=enospc`,
      '-device',
      `virtio-blk-${bus},drive=${volumeDriveId(i)},serial=${escapeOption(volume.serial)}`,
    );
  }
  return args;
}

/**
 * virtio devices sit on virtio-mmio on the microvm machine and on PCI on q35 and on aarch64's
 * virt machine: virt's virtio-mmio transports are probed in the reverse order of the command
 * line, so the root disk would not be /dev/vda; PCI slots keep the command line's order.
 */
function transport(spec: QemuSpec): 'device' | 'pci' {
  return spec.machine === 'q35' || spec.arch === 'aarch64' ? 'pci' : 'device';
}

/** The id of the i-th empty PCIe root port (q35), where hotplug.ts adds devices. */
export const HOTPLUG_PORT_PREFIX = 'hotplug';

/** Empty PCIe root ports, each its own chassis/slot, so the guest's pciehp can take a device in and out. */
function hotplugPortArgs(spec: QemuSpec): string[] {
  if (spec.machine !== 'q35') return [];
  const args: string[] = [];
  for (let i = 0; i < (spec.hotplugSlots ?? 0); i++) {
    args.push('-device', `pcie-root-port,id=${HOTPLUG_PORT_PREFIX}${i},bus=pcie.0,chassis=${i + 1},slot=${i + 1}`);
  }
  return args;
}

/** The drive id of the i-th volume, as QMP events name it. */
export function volumeDriveId(index: number): string {
  return `vol${index}`;
}

/** QEMU option values use ',' as separator; a literal comma is written twice. */
export function escapeOption(value: string): string {
  return value.replace(/,/g, ',,');
}
