import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import {
  containerRootVolume,
  DEFAULT_PROTECT,
  DEFAULT_TYPE_LIMITS,
  openWorkspace,
  prepareWorkspace,
  PROJECTION_MARKER,
  projectionTargets,
  projectTypes,
  recordFile,
  Session,
} from '../../engine';
import { removeVolume } from '../../engine/mount';
import { encodeHeader, endOfArchive } from '../../engine/tar/writer';
import { newHeader, toBytePath } from '../../engine/tar/types';
import { loggingEvents } from '../helpers/session-events';
import { buildBundles, runCli } from './cli-helpers';
import { TsServer } from '../helpers/tsserver';
import { nodeImageLayout } from '../helpers/host-tools-image';
import { SLOW } from '../helpers/slow';
import { testPlanSettings } from '../helpers/plan-settings';

/**
 * Issue 17, "IntelliSense sees the guest's dependencies": a workspace with node_modules on a
 * volume (the default plan), a package written in the VM by postCreateCommand, and the host's
 * own tsserver resolving its types from the projection; what a hostile guest can put there.
 */
const SETTINGS = testPlanSettings();
const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-types-')));
const sessions: Session[] = [];
const folders: string[] = [];

after(async () => {
  for (const session of sessions) await session.stop();
  for (const folder of folders) {
    const record = openWorkspace(folder);
    for (const name of [`ws-${record.id}-node_modules`, containerRootVolume(record)])
      await removeVolume(name).catch(() => undefined);
    fs.rmSync(recordFile(folder), { force: true });
  }
  fs.rmSync(root, { recursive: true, force: true });
});

/** What postCreateCommand installs: a package with code, an executable, scripts and bin, links out, a protected name. */
const INSTALL = `set -e
nm=node_modules
mkdir -p $nm/typed-pkg/node_modules/inner $nm/typed-pkg/.vscode $nm/.bin
cat > $nm/typed-pkg/package.json <<'EOF'
{"name":"typed-pkg","version":"1.2.3","types":"index.d.ts","main":"index.js","scripts":{"postinstall":"node evil.js"},"bin":{"typed":"cli.sh"},"gypfile":true}
EOF
echo 'module.exports.greet = () => ({ text: "hi" });' > $nm/typed-pkg/index.js
printf 'import type { Inner } from "inner";\\nexport interface Greeting { text: string; inner: Inner }\\nexport declare function greet(): Greeting;\\n' > $nm/typed-pkg/index.d.ts
chmod 755 $nm/typed-pkg/index.d.ts
printf '#!/bin/sh\\necho pwned\\n' > $nm/typed-pkg/cli.sh
chmod 755 $nm/typed-pkg/cli.sh
echo '{"name":"inner","types":"index.d.ts","scripts":{"install":"make"}}' > $nm/typed-pkg/node_modules/inner/package.json
echo 'export type Inner = { depth: 2 };' > $nm/typed-pkg/node_modules/inner/index.d.ts
echo 'export {};' > $nm/typed-pkg/.vscode/settings.d.ts
ln -s /etc $nm/link-out
ln -s /etc/passwd $nm/typed-pkg/passwd.d.ts
ln -s ../typed-pkg/cli.sh $nm/.bin/typed
`;

const MAIN_TS = `import { greet } from 'typed-pkg';
const depth: 2 = greet().inner.depth;
const text: string = greet().text;
export { depth, text };
`;

function project(name: string, files: Record<string, string>): string {
  const dir = path.join(root, name);
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  }
  fs.chmodSync(dir, 0o755);
  folders.push(dir);
  return dir;
}

async function open(folder: string, logs: string[], settings = SETTINGS): Promise<Session> {
  const prepared = await prepareWorkspace({
    folder,
    settings,
    allowLocalEnv: [],
    onConfigChanged: async () => 'apply',
    onOverLimits: async () => true,
  });
  assert.ok(prepared);
  const session = new Session(prepared.plan, loggingEvents(logs), prepared.lifecycle);
  sessions.push(session);
  await session.start();
  await session.hooksSettled();
  await session.typesSettled();
  return session;
}

/** Every path below `dir` with its kind and mode, links not followed. */
function tree(dir: string): Map<string, { kind: string; mode: number }> {
  const out = new Map<string, { kind: string; mode: number }>();
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(dir, rel))) {
      const child = path.join(rel, name);
      const stat = fs.lstatSync(path.join(dir, child));
      out.set(child, { kind: stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : 'other', mode: stat.mode & 0o7777 });
      if (stat.isDirectory()) walk(child);
    }
  };
  if (fs.existsSync(dir)) walk('');
  return out;
}

