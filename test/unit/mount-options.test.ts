import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import { Image, isMicrovmError } from '../../engine';
import { parseOptions } from '../../engine/options';
import { buildOptionsSchema } from '../../engine/api/image';
import { parseMountFlag, parseVolumeFlag } from '../../engine/cli/mount-flags';
import { idMapFor } from '../../engine/mount/id-map';
import { virtiofsdArgv } from '../../engine/mount/virtiofsd';
import { coveredPaths, parseRefusal, viewArgs } from '../../engine/mount/view';
import { coreHooksPath, hooksPathsOf } from '../../engine/mount/git-hooks';
import { DEFAULT_PROTECT, MountSpec } from '../../engine/mount';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildQemuArgv } from '../../engine/qemu/argv';
import { parseVmCommand } from '../../engine/cli/args';

function badOption(options: unknown, pattern: RegExp): void {
  assert.throws(
    () => parseOptions(buildOptionsSchema, options, 'Image.build'),
    (err: unknown) => {
      assert.ok(isMicrovmError(err, 'E_BAD_OPTION'));
      assert.match((err as Error).message, pattern);
      return true;
    },
  );
}

test('bad mounts and volumes are refused with the field and the value', async () => {
  badOption({ mounts: [{ guestPath: '/w' }] }, /mounts\.0\.hostPath: hostPath is required/);
  badOption({ mounts: [{ hostPath: '/tmp', guestPath: 'w' }] }, /mounts\.0\.guestPath: .*absolute.*\(got "w"\)/);
  badOption(
    {
      mounts: [
        { hostPath: '/tmp', guestPath: '/w' },
        { hostPath: '/var', guestPath: '/w/' },
      ],
    },
    /mounts\.1\.guestPath: duplicate mount point/,
  );
  badOption(
    { mounts: [{ hostPath: '/tmp', guestPath: '/w' }], volumes: [{ name: 'v', mountPoint: '/w' }] },
    /volumes\.0\.mountPoint: duplicate mount point/,
  );
  badOption({ volumes: [{ name: 'a/b', mountPoint: '/v' }] }, /volumes\.0\.name: .*no "\/".*\(got "a\/b"\)/);
  badOption(
    { volumes: [{ name: 'v', sizeMib: 8, mountPoint: '/v' }] },
    /volumes\.0\.sizeMib: a volume needs at least 32 MiB \(got 8\)/,
  );
  badOption({ mounts: [{ hostPath: '/tmp', guestPath: '/w', symlinks: 'maybe' }] }, /mounts\.0\.symlinks/);
  badOption(
    { mounts: [{ hostPath: '/tmp', guestPath: '/w', protect: ['a/b'] }] },
    /mounts\.0\.protect\.0: expected a file name or a glob/,
  );
  badOption({ mounts: [{ hostPath: '/tmp', guestPath: '/w', protectPaths: ['../x'] }] }, /mounts\.0\.protectPaths\.0/);
  badOption({ mounts: [{ hostPath: '/tmp', guestPath: '/w', git: 'open' }] }, /mounts\.0\.git/);
  badOption(
    { mounts: [{ hostPath: '/tmp', guestPath: '/w', symlinks: 'follow', filter: false }] },
    /mounts\.0\.filter: symlinks: 'follow' is served by the filter view/,
  );
  const missing = `${os.tmpdir()}/microvm-no-such-dir-${process.pid}`;
  await assert.rejects(
    Image.build({ mounts: [{ hostPath: missing, guestPath: '/w' }] }),
    (err: unknown) =>
      isMicrovmError(err, 'E_BAD_OPTION') &&
      (err as Error).message.includes(`mounts.0.hostPath: "${missing}" does not exist`),
  );
});

test('mount defaults: filtered, opaque symlinks, writable, the default protected names, git writable, no file events', () => {
  const opts = parseOptions(buildOptionsSchema, { mounts: [{ hostPath: '/tmp', guestPath: '/w' }] }, 'Image.build');
  assert.deepEqual(opts.mounts[0], {
    hostPath: '/tmp',
    guestPath: '/w',
    symlinks: 'opaque',
    readOnly: false,
    filter: true,
    protect: [
      '.git',
      '.gitmodules',
      '.vscode',
      '.devcontainer',
      '.devcontainer.json',
      '*.code-workspace',
      '.husky',
      'pyvenv.cfg',
    ],
    protectPaths: [],
    git: 'writable',
    fileEvents: false,
  });
});

