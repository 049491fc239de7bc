import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import { Image, isMicrovmError } from '../../engine';
import { buildOptionsSchema, parseOptions } from '../../engine/options';
import { parseMountFlag, parseVolumeFlag } from '../../engine/mount/cli-flags';
import { idMapFor } from '../../engine/mount/id-map';
import { virtiofsdArgv } from '../../engine/mount/virtiofsd';
import { BINDFS_MOUNT_POINT, findBindfs, followViewArgv } from '../../engine/mount/follow';
import { buildQemuArgv } from '../../engine/qemu/argv';
import { parseVmCommand } from '../../engine/cli/args';

function badOption(options: unknown, pattern: RegExp): void {
  assert.throws(() => parseOptions(buildOptionsSchema, options, 'Image.build'), (err: unknown) => {
    assert.ok(isMicrovmError(err, 'E_BAD_OPTION'));
    assert.match((err as Error).message, pattern);
    return true;
  });
}

test('bad mounts and volumes are refused with the field and the value', async () => {
  badOption({ mounts: [{ guestPath: '/w' }] }, /mounts\.0\.hostPath: hostPath is required/);
  badOption({ mounts: [{ hostPath: '/tmp', guestPath: 'w' }] }, /mounts\.0\.guestPath: .*absolute.*\(got "w"\)/);
  badOption({ mounts: [{ hostPath: '/tmp', guestPath: '/w' }, { hostPath: '/var', guestPath: '/w/' }] }, /mounts\.1\.guestPath: duplicate mount point/);
  badOption({ mounts: [{ hostPath: '/tmp', guestPath: '/w' }], volumes: [{ name: 'v', mountPoint: '/w' }] }, /volumes\.0\.mountPoint: duplicate mount point/);
  badOption({ volumes: [{ name: 'a/b', mountPoint: '/v' }] }, /volumes\.0\.name: .*no "\/".*\(got "a\/b"\)/);
  badOption({ volumes: [{ name: 'v', sizeMib: 8, mountPoint: '/v' }] }, /volumes\.0\.sizeMib: a volume needs at least 32 MiB \(got 8\)/);
  badOption({ mounts: [{ hostPath: '/tmp', guestPath: '/w', symlinks: 'maybe' }] }, /mounts\.0\.symlinks/);
  badOption({ mounts: [{ hostPath: '/tmp', guestPath: '/w', protect: ['../x'] }] }, /mounts\.0\.protect\.0/);
  const missing = `${os.tmpdir()}/microvm-no-such-dir-${process.pid}`;
  await assert.rejects(Image.build({ mounts: [{ hostPath: missing, guestPath: '/w' }] }), (err: unknown) =>
    isMicrovmError(err, 'E_BAD_OPTION') && (err as Error).message.includes(`mounts.0.hostPath: "${missing}" does not exist`));
});

test('mount defaults: opaque symlinks, writable, .git .vscode .devcontainer protected', () => {
  const opts = parseOptions(buildOptionsSchema, { mounts: [{ hostPath: '/tmp', guestPath: '/w' }] }, 'Image.build');
  assert.deepEqual(opts.mounts[0], { hostPath: '/tmp', guestPath: '/w', symlinks: 'opaque', readOnly: false, protect: ['.git', '.vscode', '.devcontainer'] });
});

test('--mount and --volume flags', () => {
  assert.deepEqual(parseMountFlag('/src:/workspace:ro:symlinks=deny'), { hostPath: '/src', guestPath: '/workspace', readOnly: true, symlinks: 'deny' });
  assert.deepEqual(parseVolumeFlag('deps:/workspace/node_modules:2048'), { name: 'deps', mountPoint: '/workspace/node_modules', sizeMib: 2048 });
  assert.throws(() => parseMountFlag('/src'), /expected HOST:GUEST/);
  assert.throws(() => parseMountFlag('/src:/w:rw'), /invalid --mount option "rw"/);
  assert.throws(() => parseVolumeFlag('v:/d:big'), /expected a whole number of MiB/);
  const { flags } = parseVmCommand(['--mount', '/a:/b', '--volume', 'v:/c', 'ls'], true);
  assert.deepEqual(flags.mounts, [{ hostPath: '/a', guestPath: '/b' }]);
  assert.deepEqual(flags.volumes, [{ name: 'v', mountPoint: '/c' }]);
});

test('guest root maps to the folder owner, never other guest ids to host root', () => {
  assert.deepEqual(idMapFor(1000), [{ inside: 0, outside: 1000, count: 1 }, { inside: 1, outside: 100_001, count: 65_535 }]);
  assert.deepEqual(idMapFor(0), [{ inside: 0, outside: 0, count: 65_536 }]);
  assert.equal(idMapFor(100_500)[1].outside, 231_073);
});