/** Files and folders of `folder` outside its node_modules, with their content. */
function outsideProjection(folder: string): string[] {
  return [...tree(folder)]
    .filter(([rel]) => !rel.startsWith('node_modules'))
    .map(
      ([rel, { kind }]) =>
        `${rel}:${kind}:${kind === 'file' ? fs.readFileSync(path.join(folder, rel), 'utf8').length : ''}`,
    )
    .sort();
}

function assertTypeOnly(hostDir: string): void {
  for (const [rel, { kind, mode }] of tree(hostDir)) {
    assert.notEqual(kind, 'other', `${rel} is neither a file nor a directory`);
    assert.equal(mode, kind === 'dir' ? 0o755 : 0o644, `${rel} has mode ${mode.toString(8)}`);
    if (kind === 'file')
      assert.match(rel, /(\.d\.[mc]?ts|(^|\/)package\.json|^\.microvm-types\.json)$/, `${rel} is not a type file`);
    if (rel.endsWith('package.json'))
      assert.doesNotMatch(fs.readFileSync(path.join(hostDir, rel), 'utf8'), /"(scripts|bin|gypfile)"/, rel);
  }
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await delay(200);
  }
}

const folder = project('app', {
  'setup/install.sh': INSTALL,
  '.devcontainer/devcontainer.json': JSON.stringify({ postCreateCommand: 'sh setup/install.sh' }),
  'tsconfig.json': JSON.stringify({
    compilerOptions: { module: 'esnext', moduleResolution: 'bundler', strict: true, noEmit: true, types: [] },
  }),
  'src/main.ts': MAIN_TS,
});
const hostDir = path.join(folder, 'node_modules');
const main = path.join(folder, 'src', 'main.ts');
const logs: string[] = [];
let session: Session;

test('host tsserver resolves a package the VM installed on its node_modules volume, from a type-only projection', async () => {
  const live = new TsServer();
  try {
    live.open(main);
    assert.match(
      (await live.diagnostics(main)).join('\n'),
      /TS2307: Cannot find module 'typed-pkg'/,
      'without the projection the host cannot resolve it',
    );
    const before = outsideProjection(folder);
    const rootBefore = fs.readdirSync(root).sort();
    session = await open(folder, logs);
    const line = logs.find((l) => l.startsWith('type projection (the hooks settled)'));
    assert.ok(line, logs.join('\n'));
    console.log(line);
    assert.match(line, /2 declaration files and 2 package\.json files/);
    assert.match(line, /protected name "\.vscode"/);
    // The same tsserver, open since before the VM started, sees the projection appear (it watches node_modules as VS Code's does).
    await waitFor(
      'the live tsserver to resolve typed-pkg',
      async () => (await live.diagnostics(main)).length === 0,
      30_000,
    );
    assert.match(await live.quickInfo(main, 2, 27), /inner: Inner/);
    assertTypeOnly(hostDir);
    assert.deepEqual([...tree(hostDir).keys()].sort(), [
      '.microvm-types.json',
      'typed-pkg',
      'typed-pkg/index.d.ts',
      'typed-pkg/node_modules',
      'typed-pkg/node_modules/inner',
      'typed-pkg/node_modules/inner/index.d.ts',
      'typed-pkg/node_modules/inner/package.json',
      'typed-pkg/package.json',
    ]);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(hostDir, 'typed-pkg/package.json'), 'utf8')), {
      name: 'typed-pkg',
      version: '1.2.3',
      types: 'index.d.ts',
      main: 'index.js',
    });
    assert.deepEqual(outsideProjection(folder), before, 'nothing changed in the folder outside node_modules');
    assert.deepEqual(fs.readdirSync(root).sort(), rootBefore, 'nothing written beside the folder');
    const leftovers = fs
      .readdirSync(
        path.join(process.env.MICROVM_HOME || path.join(os.homedir(), '.cache', 'microvm'), 'type-projections'),
      )
      .filter((n) => n.startsWith(`.tmp-${process.pid}-`));
    assert.deepEqual(leftovers, [], 'no staging tree left behind');
    // The guest still sees an empty, read-only node_modules on the share: the projection is the host's alone.
    const vm = session.running;
    const share = await vm.exec({
      argv: [
        'sh',
        '-c',
        'mkdir -p /tmp/s && mount -t virtiofs microvm-fs0 /tmp/s && ls -A /tmp/s/node_modules; umount /tmp/s',
      ],
    });
    assert.equal(share.stdout, '', share.stderr);
  } finally {
    live.close();
  }
});

