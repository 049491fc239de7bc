import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { fsviewPath } from '../../engine/mount/view';
import { DEFAULT_PROTECT } from '../../engine/mount/types';

/**
 * The filter view (native/fsview) on the host, without a VM: the real binary mounted on a
 * scratch folder, driven by this process's own file system calls. test/vm/containment.test.ts
 * does the same from a guest through virtiofsd.
 */
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-fsview-'));
const mounted: Array<{ dir: string; child: ChildProcess }> = [];

interface View {
  src: string;
  mnt: string;
  stderr: string[];
}

async function mountView(name: string, args: string[] = [], prepare: (src: string) => void = () => undefined): Promise<View> {
  const src = path.join(scratch, `${name}-src`);
  const mnt = path.join(scratch, `${name}-mnt`);
  fs.mkdirSync(src);
  fs.mkdirSync(mnt);
  prepare(src);
  const names = DEFAULT_PROTECT.flatMap((n) => ['--protect-name', n]);
  const child = spawn(fsviewPath(), ['--source', src, '--mountpoint', mnt, ...names, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const view: View = { src, mnt, stderr: [] };
  child.stderr?.on('data', (d: Buffer) => view.stderr.push(...d.toString().split('\n').filter(Boolean)));
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); });
    child.once('exit', (code) => reject(new Error(`microvm-fsview exited ${code}: ${view.stderr.join('\n')}`)));
  });
  mounted.push({ dir: mnt, child });
  return view;
}

after(() => {
  for (const { dir, child } of mounted) {
    try {
      execFileSync('umount', [dir]);
    } catch {
      child.kill('SIGKILL');
    }
  }
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** Lets the daemon's stderr reach this process (the calls above were synchronous). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

function refused(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: NodeJS.ErrnoException) => err.code === code);
}

function gitRepo(dir: string): void {
  execFileSync('git', ['init', '-q', dir]);
  fs.writeFileSync(path.join(dir, 'a.txt'), 'a\n');
  execFileSync('git', ['-C', dir, 'add', '.']);
  execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'init']);
}

test('protected names cannot be created at any depth, by any call; existing ones are read-only', async () => {
  const v = await mountView('names', [], (src) => {
    fs.mkdirSync(path.join(src, '.vscode'));
    fs.writeFileSync(path.join(src, '.vscode', 'tasks.json'), '{}');
    fs.writeFileSync(path.join(src, 'file.txt'), 'x');
  });
  const m = (...p: string[]) => path.join(v.mnt, ...p);
  fs.mkdirSync(m('deep', 'er'), { recursive: true });
  refused(() => fs.mkdirSync(m('deep', 'er', '.git')), 'EACCES');
  refused(() => fs.writeFileSync(m('deep', 'x.code-workspace'), '{}'), 'EACCES');
  refused(() => fs.writeFileSync(m('deep', 'X.CODE-WORKSPACE'), '{}'), 'EACCES');
  refused(() => fs.writeFileSync(m('deep', 'pyvenv.cfg'), 'home = /usr/bin\n'), 'EACCES');
  refused(() => fs.symlinkSync('file.txt', m('.devcontainer.json')), 'EACCES');
  refused(() => fs.linkSync(m('file.txt'), m('deep', '.gitmodules')), 'EACCES');
  refused(() => fs.renameSync(m('file.txt'), m('.husky')), 'EACCES');
  refused(() => fs.writeFileSync(m('.vscode', 'tasks.json'), 'evil'), 'EACCES');
  refused(() => fs.writeFileSync(m('.vscode', 'launch.json'), 'evil'), 'EACCES');
  refused(() => fs.renameSync(m('.vscode'), m('vscode2')), 'EACCES');
  refused(() => fs.rmSync(m('.vscode', 'tasks.json')), 'EACCES');
  refused(() => fs.chmodSync(m('.vscode', 'tasks.json'), 0o777), 'EACCES');
  refused(() => fs.truncateSync(m('.vscode', 'tasks.json'), 0), 'EACCES');
  assert.equal(fs.readFileSync(m('.vscode', 'tasks.json'), 'utf8'), '{}', 'reads are fine');
  fs.writeFileSync(m('deep', 'ok.txt'), 'fine');
  fs.renameSync(m('deep', 'ok.txt'), m('deep', 'er', 'ok2.txt'));
  assert.equal(fs.readFileSync(path.join(v.src, 'deep', 'er', 'ok2.txt'), 'utf8'), 'fine');
  assert.deepEqual(fs.readdirSync(v.src).sort(), ['.vscode', 'deep', 'file.txt']);
  await settle();
  assert.ok(v.stderr.some((l) => l === 'microvm-fsview: refused mkdir "deep/er/.git" (EACCES): a protected name (host tools run or trust what it holds)'), v.stderr.join('\n'));
});

