import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Image, Pool, Vm } from '../../engine';

/**
 * Escape attempts from a hostile guest (root) through virtio-fs shares, one VM with five
 * shares: /ws (opaque, default protection), /deny (symlinks deny), /follow and /followro
 * (symlinks follow: the filter view resolves host links; the second readOnly), /ro (readOnly).
 * Every attempt has a host sentinel that must stay untouched or unread. The shares belong to
 * uid 1000, like a user's folder; the engine (and virtiofsd) run as root.
 */
const OWNER = 1000;
const SECRET = 'HOST-SECRET-4d1f';
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-escape-'));
const outside = path.join(root, 'outside');
const share = (name: string) => path.join(root, name);
let pool: Pool;
let vm: Vm;

function makeShare(name: string): string {
  const dir = share(name);
  fs.mkdirSync(path.join(dir, '.git', 'hooks'), { recursive: true });
  fs.writeFileSync(path.join(dir, '.git', 'config'), '[core]\n');
  fs.writeFileSync(path.join(dir, 'file.txt'), 'original\n');
  fs.symlinkSync(outside, path.join(dir, 'out'));
  fs.symlinkSync('../outside', path.join(dir, 'rel'));
  execFileSync('chown', ['-hR', `${OWNER}:${OWNER}`, dir]);
  return dir;
}

/** A static setxattr(2) / llistxattr(2) tool: for the guest (no attr or libcap tools there) and the host check. */
function xattrTool(): Buffer {
  const src = path.join(root, 'setx.c');
  fs.writeFileSync(
    src,
    `#include <sys/xattr.h>
#include <stdio.h>
#include <string.h>
int main(int c, char **v) {
  if (c == 2) { char b[4096]; ssize_t n = llistxattr(v[1], b, sizeof b); for (ssize_t i = 0; i < n; i += strlen(b + i) + 1) puts(b + i); return n < 0; }
  if (c != 4) return 2;
  if (setxattr(v[1], v[2], v[3], strlen(v[3]), 0)) { perror("setxattr"); return 1; }
  return 0;
}
`,
  );
  execFileSync('gcc', ['-static', '-O2', '-o', path.join(root, 'setx'), src]);
  return fs.readFileSync(path.join(root, 'setx'));
}

async function sh(script: string): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  return vm.exec({ argv: ['sh', '-c', script] });
}

before(async () => {
  fs.chmodSync(root, 0o755);
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret.txt'), `${SECRET}\n`);
  fs.writeFileSync(path.join(root, 'sentinel'), 'sentinel\n');
  for (const name of ['ws', 'deny', 'follow', 'followro', 'ro']) makeShare(name);
  // Under follow the host resolves links: one to an outside file, and a protected path that
  // is a link to an outside directory (its target must be read-only through the view).
  fs.mkdirSync(path.join(root, 'outside-vscode'));
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(share('follow'), 'secret-link'));
  fs.symlinkSync(path.join(root, 'outside-vscode'), path.join(share('follow'), '.vscode'));
  execFileSync('chown', ['-hR', `${OWNER}:${OWNER}`, outside, path.join(root, 'outside-vscode'), share('follow')]);
  const image = await Image.build({
    network: 'none',
    mounts: [
      { hostPath: share('ws'), guestPath: '/ws' },
      { hostPath: share('deny'), guestPath: '/deny', symlinks: 'deny' },
      { hostPath: share('follow'), guestPath: '/follow', symlinks: 'follow' },
      { hostPath: share('followro'), guestPath: '/followro', symlinks: 'follow', readOnly: true },
      { hostPath: share('ro'), guestPath: '/ro', readOnly: true },
    ],
  });
  pool = image.pool({ min: 1, max: 1 });
  vm = await pool.acquire();
  await vm.writeFile('/usr/local/bin/setx', xattrTool(), { mode: 0o755 });
});

after(async () => {
  await vm?.release();
  await pool?.shutdown();
  fs.rmSync(root, { recursive: true, force: true });
});

test('opaque: a guest symlink to /etc/passwd is stored verbatim and resolves in the guest only', async () => {
  const result = await sh('ln -s /etc/passwd /ws/x && cat /ws/x');
  assert.equal(result.exitCode, 0, result.stderr);
  assert.equal(fs.readlinkSync(path.join(share('ws'), 'x')), '/etc/passwd');
  assert.notEqual(
    result.stdout,
    fs.readFileSync('/etc/passwd', 'utf8'),
    'the guest read its own /etc/passwd, not the host one',
  );
  assert.equal(fs.lstatSync(path.join(share('ws'), 'x')).uid, OWNER);
});