test('virtiofsd runs in the jail: id maps, read-only protected paths, deny seccomp, no xattrs, no mknod', () => {
  const mount = { hostPath: '/src', guestPath: '/w', symlinks: 'deny' as const, readOnly: false, protect: ['.git'] };
  const argv = virtiofsdArgv({ kind: 'c', path: '/usr/lib/qemu/virtiofsd' }, mount, '/run/v.sock', { uid: 1000, gid: 1000 }, ['/src/.git']);
  assert.deepEqual(argv.slice(0, argv.indexOf('--')), ['--socket', '/run/v.sock', '--uid-map', '0 1000 1', '--uid-map', '1 100001 65535',
    '--gid-map', '0 1000 1', '--gid-map', '1 100001 65535', '--ro', '/src/.git', '--deny-symlinks']);
  const daemon = argv.slice(argv.indexOf('--') + 1);
  assert.equal(daemon[0], '/usr/lib/qemu/virtiofsd');
  for (const option of ['--fd=3', 'source=/src', 'sandbox=namespace', 'no_xattr', 'modcaps=-mknod:-setfcap']) assert.ok(daemon.includes(option), option);
  const ro = virtiofsdArgv({ kind: 'c', path: '/v' }, { ...mount, readOnly: true, symlinks: 'opaque' }, '/s', { uid: 1000, gid: 1000 }, []);
  assert.ok(ro.join(' ').includes('--ro /src --'));
});

test('follow: the jail mounts bindfs --resolve-symlinks over the share, then binds the protected paths of that view read-only', () => {
  const mount = { hostPath: '/src', guestPath: '/w', symlinks: 'follow' as const, readOnly: false, protect: ['.git'] };
  const daemonArgv = ['/usr/bin/bindfs', '-f', '-o', 'auto_unmount,nonempty', '--resolve-symlinks', '--resolved-symlink-deletion=symlink-only', '/src', BINDFS_MOUNT_POINT];
  assert.deepEqual(followViewArgv('/usr/bin/bindfs', mount), ['--fuse-view', '/src', ...daemonArgv.flatMap((arg) => ['--fuse-daemon', arg])]);
  const readOnly = followViewArgv('/usr/bin/bindfs', { ...mount, readOnly: true }).filter((_, i) => i % 2 === 1);
  assert.deepEqual(readOnly.slice(-3), ['-r', '/src', BINDFS_MOUNT_POINT]);

  const argv = virtiofsdArgv({ kind: 'c', path: '/v' }, mount, '/s', { uid: 1000, gid: 1000 }, ['/src/.git'], '/usr/bin/bindfs');
  const jail = argv.slice(0, argv.indexOf('--'));
  assert.ok(jail.join(' ').includes('--ro /src/.git --fuse-view /src --fuse-daemon /usr/bin/bindfs'), jail.join(' '));
  assert.ok(!jail.includes('--deny-symlinks'));
  assert.ok(argv.slice(argv.indexOf('--')).includes('source=/src'), 'virtiofsd serves the share path, where the jail mounted the view');
  assert.throws(() => virtiofsdArgv({ kind: 'c', path: '/v' }, mount, '/s', { uid: 1000, gid: 1000 }, []), /bindfs/);
});

test('follow without bindfs (or fusermount) is E_MOUNT_UNAVAILABLE naming the package, never a silent opaque', () => {
  assert.throws(() => findBindfs(() => false), (err: unknown) =>
    isMicrovmError(err, 'E_MOUNT_UNAVAILABLE') && /package bindfs/.test((err as Error).message));
  assert.throws(() => findBindfs((p) => p.endsWith('bindfs')), (err: unknown) =>
    isMicrovmError(err, 'E_MOUNT_UNAVAILABLE') && /package fuse\b/.test((err as Error).message));
});

test('QEMU gets a vhost-user-fs device per share and a virtio-blk disk with a serial per volume', () => {
  const argv = buildQemuArgv({
    arch: 'x86_64', accel: 'tcg', memoryMib: 256, vcpus: 1, kernel: '/k', initrd: '/i', cmdline: [], agentSocket: '/a', qmpSocket: '/q', seccomp: true,
    memory: { kind: 'file', path: '/m', shared: true },
    virtiofs: [{ socket: '/run/v,0.sock', tag: 'microvm-fs0' }], volumes: [{ file: '/vol/deps.ext4', serial: 'microvm-vol0' }],
  }).join(' ');
  assert.ok(argv.includes('-chardev socket,id=vfs0,path=/run/v,,0.sock -device vhost-user-fs-device,chardev=vfs0,tag=microvm-fs0'));
  assert.ok(argv.includes('-drive id=vol0,file=/vol/deps.ext4,format=raw,if=none,discard=unmap,werror=enospc -device virtio-blk-device,drive=vol0,serial=microvm-vol0'));
  assert.ok(argv.includes('share=on'));
});