test('git works through the view; its config, hooks, alternates and new git dirs do not', async () => {
  const v = await mountView('git', [], gitRepo);
  const m = (...p: string[]) => path.join(v.mnt, ...p);
  const git = (...args: string[]) => execFileSync('git', ['-C', v.mnt, '-c', 'user.name=g', '-c', 'user.email=g@g', ...args], { encoding: 'utf8' });
  fs.writeFileSync(m('b.txt'), 'b\n');
  git('add', 'b.txt');
  git('commit', '-qm', 'second');
  git('checkout', '-qb', 'feature');
  git('tag', '-a', 'v1', '-m', 'tag');
  fs.appendFileSync(m('a.txt'), 'stashed\n');
  git('stash', '-q');
  git('stash', 'pop', '-q');
  git('commit', '-qam', 'third');
  git('checkout', '-q', 'master');
  fs.writeFileSync(m('c.txt'), 'c\n');
  git('add', 'c.txt');
  git('commit', '-qm', 'on master');
  git('merge', '-q', '--no-edit', 'feature');
  git('checkout', '-q', 'feature');
  git('rebase', '-q', 'master');
  git('checkout', '-qb', 'other');
  fs.writeFileSync(m('d.txt'), 'd\n');
  git('add', 'd.txt');
  git('commit', '-qm', 'on other');
  git('checkout', '-q', 'feature');
  git('cherry-pick', 'other');
  git('revert', '--no-edit', 'HEAD');
  git('reset', '-q', '--hard', 'HEAD~1');
  git('notes', 'add', '-m', 'a note');
  git('bisect', 'start');
  git('bisect', 'reset');
  git('branch', '-qD', 'master');
  git('reflog', 'expire', '--expire=now', '--all');
  git('gc', '-q', '--prune=now');
  git('repack', '-qad');
  git('commit-graph', 'write');
  git('fsck', '--no-progress');
  git('clean', '-fdq');
  assert.match(git('log', '--oneline'), /second/);
  refused(() => fs.appendFileSync(m('.git', 'config'), '[core]\n\tfsmonitor = evil\n'), 'EACCES');
  refused(() => fs.writeFileSync(m('.git', 'hooks', 'pre-commit'), '#!/bin/sh\n'), 'EACCES');
  refused(() => fs.writeFileSync(m('.git', 'objects', 'info', 'alternates'), '/etc\n'), 'EACCES');
  refused(() => fs.writeFileSync(m('.git', 'commondir'), '/elsewhere\n'), 'EACCES');
  refused(() => fs.mkdirSync(m('.git', 'modules', 'evil'), { recursive: true }), 'EACCES');
  refused(() => fs.renameSync(m('.git', 'refs', 'tags'), m('.git', 'hooks2')), 'EACCES');
  refused(() => fs.renameSync(m('.git', 'refs'), m('refs-out')), 'EXDEV');
  refused(() => fs.renameSync(m('b.txt'), m('.git', 'objects', 'b.txt')), 'EXDEV');
  refused(() => fs.writeFileSync(m('HEAD'), 'ref: refs/heads/main\n'), 'EACCES');
  assert.equal(spawnSync('git', ['-C', v.src, 'config', '--get', 'core.fsmonitor']).status, 1, 'no fsmonitor in the host repository');
});