test('deny: symlink creation fails with EPERM', async () => {
  const result = await sh('ln -s /etc/passwd /deny/x');
  assert.notEqual(result.exitCode, 0);
  assert.match(result.stderr, /Operation not permitted/);
  assert.equal(fs.existsSync(path.join(share('deny'), 'x')), false);
});

for (const name of ['ws', 'deny']) {
  test(`${name}: host symlinks out of the share do not reach the outside file`, async () => {
    const result = await sh(`cat /${name}/out/secret.txt /${name}/rel/secret.txt 2>&1; ls /${name}/out/ 2>&1`);
    assert.ok(!result.stdout.includes(SECRET), result.stdout);
  });
}

test('follow: host symlinks out of the share (to a directory, relative, to a file) are followed', async () => {
  const result = await sh(
    'cat /follow/out/secret.txt /follow/rel/secret.txt /follow/secret-link; ls -ld /follow/out | cut -c1',
  );
  assert.equal(result.exitCode, 0, result.stderr);
  assert.equal(result.stdout, `${SECRET}\n${SECRET}\n${SECRET}\nd\n`, 'the guest sees the targets, not links');
});

test('follow: guest writes land on the host as the owner; through a followed link they land at its target', async () => {
  const result = await sh(
    'echo changed > /follow/file.txt && mkdir /follow/src && echo ok > /follow/src/ok.txt && echo new > /follow/out/new.txt',
  );
  assert.equal(result.exitCode, 0, result.stderr);
  assert.equal(fs.readFileSync(path.join(share('follow'), 'file.txt'), 'utf8'), 'changed\n');
  assert.equal(fs.readFileSync(path.join(share('follow'), 'src', 'ok.txt'), 'utf8'), 'ok\n');
  assert.equal(fs.statSync(path.join(share('follow'), 'src', 'ok.txt')).uid, OWNER);
  assert.equal(fs.readFileSync(path.join(outside, 'new.txt'), 'utf8'), 'new\n');
  assert.ok(fs.lstatSync(path.join(share('follow'), 'out')).isSymbolicLink(), 'the host link itself is unchanged');
});

test('follow: guest ln -s fails with EPERM (the view creates no links under follow)', async () => {
  const result = await sh('ln -s /etc/passwd /follow/x');
  assert.notEqual(result.exitCode, 0);
  assert.match(result.stderr, /Operation not permitted/);
  assert.equal(fs.existsSync(path.join(share('follow'), 'x')), false);
});

test('follow: protected paths stay read-only through the view, also when one is a link to an outside directory', async () => {
  const result = await sh(
    [
      'echo evil > /follow/.git/hooks/pre-commit',
      'echo "[core] fsmonitor = evil" >> /follow/.git/config',
      'echo {} > /follow/.vscode/tasks.json',
      'mv /follow/.git /follow/git2',
      'echo done',
    ].join('; '),
  );
  assert.match(result.stderr, /config: Permission denied/);
  assert.equal(fs.existsSync(path.join(share('follow'), '.git', 'hooks', 'pre-commit')), false);
  assert.equal(fs.readFileSync(path.join(share('follow'), '.git', 'config'), 'utf8'), '[core]\n');
  assert.deepEqual(fs.readdirSync(path.join(root, 'outside-vscode')), []);
  assert.equal(fs.existsSync(path.join(share('follow'), 'git2')), false);
});

test('follow + readOnly: reads follow links, no write lands anywhere, through links neither', async () => {
  const result = await sh(
    'cat /followro/out/secret.txt; echo pwned > /followro/file.txt; echo pwned > /followro/out/pwn; mkdir /followro/d; echo done',
  );
  assert.ok(result.stdout.startsWith(`${SECRET}\n`), result.stdout);
  assert.match(result.stderr, /Read-only file system/);
  assert.equal(fs.readFileSync(path.join(share('followro'), 'file.txt'), 'utf8'), 'original\n');
  assert.equal(fs.existsSync(path.join(outside, 'pwn')), false);
  assert.deepEqual(fs.readdirSync(share('followro')).sort(), ['.git', 'file.txt', 'out', 'rel']);
});

