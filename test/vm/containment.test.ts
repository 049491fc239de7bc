import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { Image, Pool, ShareRefusal, Vm } from '../../engine';
import { gitImageLayout } from '../helpers/host-tools-image';
import { volumeFile } from '../../engine/mount';

/**
 * Issue 14: nothing the guest writes runs on the host. One VM (guest git from the host's
 * Debian package) with the same project shared twice: /repo through the filter (the
 * default) and /control unfiltered (`filter: false`, as before the filter existed). Every
 * attack runs against both: on /control it must work (the host tool really runs the
 * guest's command and touches a sentinel), which shows the check can fail; on /repo it must
 * not. Host git runs as the folder's owner would, with every repository trusted
 * (safe.directory=*), so nothing but the filter stands in the way.
 */
const OWNER = 1000;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-contain-'));
const sentinels = path.join(root, 'sentinels');
const folder = (name: string) => path.join(root, name);
let pool: Pool;
let vm: Vm;
const refusals: ShareRefusal[] = [];

function git(cwd: string, ...args: string[]): string {
  return execFileSync(
    'git',
    [
      '-c',
      'safe.directory=*',
      '-c',
      'user.name=host',
      '-c',
      'user.email=host@example.com',
      '-c',
      'protocol.file.allow=always',
      ...args,
    ],
    { cwd, encoding: 'utf8', env: { ...process.env, HOME: root, GIT_CONFIG_NOSYSTEM: '1' }, timeout: 30_000 },
  );
}

/** Host git as the folder's owner runs it; the result does not matter, only what it ran. */
function hostGit(cwd: string, ...args: string[]): void {
  spawnSync(
    'setpriv',
    [
      `--reuid=${OWNER}`,
      `--regid=${OWNER}`,
      '--clear-groups',
      'git',
      '-c',
      'safe.directory=*',
      '-c',
      'user.name=host',
      '-c',
      'user.email=host@example.com',
      ...args,
    ],
    { cwd, env: { ...process.env, HOME: root, GIT_CONFIG_NOSYSTEM: '1' }, timeout: 30_000, stdio: 'ignore' },
  );
}

/** A project as users have them: a repository with a submodule, a hooks directory, dependencies, an editor link. */
function makeProject(dir: string): void {
  const upstream = path.join(root, 'upstream');
  if (!fs.existsSync(upstream)) {
    fs.mkdirSync(upstream);
    git(upstream, 'init', '-q');
    fs.writeFileSync(path.join(upstream, 'lib.txt'), 'lib\n');
    git(upstream, 'add', '.');
    git(upstream, 'commit', '-qm', 'lib');
  }
  fs.mkdirSync(dir);
  git(dir, 'init', '-q');
  fs.writeFileSync(path.join(dir, 'app.txt'), 'app\n');
  fs.mkdirSync(path.join(dir, '.githooks'));
  fs.writeFileSync(path.join(dir, '.githooks', 'README'), 'hooks live here\n');
  git(dir, 'config', 'core.hooksPath', '.githooks');
  git(dir, 'add', '.');
  git(dir, 'commit', '-qm', 'init');
  git(dir, 'submodule', '-q', 'add', upstream, 'sub');
  git(dir, 'commit', '-qm', 'submodule');
  fs.mkdirSync(path.join(dir, 'node_modules', '.bin'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'node_modules', '.bin', 'eslint'), '#!/bin/sh\necho host eslint\n', { mode: 0o755 });
  fs.mkdirSync(path.join(dir, 'shared-config'));
  fs.writeFileSync(path.join(dir, 'shared-config', 'tasks.json'), '{}\n');
  fs.symlinkSync('shared-config', path.join(dir, '.vscode'));
  execFileSync('chown', ['-hR', `${OWNER}:${OWNER}`, dir]);
}

const sentinel = (name: string) => path.join(sentinels, name);
const touched = (name: string) => fs.existsSync(sentinel(name));

async function guest(script: string): Promise<{ stdout: string; stderr: string; exitCode: number }> {
  return vm.exec({ argv: ['bash', '-c', script], timeoutMs: 120_000 });
}

/** Runs the same attack on both shares; {repo, control} are its results. */
async function both(attack: (base: string, tag: string) => string): Promise<{ repo: string; control: string }> {
  const repo = await guest(attack('/repo', 'repo'));
  const control = await guest(attack('/control', 'control'));
  return { repo: repo.stdout + repo.stderr, control: control.stdout + control.stderr };
}