test('strict git: all of .git is read-only', async () => {
  const v = await mountView('strict', ['--git', 'strict'], gitRepo);
  refused(() => fs.writeFileSync(path.join(v.mnt, '.git', 'index.lock'), ''), 'EACCES');
  refused(() => fs.writeFileSync(path.join(v.mnt, '.git', 'objects', 'x'), ''), 'EACCES');
});

test('covered paths: an empty read-only directory, listed even where the host has none', async () => {
  const v = await mountView('cover', ['--cover', 'node_modules', '--cover', 'pkg/a/node_modules'], (src) => {
    fs.mkdirSync(path.join(src, 'node_modules', '.bin'), { recursive: true });
    fs.writeFileSync(path.join(src, 'node_modules', '.bin', 'eslint'), 'host');
    fs.mkdirSync(path.join(src, 'pkg', 'a'), { recursive: true });
  });
  const m = (...p: string[]) => path.join(v.mnt, ...p);
  assert.deepEqual(fs.readdirSync(m('node_modules')), []);
  refused(() => fs.writeFileSync(m('node_modules', 'x'), ''), 'EACCES');
  refused(() => fs.rmdirSync(m('node_modules')), 'EBUSY');
  refused(() => fs.renameSync(m('pkg'), m('pkg2')), 'EBUSY');
  assert.ok(fs.readdirSync(m('pkg', 'a')).includes('node_modules'), 'listed where the host has none');
  assert.ok(fs.statSync(m('pkg', 'a', 'node_modules')).isDirectory());
  assert.equal(fs.existsSync(path.join(v.src, 'pkg', 'a', 'node_modules')), false, 'nothing made on the host');
  fs.mkdirSync(m('other'));
  refused(() => fs.renameSync(m('other'), m('pkg', 'a', 'node_modules')), 'EACCES');
  assert.equal(fs.readFileSync(path.join(v.src, 'node_modules', '.bin', 'eslint'), 'utf8'), 'host');
});

test('protected paths (a hooks directory) are read-only whether they exist or not', async () => {
  const v = await mountView('paths', ['--protect-path', '.githooks', '--protect-path', 'tools/hooks'], (src) => {
    fs.mkdirSync(path.join(src, '.githooks'));
  });
  refused(() => fs.writeFileSync(path.join(v.mnt, '.githooks', 'pre-commit'), ''), 'EACCES');
  fs.mkdirSync(path.join(v.mnt, 'tools'));
  refused(() => fs.mkdirSync(path.join(v.mnt, 'tools', 'hooks')), 'EACCES');
});

test('a protected name that is a link makes its target inside the share read-only, however the link is written', async () => {
  const v = await mountView('links', ['--guest-path', '/workspaces/app'], (src) => {
    for (const d of ['shared', 'abs-target', 'chain-target', 'sub']) fs.mkdirSync(path.join(src, d));
    fs.symlinkSync('shared', path.join(src, '.vscode'));
    fs.symlinkSync('/workspaces/app/abs-target', path.join(src, 'sub', '.devcontainer'));
    fs.symlinkSync('chain-target', path.join(src, 'hop'));
    fs.symlinkSync('../hop', path.join(src, 'sub', '.husky'));
    fs.symlinkSync('../../outside', path.join(src, 'sub', '.git'));
    fs.writeFileSync(path.join(src, 'plain.txt'), 'x');
  });
  for (const dir of ['shared', 'abs-target', 'chain-target']) refused(() => fs.writeFileSync(path.join(v.mnt, dir, 'x.json'), '{}'), 'EACCES');
  fs.writeFileSync(path.join(v.mnt, 'plain.txt'), 'still writable');
});