test('an install in a terminal (the lockfile changes) refreshes the projection', async () => {
  const child = session.spawn([
    'sh',
    '-c',
    'mkdir -p node_modules/late && echo "export declare const late: 1;" > node_modules/late/index.d.ts && echo "{\\"lockfileVersion\\":3}" > package-lock.json',
  ]);
  assert.equal((await child.wait()).exitCode, 0);
  await waitFor('the lockfile refresh', () => fs.existsSync(path.join(hostDir, 'late', 'index.d.ts')), 30_000);
  await session.typesSettled();
  assert.ok(
    logs.some((l) => l.startsWith('type projection (a lockfile changed)')),
    logs.join('\n'),
  );
  assertTypeOnly(hostDir);
});

test('past the file cap the projection stops with a clear error and the previous one stays', async () => {
  const vm = session.running;
  const made = await vm.exec({
    argv: [
      'sh',
      '-c',
      'mkdir -p /workspaces/app/node_modules/many && cd /workspaces/app/node_modules/many && i=0; while [ $i -lt 300 ]; do echo "export {};" > f$i.d.ts; i=$((i+1)); done',
    ],
  });
  assert.equal(made.exitCode, 0, made.stderr);
  const before = tree(hostDir);
  const [target] = projectionTargets(session.plan.mounts, session.plan.volumes);
  await assert.rejects(
    projectTypes(vm, target!, { protect: DEFAULT_PROTECT, limits: { ...DEFAULT_TYPE_LIMITS, maxFiles: 100 } }),
    (err: Error & { code?: string }) => {
      console.log(err.message);
      return (
        err.code === 'E_TYPE_PROJECTION_LIMIT' &&
        /over 100 files/.test(err.message) &&
        err.message.includes(hostDir) &&
        /was left as it was/.test(err.message)
      );
    },
  );
  assert.deepEqual(tree(hostDir), before);
  await vm.exec({ argv: ['rm', '-rf', '/workspaces/app/node_modules/many'] });
});

test("projection time for a realistic tree (this repository's own node_modules, sent into the VM)", SLOW, async () => {
  const vm = session.running;
  const source = path.join(__dirname, '..', '..', 'node_modules');
  const list = execFileSync(
    'sh',
    [
      '-c',
      'find . \\( -name "*.d.ts" -o -name "*.d.mts" -o -name "*.d.cts" -o -name package.json -o \\( -name "*.js" -size -64k \\) \\) -type f -print0',
    ],
    { cwd: source, maxBuffer: 64 * 1024 * 1024 },
  );
  const host = spawn('tar', ['-c', '-f', '-', '--null', '-T', '-'], { cwd: source, stdio: ['pipe', 'pipe', 'ignore'] });
  host.stdin.end(list);
  const guest = vm.spawn({ argv: ['tar', '-x', '-f', '-', '-C', '/workspaces/app/node_modules'], timeoutMs: 600_000 });
  const sent = Date.now();
  for await (const chunk of host.stdout) await guest.writeStdin(chunk as Buffer);
  guest.closeStdin();
  assert.equal((await guest.wait()).exitCode, 0);
  const counted = await vm.exec({
    argv: [
      'sh',
      '-c',
      'cd /workspaces/app/node_modules && find . -type f | wc -l && find . -name package.json | wc -l && du -sm . | cut -f1',
    ],
  });
  const [files, packages, mib] = counted.stdout.trim().split('\n');
  console.log(
    `realistic tree in the VM: ${files} files, ${packages} package.json files, ${mib} MiB (sent in ${Date.now() - sent} ms)`,
  );
  const [result] = (await session.refreshTypes())?.results ?? [];
  assert.ok(result, logs.join('\n'));
  console.log(
    `projection: ${result.declarations} declarations + ${result.packageJsons} package.json files, ${(result.bytes / 1048576).toFixed(1)} MiB, in ${result.ms} ms`,
  );
  assert.ok(result.declarations > 1000 && result.packageJsons > 100);
  assertTypeOnly(hostDir);
  fs.writeFileSync(
    path.join(folder, 'src', 'zod.ts'),
    "import { z } from 'zod';\nexport const n: number = z.string().parse('x');\n",
  );
  const fresh = new TsServer();
  try {
    fresh.open(path.join(folder, 'src', 'zod.ts'));
    assert.match(
      (await fresh.diagnostics(path.join(folder, 'src', 'zod.ts'))).join('\n'),
      /TS2322: Type 'string' is not assignable to type 'number'/,
    );
  } finally {
    fresh.close();
    fs.rmSync(path.join(folder, 'src', 'zod.ts'));
  }
});