test('--mount and --volume flags', () => {
  assert.deepEqual(parseMountFlag('/src:/workspace:ro:symlinks=deny'), {
    hostPath: '/src',
    guestPath: '/workspace',
    readOnly: true,
    symlinks: 'deny',
  });
  assert.deepEqual(parseMountFlag('/src:/w:git=strict:nofilter'), {
    hostPath: '/src',
    guestPath: '/w',
    git: 'strict',
    filter: false,
  });
  assert.deepEqual(parseVolumeFlag('deps:/workspace/node_modules:2048'), {
    name: 'deps',
    mountPoint: '/workspace/node_modules',
    sizeMib: 2048,
  });
  assert.throws(() => parseMountFlag('/src'), /expected HOST:GUEST/);
  assert.throws(() => parseMountFlag('/src:/w:rw'), /invalid --mount option "rw"/);
  assert.throws(() => parseVolumeFlag('v:/d:big'), /expected a whole number of MiB/);
  const { flags } = parseVmCommand(['--mount', '/a:/b', '--volume', 'v:/c', 'ls'], true);
  assert.deepEqual(flags.mounts, [{ hostPath: '/a', guestPath: '/b' }]);
  assert.deepEqual(flags.volumes, [{ name: 'v', mountPoint: '/c' }]);
});

test('guest root maps to the folder owner, never other guest ids to host root', () => {
  assert.deepEqual(idMapFor(1000), [
    { inside: 0, outside: 1000, count: 1 },
    { inside: 1, outside: 100_001, count: 65_535 },
  ]);
  assert.deepEqual(idMapFor(0), [{ inside: 0, outside: 0, count: 65_536 }]);
  assert.equal(idMapFor(100_500)[1]!.outside, 231_073);
});

const mountSpec = (over: Partial<MountSpec> = {}): MountSpec => ({
  hostPath: '/src',
  guestPath: '/w',
  symlinks: 'opaque',
  readOnly: false,
  filter: true,
  protect: [...DEFAULT_PROTECT],
  protectPaths: [],
  git: 'writable',
  ...over,
});

test('virtiofsd runs in the jail behind the filter view: id maps, the view and its policy, deny seccomp, FLUSH as ENOSYS, no xattrs, no mknod', () => {
  const mount = mountSpec({ symlinks: 'deny', protect: ['.git'] });
  const view = { program: '/a/microvm-fsview', args: viewArgs(mount, ['node_modules'], ['.githooks']) };
  const argv = virtiofsdArgv({ kind: 'c', path: '/usr/lib/qemu/virtiofsd' }, mount, {
    socket: '/run/v.sock',
    owner: { uid: 1000, gid: 1000 },
    view,
  });
  assert.deepEqual(argv.slice(0, argv.indexOf('--')), [
    '--socket',
    '/run/v.sock',
    '--uid-map',
    '0 1000 1',
    '--uid-map',
    '1 100001 65535',
    '--gid-map',
    '0 1000 1',
    '--gid-map',
    '1 100001 65535',
    '--deny-symlinks',
    '--no-flush',
    '--view',
    '/a/microvm-fsview',
    '--view-source',
    '/src',
    ...[
      '--protect-name',
      '.git',
      '--protect-path',
      '.githooks',
      '--cover',
      'node_modules',
      '--git',
      'writable',
      '--symlinks',
      'deny',
      '--guest-path',
      '/w',
    ].flatMap((arg) => ['--view-arg', arg]),
  ]);
  const daemon = argv.slice(argv.indexOf('--') + 1);
  assert.equal(daemon[0], '/usr/lib/qemu/virtiofsd');
  for (const option of ['--fd=3', 'source=/src', 'sandbox=namespace', 'no_xattr', 'modcaps=-mknod:-setfcap'])
    assert.ok(daemon.includes(option), option);
  const ro = virtiofsdArgv({ kind: 'c', path: '/v' }, mountSpec({ readOnly: true }), {
    socket: '/s',
    owner: { uid: 1000, gid: 1000 },
    view,
  });
  assert.ok(ro.join(' ').includes('--ro /src --no-flush --view'));
  assert.ok(viewArgs(mountSpec({ readOnly: true }), [], []).includes('--read-only'));
  const unfiltered = virtiofsdArgv({ kind: 'c', path: '/v' }, mountSpec({ filter: false }), {
    socket: '/s',
    owner: { uid: 1000, gid: 1000 },
  });
  assert.ok(!unfiltered.includes('--view'), 'filter: false serves the folder directly');
  const rust = virtiofsdArgv({ kind: 'rust', path: '/usr/libexec/virtiofsd' }, mount, {
    socket: '/s',
    owner: { uid: 1000, gid: 1000 },
    view,
  });
  assert.ok(
    unfiltered.includes('--no-flush') && !rust.includes('--no-flush'),
    'FLUSH becomes ENOSYS for the C virtiofsd only (its only dup(2) is its FLUSH)',
  );
});