test('symlinks deny: no new symlink and no hard link of an existing one; follow: host links resolved, none made', async () => {
  const deny = await mountView('deny', ['--symlinks', 'deny'], (src) => {
    fs.writeFileSync(path.join(src, 'f'), 'x');
    fs.symlinkSync('f', path.join(src, 'link'));
  });
  refused(() => fs.symlinkSync('f', path.join(deny.mnt, 'new')), 'EPERM');
  refused(() => fs.linkSync(path.join(deny.mnt, 'link'), path.join(deny.mnt, 'hard')), 'EPERM');
  const outside = path.join(scratch, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'o.txt'), 'out');
  const follow = await mountView('follow', ['--symlinks', 'follow'], (src) => fs.symlinkSync(outside, path.join(src, 'out')));
  assert.equal(fs.readFileSync(path.join(follow.mnt, 'out', 'o.txt'), 'utf8'), 'out');
  assert.ok(fs.lstatSync(path.join(follow.mnt, 'out')).isDirectory(), 'a followed link shows as its target');
  refused(() => fs.symlinkSync('x', path.join(follow.mnt, 'new')), 'EPERM');
});

test('a read-only share refuses every change with EROFS', async () => {
  const v = await mountView('ro', ['--read-only'], (src) => fs.writeFileSync(path.join(src, 'f'), 'x'));
  refused(() => fs.writeFileSync(path.join(v.mnt, 'f'), 'y'), 'EROFS');
  refused(() => fs.mkdirSync(path.join(v.mnt, 'd')), 'EROFS');
  refused(() => fs.rmSync(path.join(v.mnt, 'f')), 'EROFS');
});

test('refusals are rate-limited, count what was held back, and quote hostile names', async () => {
  const v = await mountView('flood');
  for (let i = 0; i < 200; i++) refused(() => fs.mkdirSync(path.join(v.mnt, `.git`)), 'EACCES');
  refused(() => fs.writeFileSync(path.join(v.mnt, '"\n\u001b[31m.code-workspace'), ''), 'EACCES');
  await new Promise((resolve) => setTimeout(resolve, 1500));
  refused(() => fs.mkdirSync(path.join(v.mnt, '.vscode')), 'EACCES');
  await settle();
  assert.ok(v.stderr.length < 40, `${v.stderr.length} lines for 202 refusals`);
  assert.ok(v.stderr.some((l) => /more refusals not shown/.test(l)), v.stderr.slice(-3).join('\n'));
  assert.ok(v.stderr.every((l) => !l.includes('\u001b')), 'control characters are escaped');
});

test('a large directory lists completely and consistently; file data and attributes pass through', async () => {
  const v = await mountView('big', [], (src) => {
    fs.mkdirSync(path.join(src, 'd'));
    for (let i = 0; i < 5000; i++) fs.writeFileSync(path.join(src, 'd', `f${i}`), String(i));
  });
  const names = fs.readdirSync(path.join(v.mnt, 'd'));
  assert.equal(names.length, 5000);
  assert.equal(new Set(names).size, 5000);
  const big = Buffer.alloc(3 * 1024 * 1024, 7);
  fs.writeFileSync(path.join(v.mnt, 'big.bin'), big);
  assert.ok(fs.readFileSync(path.join(v.src, 'big.bin')).equals(big));
  fs.chmodSync(path.join(v.mnt, 'big.bin'), 0o640);
  assert.equal(fs.statSync(path.join(v.src, 'big.bin')).mode & 0o777, 0o640);
  fs.writeFileSync(path.join(v.src, 'host-edit.txt'), 'one');
  assert.equal(fs.readFileSync(path.join(v.mnt, 'host-edit.txt'), 'utf8'), 'one');
  fs.writeFileSync(path.join(v.src, 'host-edit.txt'), 'two, longer');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(fs.readFileSync(path.join(v.mnt, 'host-edit.txt'), 'utf8'), 'two, longer', 'a host edit is seen once the 50 ms attribute cache expires');
});