test('a hostile guest stream (traversal, absolute paths, links, setuid, control characters, code) lands nowhere but as plain type files', async () => {
  const vm = session.running;
  const file = (name: string, body: string, mode = 0o644): Buffer =>
    Buffer.concat([
      encodeHeader(newHeader({ path: toBytePath(name), type: 'file', size: Buffer.byteLength(body), mode })),
      Buffer.from(body),
      Buffer.alloc((512 - (Buffer.byteLength(body) % 512)) % 512),
    ]);
  const link = (name: string, type: 'symlink' | 'hardlink', target: string): Buffer =>
    encodeHeader(newHeader({ path: name, type, linkpath: target }));
  const stream = Buffer.concat([
    file('./ok/index.d.ts', 'export declare const ok: true;\n'),
    file(
      './ok/package.json',
      JSON.stringify({ name: 'ok', types: 'index.d.ts', scripts: { preinstall: 'x' }, bin: 'x' }),
    ),
    file('../escape.d.ts', 'x'),
    file('./../../escape.d.ts', 'x'),
    file(`${root}/absolute.d.ts`, 'x'),
    file(`./${'../'.repeat(8)}tmp/deep-escape.d.ts`, 'x'),
    file('./pkg/run.d.ts', 'export {};\n', 0o6755),
    file('./pkg/evil.js', 'require("child_process")'),
    file('./pkg/.git/hooks.d.ts', 'x'),
    file('./pkg/\x1b]8;;http://evil\x07.d.ts', 'x'),
    file('./.microvm-types.json/evil.d.ts', 'x'),
    file('./ok/index.d.ts', 'export declare const ok: false;\n'),
    link('./pkg/passwd.d.ts', 'symlink', '/etc/passwd'),
    link('./pkg/hard.d.ts', 'hardlink', 'ok/index.d.ts'),
    endOfArchive(),
  ]);
  await vm.writeFile('/tmp/evil.tar', stream);
  const swapped = await vm.exec({
    argv: [
      'sh',
      '-c',
      'rm -f /usr/local/bin/find && printf "#!/bin/sh\\ncat /tmp/evil.tar\\n" > /usr/local/bin/find && chmod 755 /usr/local/bin/find',
    ],
  });
  assert.equal(swapped.exitCode, 0, swapped.stderr);
  const rootBefore = fs.readdirSync(root).sort();
  const [result] = (await session.refreshTypes())?.results ?? [];
  assert.ok(result, logs.join('\n'));
  console.log(logs.filter((l) => l.startsWith('type projection (asked)')).pop());
  assert.deepEqual([...tree(hostDir).keys()].sort(), [
    '.microvm-types.json',
    'ok',
    'ok/index.d.ts',
    'ok/package.json',
    'pkg',
    'pkg/run.d.ts',
  ]);
  assertTypeOnly(hostDir);
  assert.equal(
    fs.readFileSync(path.join(hostDir, 'ok/index.d.ts'), 'utf8'),
    'export declare const ok: true;\n',
    'a path named twice keeps the first',
  );
  assert.deepEqual(result.skipped, {
    'an empty, "." or ".." part': 3,
    'an absolute path': 1,
    'not a declaration file or package.json': 1,
    'the protected name ".git"': 1,
    'a control character or backslash in the name': 1,
    'a path the stream named twice': 1,
    'not a regular file (symlink)': 1,
    'not a regular file (hardlink)': 1,
    'a top-level name the projection keeps for itself': 1,
  });
  assert.deepEqual(fs.readdirSync(root).sort(), rootBefore);
  assert.equal(fs.existsSync('/tmp/deep-escape.d.ts'), false);
});

test('an image without find or tar gets a clear error, and the projection stays as it was', async () => {
  const vm = session.running;
  const before = tree(hostDir);
  assert.equal((await vm.exec({ argv: ['rm', '-f', '/usr/local/bin/find'] })).exitCode, 0);
  const run = await session.refreshTypes();
  assert.equal(run?.results.length, 0);
  const error = run?.failures[0]?.error as Error & { code?: string };
  assert.equal(error?.code, 'E_TYPE_PROJECTION');
  assert.match(error.message, /needs find and tar in the VM .*left as it was/);
  assert.ok(
    logs.some((l) =>
      /type projection of \/workspaces\/app\/node_modules \(asked\) failed \(E_TYPE_PROJECTION\)/.test(l),
    ),
    logs.join('\n'),
  );
  assert.deepEqual(tree(hostDir), before);
});