before(async () => {
  fs.chmodSync(root, 0o755);
  fs.mkdirSync(sentinels, { mode: 0o777 });
  fs.chmodSync(sentinels, 0o777);
  makeProject(folder('repo'));
  makeProject(folder('control'));
  fs.mkdirSync(folder('deny'));
  fs.writeFileSync(path.join(folder('deny'), 'file.txt'), 'x\n');
  fs.symlinkSync('file.txt', path.join(folder('deny'), 'link'));
  execFileSync('chown', ['-hR', `${OWNER}:${OWNER}`, folder('deny')]);
  const image = await Image.build({
    ref: gitImageLayout(),
    network: 'none',
    mounts: [
      { hostPath: folder('repo'), guestPath: '/repo' },
      { hostPath: folder('control'), guestPath: '/control', filter: false },
      { hostPath: folder('deny'), guestPath: '/deny', symlinks: 'deny' },
    ],
    volumes: [
      { name: `contain-repo-${process.pid}`, mountPoint: '/repo/node_modules', sizeMib: 64 },
      { name: `contain-control-${process.pid}`, mountPoint: '/control/node_modules', sizeMib: 64 },
    ],
  });
  pool = image.pool({ min: 1, max: 1, acquireTimeoutMs: 180_000 });
  vm = await pool.acquire();
  vm.onShareRefusal((r) => refusals.push(r));
});

after(async () => {
  await vm?.release();
  await pool?.shutdown();
  for (const name of ['repo', 'control']) fs.rmSync(volumeFile(`contain-${name}-${process.pid}`), { force: true });
  fs.rmSync(root, { recursive: true, force: true });
});

const fsmonitor = (tag: string, what: string) => `[core]\n\tfsmonitor = touch ${sentinel(`${tag}-${what}`)}\n`;

test('a nested .git/config with core.fsmonitor: host git status in that folder does not run it', async () => {
  const out = await both(
    (base, tag) =>
      `mkdir -p ${base}/nested/.git/objects ${base}/nested/.git/refs && echo 'ref: refs/heads/main' > ${base}/nested/.git/HEAD; printf '${fsmonitor(tag, 'nested')}' > ${base}/nested/.git/config; echo done`,
  );
  assert.match(out.repo, /nested\/\.git.*Permission denied/);
  for (const tag of ['repo', 'control']) hostGit(path.join(folder(tag), 'nested'), 'status');
  assert.ok(touched('control-nested'), 'the control share shows the attack works when unfiltered');
  assert.ok(!touched('repo-nested'), "host git ran the guest's fsmonitor");
  assert.equal(fs.existsSync(path.join(folder('repo'), 'nested', '.git')), false);
});

test("a submodule's gitfile redirected, and the submodule's git dir config: host git runs neither", async () => {
  const out = await both((base, tag) =>
    [
      `printf 'gitdir: ../.evil\\n' > ${base}/sub/.git`,
      `printf '${fsmonitor(tag, 'modconfig')}' >> ${base}/.git/modules/sub/config`,
      `mkdir -p ${base}/.evil/objects ${base}/.evil/refs && echo 'ref: refs/heads/main' > ${base}/.evil/HEAD && printf '${fsmonitor(tag, 'gitfile')}' > ${base}/.evil/config`,
      'echo done',
    ].join('; '),
  );
  assert.match(out.repo, /sub\/\.git: Permission denied/);
  assert.match(out.repo, /modules\/sub\/config: Permission denied/);
  assert.match(out.repo, /\.evil\/HEAD: Permission denied/);
  for (const tag of ['repo', 'control']) {
    hostGit(path.join(folder(tag), 'sub'), 'status');
    hostGit(folder(tag), 'status');
  }
  assert.ok(
    touched('control-modconfig') || touched('control-gitfile'),
    'the control share shows the attack works when unfiltered',
  );
  assert.ok(!touched('repo-modconfig') && !touched('repo-gitfile'));
  assert.match(fs.readFileSync(path.join(folder('repo'), 'sub', '.git'), 'utf8'), /modules\/sub/);
});

test('an embedded bare repository cannot be planted (HEAD is refused outside git dirs)', async () => {
  const out = await both(
    (base, tag) =>
      `mkdir -p ${base}/bare/objects ${base}/bare/refs; echo 'ref: refs/heads/main' > ${base}/bare/HEAD; printf '${fsmonitor(tag, 'bare')}' > ${base}/bare/config; echo done`,
  );
  assert.match(out.repo, /bare\/HEAD: Permission denied/);
  // Host git takes a directory with HEAD, objects/ and refs/ for a repository of its own, and trusts its config.
  const gitDir = (tag: string) => git(path.join(folder(tag), 'bare'), 'rev-parse', '--absolute-git-dir').trim();
  assert.equal(
    gitDir('control'),
    path.join(folder('control'), 'bare'),
    'the control share shows the attack works when unfiltered',
  );
  assert.equal(gitDir('repo'), path.join(folder('repo'), '.git'));
});

test('hooks: the core.hooksPath directory and .husky are read-only; host git commit runs no guest hook', async () => {
  const out = await both((base, tag) =>
    [
      `printf '#!/bin/sh\\ntouch ${sentinel(`${tag}-hook`)}\\n' > ${base}/.githooks/pre-commit && chmod +x ${base}/.githooks/pre-commit`,
      `mkdir -p ${base}/.husky && printf '#!/bin/sh\\ntouch ${sentinel(`${tag}-husky`)}\\n' > ${base}/.husky/pre-commit`,
      'echo done',
    ].join('; '),
  );
  assert.match(out.repo, /\.githooks\/pre-commit: Permission denied/);
  assert.match(out.repo, /\.husky.*Permission denied/);
  for (const tag of ['repo', 'control']) hostGit(folder(tag), 'commit', '--allow-empty', '-qm', 'host commit');
  assert.ok(touched('control-hook'), 'the control share shows the attack works when unfiltered');
  assert.ok(!touched('repo-hook'));
  assert.equal(fs.existsSync(path.join(folder('repo'), '.husky')), false);
});