test('covered paths are the volume mount points inside the share, relative to it', () => {
  assert.deepEqual(coveredPaths(mountSpec(), ['/w/node_modules', '/w/packages/a/node_modules/', '/other/x', '/wx/y']), [
    'node_modules',
    'packages/a/node_modules',
  ]);
});

test('a refusal line of the view becomes an event; guest-chosen names stay plain text', () => {
  assert.deepEqual(
    parseRefusal(
      '/src',
      'microvm-fsview: refused mkdir "sub/.git" (EACCES): a protected name (and 3 more refusals not shown)',
    ),
    { hostPath: '/src', op: 'mkdir', path: 'sub/.git', errno: 'EACCES', reason: 'a protected name', heldBack: 3 },
  );
  assert.equal(
    parseRefusal('/src', 'microvm-fsview: refused open for writing "a\\u001b[31m\\"q" (EROFS): read-only')?.path,
    'a\u001b[31m"q',
  );
  assert.equal(parseRefusal('/src', 'virtiofsd: something else'), undefined);
});

test("core.hooksPath inside the folder is protected: from the repository config and the user's", () => {
  assert.equal(coreHooksPath('[user]\n\tname = x\n[core]\n\thooksPath = .githooks ; comment\n'), '.githooks');
  assert.equal(coreHooksPath('[core]\nHooksPath = "tools/hooks"\n[core]\n\thookspath = .husky/_\n'), '.husky/_');
  assert.equal(coreHooksPath('[remote "origin"]\n\thooksPath = x\n'), undefined);
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-hooks-'));
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-home-'));
  try {
    fs.mkdirSync(path.join(folder, '.git'));
    fs.writeFileSync(path.join(folder, '.git', 'config'), '[core]\n\thooksPath = .githooks\n');
    fs.writeFileSync(path.join(home, '.gitconfig'), `[core]\n\thooksPath = ${folder}/ci/hooks\n`);
    assert.deepEqual(hooksPathsOf(folder, home), ['.githooks', 'ci/hooks']);
    fs.writeFileSync(path.join(home, '.gitconfig'), '[core]\n\thooksPath = ~/global-hooks\n');
    assert.deepEqual(hooksPathsOf(folder, home), ['.githooks'], 'a hooks path outside the folder needs no protection');
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
    fs.rmSync(home, { recursive: true, force: true });
  }
});

test('QEMU gets a vhost-user-fs device per share and a virtio-blk disk with a serial per volume', () => {
  const argv = buildQemuArgv({
    arch: 'x86_64',
    accel: 'tcg',
    memoryMib: 256,
    vcpus: 1,
    kernel: '/k',
    initrd: '/i',
    cmdline: [],
    agentSocket: '/a',
    qmpSocket: '/q',
    seccomp: true,
    memory: { kind: 'file', path: '/m', shared: true },
    virtiofs: [{ socket: '/run/v,0.sock', tag: 'microvm-fs0' }],
    volumes: [{ file: '/vol/deps.ext4', serial: 'microvm-vol0' }],
  }).join(' ');
  assert.ok(
    argv.includes(
      '-chardev socket,id=vfs0,path=/run/v,,0.sock -device vhost-user-fs-device,chardev=vfs0,tag=microvm-fs0',
    ),
  );
  assert.ok(
    argv.includes(
      '-drive id=vol0,file=/vol/deps.ext4,format=raw,if=none,discard=unmap,werror=enospc -device virtio-blk-device,drive=vol0,serial=microvm-vol0',
    ),
  );
  assert.ok(argv.includes('share=on'));
});
