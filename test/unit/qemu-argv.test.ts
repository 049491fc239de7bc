import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildQemuArgv } from '../../engine/qemu/argv';
import { QemuSpec } from '../../engine/qemu/types';
import { decideQemuUser, findPasswdEntry } from '../../engine/qemu/run-as';

const base: QemuSpec = {
  arch: 'x86_64',
  accel: 'tcg',
  memoryMib: 256,
  vcpus: 1,
  kernel: '/a/vmlinuz',
  initrd: '/a/initrd.cpio',
  cmdline: [],
  rootDisk: '/cache/root,1.ext4',
  memory: { kind: 'anonymous' },
  agentSocket: '/run/x/agent.sock',
  qmpSocket: '/run/x/qmp.sock',
  seccomp: true,
};

function valueOf(argv: string[], flag: string): string[] {
  return argv.flatMap((arg, i) => (arg === flag ? [argv[i + 1] ?? '(missing)'] : []));
}

test('every VM is hardened: no defaults, no user config, seccomp, raw read-only root, private QMP', () => {
  const argv = buildQemuArgv(base);
  for (const flag of ['-nodefaults', '-no-user-config', '-no-reboot']) assert.ok(argv.includes(flag), flag);
  assert.match(
    valueOf(argv, '-sandbox')[0]!,
    /^on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny$/,
  );
  assert.deepEqual(valueOf(argv, '-drive'), ['id=root,file=/cache/root,,1.ext4,format=raw,if=none,readonly=on']);
  assert.deepEqual(valueOf(argv, '-qmp'), ['unix:/run/x/qmp.sock,server=on,wait=off']);
  assert.ok(!argv.some((arg) => /tcp:|telnet|-monitor|-vnc|-gdb/.test(arg)), 'no listening monitor or debug port');
  assert.equal(buildQemuArgv({ ...base, seccomp: false }).includes('-sandbox'), false);
});

test('x86_64 uses the microvm machine; TCG gets -cpu max, KVM -cpu host', () => {
  const tcg = buildQemuArgv(base);
  assert.equal(valueOf(tcg, '-M')[0]!.split(',')[0], 'microvm');
  assert.deepEqual(valueOf(tcg, '-accel'), ['tcg,thread=multi']);
  assert.deepEqual(valueOf(tcg, '-cpu'), ['max']);
  const kvm = buildQemuArgv({ ...base, accel: 'kvm' });
  assert.deepEqual(valueOf(kvm, '-accel'), ['kvm']);
  assert.deepEqual(valueOf(kvm, '-cpu'), ['host']);
  assert.match(valueOf(kvm, '-append')[0]!, /console=ttyS0 .*microvm\.root=\/dev\/vda/);
});

test('aarch64 under HVF uses the virt machine, -cpu host and the PL011 console', () => {
  const argv = buildQemuArgv({ ...base, arch: 'aarch64', accel: 'hvf' });
  assert.equal(valueOf(argv, '-M')[0]!.split(',')[0], 'virt');
  assert.deepEqual(valueOf(argv, '-accel'), ['hvf']);
  assert.deepEqual(valueOf(argv, '-cpu'), ['host']);
  assert.match(valueOf(argv, '-append')[0]!, /console=ttyAMA0/);
  assert.ok(argv.includes('virtio-serial-pci'));
});

test('aarch64 under TCG: virt with cheap pointer authentication, devices on PCI in command-line order, no x86 parameters', () => {
  const argv = buildQemuArgv({
    ...base,
    arch: 'aarch64',
    tscKhz: 2596096,
    volumes: [{ file: '/v/data.ext4', serial: 'vol-data' }],
    virtiofs: [{ socket: '/run/x/fs0.sock', tag: 'fs0' }],
  });
  assert.match(valueOf(argv, '-M')[0]!, /^virt,highmem=on,gic-version=max$/);
  assert.deepEqual(valueOf(argv, '-cpu'), ['max,pauth-impdef=on']);
  // virt probes virtio-mmio transports last-first: on PCI the root disk stays /dev/vda.
  assert.deepEqual(
    valueOf(argv, '-device').filter((d) => d.startsWith('virtio-blk')),
    ['virtio-blk-pci,drive=root', 'virtio-blk-pci,drive=vol0,serial=vol-data'],
  );
  assert.ok(valueOf(argv, '-device').includes('vhost-user-fs-pci,chardev=vfs0,tag=fs0'));
  const cmdline = valueOf(argv, '-append')[0]!;
  assert.match(cmdline, /^console=ttyAMA0 panic=-1 quiet rdinit=\/init microvm\.root=\/dev\/vda/);
  assert.doesNotMatch(cmdline, /reboot=t|tsc_early_khz/);
});

test('no root disk means no -drive and no microvm.root', () => {
  const argv = buildQemuArgv({ ...base, rootDisk: undefined, cmdline: ['microvm.mode=probe'] });
  assert.equal(argv.includes('-drive'), false);
  assert.doesNotMatch(valueOf(argv, '-append')[0]!, /microvm\.root/);
  assert.match(valueOf(argv, '-append')[0]!, /microvm\.mode=probe$/);
});