test('a node_modules the user made on the host is never replaced', async () => {
  const mine = project('mine', {
    'node_modules/left-pad/index.js': 'module.exports = 1;\n',
    'package.json': '{"name":"mine"}',
  });
  const mineLogs: string[] = [];
  await open(mine, mineLogs);
  const refused = mineLogs.find((l) => l.includes('E_TYPE_PROJECTION'));
  assert.ok(refused, mineLogs.join('\n'));
  console.log(refused);
  assert.match(refused, /does not replace .*mine\/node_modules: it is a node_modules made on the host/);
  assert.deepEqual([...tree(path.join(mine, 'node_modules')).keys()].sort(), ['left-pad', 'left-pad/index.js']);
  assert.equal(fs.existsSync(path.join(mine, 'node_modules', PROJECTION_MARKER)), false);
});

test('the CLI: `microvm types --workspace-folder` projects and prints what it did; `run --no-type-projection` leaves the folder alone', async () => {
  const bundles = await buildBundles();
  try {
    const install =
      'mkdir -p node_modules/cli-pkg && echo "export declare const fromCli: 1;" > node_modules/cli-pkg/index.d.ts && echo "{\\"name\\":\\"cli-pkg\\",\\"bin\\":\\"x\\"}" > node_modules/cli-pkg/package.json';
    const off = project('cli-off', {
      '.devcontainer/devcontainer.json': JSON.stringify({ postCreateCommand: install }),
    });
    const ran = await runCli(bundles.cli, [
      'run',
      '--workspace-folder',
      off,
      '--no-type-projection',
      '--',
      'ls',
      'node_modules/cli-pkg',
    ]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout.toString(), 'index.d.ts\npackage.json\n');
    assert.equal(fs.existsSync(path.join(off, 'node_modules')), false);
    const on = project('cli-on', { '.devcontainer/devcontainer.json': JSON.stringify({ postCreateCommand: install }) });
    const typed = await runCli(bundles.cli, ['types', '--workspace-folder', on]);
    assert.equal(typed.code, 0, typed.stderr);
    const printed = JSON.parse(typed.stdout.toString()) as {
      outcome: string;
      projections: Array<{ hostDir: string; declarations: number; packageJsons: number }>;
    };
    console.log(typed.stdout.toString().trim());
    assert.equal(printed.outcome, 'success');
    assert.deepEqual(
      printed.projections.map(({ hostDir, declarations, packageJsons }) => ({ hostDir, declarations, packageJsons })),
      [{ hostDir: path.join(on, 'node_modules'), declarations: 1, packageJsons: 1 }],
    );
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(on, 'node_modules', 'cli-pkg', 'package.json'), 'utf8')), {
      name: 'cli-pkg',
    });
    assertTypeOnly(path.join(on, 'node_modules'));
  } finally {
    fs.rmSync(bundles.dir, { recursive: true, force: true });
  }
});

test(
  'a real npm install in the VM (the node image, the npm registry): host tsserver types the installed package',
  SLOW,
  async () => {
    const npm = project('npm', {
      'package.json': JSON.stringify({
        name: 'npm-app',
        version: '1.0.0',
        private: true,
        dependencies: { 'left-pad': '1.3.0' },
      }),
      '.devcontainer/devcontainer.json': JSON.stringify({ postCreateCommand: 'npm install --no-audit --no-fund' }),
      'tsconfig.json': JSON.stringify({
        compilerOptions: { module: 'commonjs', moduleResolution: 'node10', strict: true, noEmit: true, types: [] },
      }),
      'main.ts': "import leftPad = require('left-pad');\nexport const padded: number = leftPad('x', 3);\n",
    });
    const npmLogs: string[] = [];
    await open(npm, npmLogs, { ...SETTINGS, image: nodeImageLayout(), network: 'outbound', memoryMib: 512 });
    const line = npmLogs.find((l) => l.startsWith('type projection (the hooks settled)'));
    assert.ok(line, npmLogs.join('\n'));
    console.log(line);
    const projected = path.join(npm, 'node_modules');
    assertTypeOnly(projected);
    assert.ok(fs.existsSync(path.join(projected, 'left-pad', 'index.d.ts')));
    assert.equal(fs.existsSync(path.join(projected, 'left-pad', 'index.js')), false);
    const ts = new TsServer();
    try {
      ts.open(path.join(npm, 'main.ts'));
      assert.deepEqual(await ts.diagnostics(path.join(npm, 'main.ts')), [
        "TS2322: Type 'string' is not assignable to type 'number'.",
      ]);
    } finally {
      ts.close();
    }
  },
);
