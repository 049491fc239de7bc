import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fsjailPath } from '../../engine/mount/view';

/**
 * microvm-fsjail's seccomp filter, on the real binary (as root, like the C virtiofsd it
 * starts): `--no-flush` fails dup(2) and close(-1) with ENOSYS, which is what turns the C
 * virtiofsd's FLUSH (close(dup(fd))) into ENOSYS; every other call works as before.
 */
const ROOT_ONLY = { skip: process.getuid?.() !== 0 ? 'microvm-fsjail writes id maps as real root' : false };
const CLOSE = process.arch === 'arm64' ? 57 : 3;
// perl's POSIX::dup is dup(2); close(-1) goes through syscall() (POSIX::close checks the fd itself).
const PROBE = `use POSIX; $! = 0; my $d = POSIX::dup(0); print "dup=", defined $d ? "ok" : $! + 0, "\\n";
$! = 0; syscall(${CLOSE}, -1); print "close=", $! + 0, "\\n";
print "dup2=", defined POSIX::dup2(0, 9) ? "ok" : $! + 0, "\\n";
print "symlink=", symlink("x", "/proc/self/fd/../nonexistent/l") ? "ok" : $! + 0, "\\n";`;

function jailed(flags: string[]): Record<string, string> {
  const result = spawnSync(fsjailPath(), ['--uid-map', '0 0 1', '--gid-map', '0 0 1', ...flags, '--', 'perl', '-e', PROBE], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(result.status, 0, `microvm-fsjail ${flags.join(' ')}: ${result.stderr}`);
  return Object.fromEntries(result.stdout.trim().split('\n').map((line) => line.split('=') as [string, string]));
}

test('--no-flush: dup(2) and close(-1) fail with ENOSYS, dup2 and the rest work', ROOT_ONLY, () => {
  const out = jailed(['--no-flush']);
  assert.equal(out.dup, '38', 'dup(2) must fail with ENOSYS');
  assert.equal(out.close, '38', 'close(-1) must fail with ENOSYS, so close(dup(fd)) reports ENOSYS');
  assert.equal(out.dup2, 'ok');
  assert.notEqual(out.symlink, '1', 'symlink(2) is not denied by --no-flush alone');
});

test('without --no-flush dup(2) works and close(-1) is EBADF; --deny-symlinks alone still denies symlinks', ROOT_ONLY, () => {
  const plain = jailed([]);
  assert.equal(plain.dup, 'ok');
  assert.equal(plain.close, '9');
  const deny = jailed(['--deny-symlinks']);
  assert.equal(deny.dup, 'ok');
  assert.equal(deny.symlink, '1', 'symlink(2) fails with EPERM');
  const both = jailed(['--deny-symlinks', '--no-flush']);
  assert.deepEqual([both.dup, both.close, both.symlink], ['38', '38', '1']);
});