test('under TCG the host TSC rate is passed to the guest kernel; under KVM it is not', () => {
  assert.match(valueOf(buildQemuArgv({ ...base, tscKhz: 2596096 }), '-append')[0]!, / tsc_early_khz=2596096 /);
  assert.doesNotMatch(
    valueOf(buildQemuArgv({ ...base, accel: 'kvm', tscKhz: 2596096 }), '-append')[0]!,
    /tsc_early_khz/,
  );
});

test('guest RAM in a file: shared for fresh boots, private (copy-on-write) for clones; restores wait for migration and load no kernel', () => {
  const fresh = buildQemuArgv({ ...base, memory: { kind: 'file', path: '/dev/shm/vm/memory', shared: true } });
  assert.match(valueOf(fresh, '-M')[0]!, /,memory-backend=mem$/);
  assert.deepEqual(valueOf(fresh, '-object'), [
    'memory-backend-file,id=mem,size=256M,mem-path=/dev/shm/vm/memory,share=on',
  ]);
  assert.equal(fresh.includes('-incoming'), false);
  const clone = buildQemuArgv({
    ...base,
    memory: { kind: 'file', path: '/snap/mem', shared: false },
    incoming: '/run/x/in,1.sock',
  });
  assert.deepEqual(valueOf(clone, '-object'), ['memory-backend-file,id=mem,size=256M,mem-path=/snap/mem,share=off']);
  assert.deepEqual(valueOf(clone, '-incoming'), ['unix:/run/x/in,,1.sock']);
  for (const flag of ['-kernel', '-initrd', '-append']) {
    assert.equal(clone.includes(flag), false, `a restore needs no ${flag}: the guest is past its boot`);
    assert.equal(fresh.includes(flag), true);
  }
  assert.equal(buildQemuArgv(base).includes('-object'), false);
});

test('a root engine drops QEMU to the microvm user; the seccomp filter then allows the drop itself', () => {
  const dropped = buildQemuArgv({ ...base, runAs: 'microvm' });
  assert.deepEqual(valueOf(dropped, '-runas'), ['microvm']);
  assert.match(valueOf(dropped, '-sandbox')[0]!, /^on,obsolete=deny,spawn=deny,resourcecontrol=deny$/);
  assert.equal(buildQemuArgv(base).includes('-runas'), false);
});

test('QEMU runs as the microvm user only when the engine is root and the user exists', () => {
  const passwd = 'root:x:0:0:root:/root:/bin/bash\nmicrovm:x:998:997::/nonexistent:/usr/sbin/nologin\n';
  assert.deepEqual(decideQemuUser(0, passwd), { name: 'microvm', uid: 998, gid: 997 });
  assert.equal(decideQemuUser(1000, passwd), undefined, 'a normal user has nothing to drop');
  assert.equal(decideQemuUser(0, 'root:x:0:0:root:/root:/bin/bash\n'), undefined, 'no microvm user: stays root');
  assert.equal(decideQemuUser(0, 'microvm:x:0:0::/:/bin/sh\n'), undefined, 'a microvm user with uid 0 is no drop');
  assert.equal(decideQemuUser(0, undefined), undefined);
  for (const bad of [
    'microvm:x::997::/:/bin/sh',
    'microvm:x:abc:1::/:/bin/sh',
    'microvm:x:-1:1::/:/bin/sh',
    'microvm:x:5',
    '',
  ]) {
    assert.equal(findPasswdEntry(bad, 'microvm'), undefined, bad);
  }
});

test('a q35 workspace VM: qboot, virtio-pci devices, empty PCIe root ports for hot-plug, writable disks from inherited fds', () => {
  const argv = buildQemuArgv({
    ...base,
    machine: 'q35',
    hotplugSlots: 2,
    memory: { kind: 'file', path: '/run/x/memory', shared: true },
    volumes: [{ file: '/v/a.ext4', serial: 'microvm-vol0', fds: { readWrite: 3, readOnly: 4 } }],
  });
  assert.deepEqual(valueOf(argv, '-M'), ['q35,memory-backend=mem']);
  assert.deepEqual(valueOf(argv, '-bios'), ['qboot.rom']);
  assert.ok(!argv.includes('virtio-mmio.force-legacy=false'));
  const devices = valueOf(argv, '-device');
  assert.ok(devices.includes('pcie-root-port,id=hotplug0,bus=pcie.0,chassis=1,slot=1'));
  assert.ok(devices.includes('pcie-root-port,id=hotplug1,bus=pcie.0,chassis=2,slot=2'));
  assert.ok(devices.includes('virtio-serial-pci') && devices.includes('virtio-blk-pci,drive=root'), devices.join(' '));
  assert.ok(
    devices.every((d) => !d.includes('-device,') && !/virtio-\w+-device/.test(d)),
    'no virtio-mmio device on q35',
  );
  assert.deepEqual(valueOf(argv, '-add-fd'), ['fd=3,set=1', 'fd=4,set=1']);
  assert.match(valueOf(argv, '-drive')[1]!, /^id=vol0,file=\/dev\/fdset\/1,format=raw,/);
  // The image-VM path is unchanged: microvm, virtio-mmio, no root ports.
  const microvm = buildQemuArgv({ ...base, hotplugSlots: 2 });
  assert.equal(valueOf(microvm, '-M')[0]!.split(',')[0], 'microvm');
  assert.ok(!valueOf(microvm, '-device').some((d) => d.startsWith('pcie-root-port')));
  assert.ok(valueOf(microvm, '-device').includes('virtio-serial-device'));
});