test('.. traversal at the share root stays in the guest', async () => {
  const result = await sh('cat /ws/../sentinel 2>&1; echo pwn > /ws/../pwn; cd /ws/.. && pwd; ls /ws/../../');
  assert.ok(!result.stdout.includes('sentinel\n'), result.stdout);
  assert.equal(fs.existsSync(path.join(root, 'pwn')), false);
});

test('a hardlink to a file outside the share cannot be made', async () => {
  const result = await sh('ln /ws/out/secret.txt /ws/hl; ln /ws/rel/secret.txt /ws/hl2; ls /ws');
  assert.equal(fs.existsSync(path.join(share('ws'), 'hl')), false);
  assert.equal(fs.existsSync(path.join(share('ws'), 'hl2')), false);
  assert.equal(fs.statSync(path.join(outside, 'secret.txt')).nlink, 1);
  assert.ok(!result.stdout.includes(SECRET));
});

test('mknod of a device node fails; no device node appears on the host', async () => {
  const result = await sh('mknod /ws/sda b 8 0; mknod /ws/null c 1 3; echo done');
  assert.match(result.stderr, /Operation not permitted|not permitted/);
  for (const node of ['sda', 'null']) {
    const stat = fs.lstatSync(path.join(share('ws'), node), { throwIfNoEntry: false });
    assert.ok(!stat || (!stat.isBlockDevice() && !stat.isCharacterDevice()), node);
  }
});

test('a setuid binary made by guest root is not setuid-root on the host', async () => {
  const result = await sh('cp /bin/sh /ws/suid && chmod 4755 /ws/suid && mkdir -m 03777 /ws/d && ls -l /ws/suid');
  assert.equal(result.exitCode, 0, result.stderr);
  const stat = fs.statSync(path.join(share('ws'), 'suid'));
  assert.equal(stat.uid, OWNER);
  const rootSetid = execFileSync('find', [share('ws'), '-perm', '/6000', '-uid', '0'], { encoding: 'utf8' });
  assert.equal(rootSetid, '');
});

test('security.* xattrs and file capabilities set by guest root do not reach the host', async () => {
  const result = await sh(
    'echo x > /ws/cap; setx /ws/cap security.foo bar; setx /ws/cap security.capability 0123456789; setx /ws/cap trusted.x y; setx /ws/cap user.x y; true',
  );
  assert.match(result.stderr, /setxattr/);
  const attrs = execFileSync(path.join(root, 'setx'), [path.join(share('ws'), 'cap')], { encoding: 'utf8' }).trim();
  assert.ok(!/security\.|trusted\./.test(attrs), attrs);
});

test('writes to a readOnly mount fail and the host files stay as they were', async () => {
  const result = await sh('echo pwned > /ro/file.txt; echo new > /ro/new; rm -f /ro/file.txt; mkdir /ro/d; echo done');
  assert.match(result.stderr, /Read-only file system/);
  assert.equal(fs.readFileSync(path.join(share('ro'), 'file.txt'), 'utf8'), 'original\n');
  assert.deepEqual(fs.readdirSync(share('ro')).sort(), ['.git', 'file.txt', 'out', 'rel']);
});

test('.git/hooks/pre-commit, .git/config and .vscode/tasks.json are read-only; the rest stays writable', async () => {
  const result = await sh(
    [
      'echo evil > /ws/.git/hooks/pre-commit',
      'echo "[core] fsmonitor = evil" >> /ws/.git/config',
      'echo {} > /ws/.vscode/tasks.json',
      'mv /ws/.git /ws/git2',
      'rm -rf /ws/.vscode',
      'mkdir -p /ws/src && echo ok > /ws/src/ok.txt && echo changed > /ws/file.txt',
      'echo done',
    ].join('; '),
  );
  assert.equal(fs.existsSync(path.join(share('ws'), '.git', 'hooks', 'pre-commit')), false);
  assert.equal(fs.readFileSync(path.join(share('ws'), '.git', 'config'), 'utf8'), '[core]\n');
  assert.equal(fs.existsSync(path.join(share('ws'), '.vscode', 'tasks.json')), false);
  assert.equal(fs.existsSync(path.join(share('ws'), 'git2')), false);
  assert.equal(fs.readFileSync(path.join(share('ws'), 'src', 'ok.txt'), 'utf8'), 'ok\n');
  assert.equal(fs.readFileSync(path.join(share('ws'), 'file.txt'), 'utf8'), 'changed\n');
  assert.equal(fs.statSync(path.join(share('ws'), 'src', 'ok.txt')).uid, OWNER);
  assert.match(result.stdout, /done/);
});