test('workspace files, nested editor tasks and a root .devcontainer.json cannot be created at any depth', async () => {
  const out = (
    await guest(
      [
        'echo "{}" > /repo/evil.code-workspace',
        'mkdir -p /repo/a/b && mkdir /repo/a/b/.vscode',
        'echo "{}" > /repo/.devcontainer.json',
        'mkdir /repo/.devcontainer',
        'touch /repo/a/b/.gitmodules',
        'touch /repo/tmp.txt && mv /repo/tmp.txt /repo/a/x.code-workspace',
        'ln /repo/app.txt /repo/a/.devcontainer.json',
        'echo done',
      ].join('; '),
    )
  ).stderr;
  assert.equal((out.match(/Permission denied/g) ?? []).length, 7, out);
  for (const rel of [
    'evil.code-workspace',
    'a/b/.vscode',
    '.devcontainer.json',
    '.devcontainer',
    'a/b/.gitmodules',
    'a/x.code-workspace',
    'a/.devcontainer.json',
  ]) {
    assert.equal(fs.existsSync(path.join(folder('repo'), rel)), false, rel);
  }
});

test('a second guest mount of the share sees the same filter: the host node_modules stays out of reach', async () => {
  const out = await both(
    (_base, tag) =>
      `mkdir -p /mnt/${tag} && mount -t virtiofs microvm-fs${tag === 'repo' ? 0 : 1} /mnt/${tag} && ls -A /mnt/${tag}/node_modules; echo evil > /mnt/${tag}/node_modules/.bin/eslint; echo done`,
  );
  assert.match(out.repo, /node_modules\/\.bin\/eslint: (Permission denied|No such file or directory)/);
  assert.match(
    fs.readFileSync(path.join(folder('control'), 'node_modules', '.bin', 'eslint'), 'utf8'),
    /evil/,
    'the control share shows the attack works when unfiltered',
  );
  assert.match(fs.readFileSync(path.join(folder('repo'), 'node_modules', '.bin', 'eslint'), 'utf8'), /host eslint/);
  const inGuest = await guest('ls -A /repo/node_modules; mount | grep -c " /repo/node_modules "');
  assert.match(inGuest.stdout, /lost\+found\n1\n/, "the guest's own node_modules is the volume");
});

test('a protected name that is a link: its target inside the share is read-only too', async () => {
  const out = await guest(
    'echo "{\\"tasks\\":[]}" > /repo/shared-config/tasks.json; echo x > /repo/shared-config/new.json; echo done',
  );
  assert.match(out.stderr, /shared-config\/tasks.json: Permission denied/);
  assert.equal(fs.readFileSync(path.join(folder('repo'), 'shared-config', 'tasks.json'), 'utf8'), '{}\n');
  assert.equal(fs.existsSync(path.join(folder('repo'), 'shared-config', 'new.json')), false);
});

test('symlinks: deny also refuses a hard link of an existing symlink', async () => {
  const out = await guest('ln /deny/link /deny/hard; ln -s file.txt /deny/new; echo done');
  assert.match(out.stderr, /hard.*Operation not permitted/);
  assert.equal(fs.existsSync(path.join(folder('deny'), 'hard')), false);
  assert.equal(fs.existsSync(path.join(folder('deny'), 'new')), false);
});

test('git in the guest still works: status, commit, a new branch, log', async () => {
  const result = await guest(
    [
      'set -e',
      'cd /repo',
      'git status --short',
      'echo change >> app.txt',
      'git -c user.name=guest -c user.email=guest@example.com commit -qam "guest commit"',
      'git checkout -qb feature',
      'git log --oneline | head -3',
      'git branch --show-current',
    ].join('\n'),
  );
  assert.equal(result.exitCode, 0, result.stderr);
  assert.match(result.stdout, /guest commit/);
  assert.match(result.stdout, /feature\n$/);
  assert.match(git(folder('repo'), 'log', '--oneline', '-1', 'feature'), /guest commit/);
  assert.equal(
    git(folder('repo'), 'config', 'core.hooksPath').trim(),
    '.githooks',
    'the repository config is unchanged',
  );
});

test('refusals reach the engine as events with the path and the reason, and host files belong to the folder owner', async () => {
  await guest('touch /repo/one.code-workspace 2>/dev/null; true');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const seen = refusals.find((r) => r.path === 'one.code-workspace');
  assert.ok(seen, JSON.stringify(refusals.slice(-5)));
  assert.equal(seen.errno, 'EACCES');
  assert.equal(seen.hostPath, fs.realpathSync(folder('repo')));
  assert.match(seen.reason, /protected name/);
  await guest('echo hello > /repo/made-by-guest.txt');
  assert.equal(fs.statSync(path.join(folder('repo'), 'made-by-guest.txt')).uid, OWNER);
});
