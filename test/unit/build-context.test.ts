import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { contextTar, parseIgnoreFile, readIgnorePatterns, scanContext } from '../../engine/build/context';
import { HashCache } from '../../engine/build/hash-cache';
import { DEFAULT_TAR_LIMITS, readTar } from '../../engine/tar/reader';
import { fromBytePath } from '../../engine/tar/types';

let tmp: string;
let root: string;
const savedHome = process.env.MICROVM_HOME;

before(() => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-context-')));
  process.env.MICROVM_HOME = path.join(tmp, 'home');
  root = path.join(tmp, 'ws');
  const files: Record<string, string> = {
    Dockerfile: 'FROM debian\n',
    '.dockerignore': '# secrets stay home\n.env\n/node_modules\n*.log\n!keep.log\nbuild/\n!build/keep\n',
    '.env': 'TOKEN=secret',
    'app/main.sh': '#!/bin/sh\necho hi\n',
    'app/.env': 'nested is not matched by ".env"',
    'node_modules/x/index.js': 'x',
    'a.log': 'ignored',
    'keep.log': 'kept',
    'build/out.o': 'ignored',
    'build/keep': 'kept by the exception',
  };
  for (const [rel, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
  }
  fs.chmodSync(path.join(root, 'app/main.sh'), 0o755);
  fs.symlinkSync('/etc/passwd', path.join(root, 'app/passwd-link'));
  fs.mkdirSync(path.join(tmp, 'outside'));
  fs.writeFileSync(path.join(tmp, 'outside', 'secret'), 'host secret');
});

after(() => {
  if (savedHome === undefined) delete process.env.MICROVM_HOME;
  else process.env.MICROVM_HOME = savedHome;
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function scan() {
  const hashes = await HashCache.open(root);
  const result = await scanContext(root, readIgnorePatterns(root, path.join(root, 'Dockerfile')), hashes);
  await hashes.save(root);
  return result;
}

async function tarEntries(result: Awaited<ReturnType<typeof scan>>) {
  const entries: Array<{ path: string; type: string; mode: number; data: string; link: string }> = [];
  for await (const { header, body } of readTar(contextTar(result), DEFAULT_TAR_LIMITS)) {
    const chunks: Buffer[] = [];
    for await (const chunk of body()) chunks.push(Buffer.from(chunk));
    entries.push({
      path: fromBytePath(header.path),
      type: header.type,
      mode: header.mode,
      data: Buffer.concat(chunks).toString(),
      link: fromBytePath(header.linkpath),
    });
  }
  return entries;
}

test('.dockerignore follows Docker: root-relative patterns, exceptions, comments, leading slashes', () => {
  assert.deepEqual(parseIgnoreFile('# c\n\n /a \n!/b\n\\#x\n'), ['a', '!b', '\\#x']);
});

test('ignored files never enter the tar; symlinks go as links, never followed; modes are kept', async () => {
  const result = await scan();
  const entries = await tarEntries(result);
  const names = entries.map((e) => e.path);
  assert.deepEqual(
    names.sort(),
    [
      '.dockerignore',
      'Dockerfile',
      'app/',
      'app/.env',
      'app/main.sh',
      'app/passwd-link',
      'build/',
      'build/keep',
      'keep.log',
    ].sort(),
  );
  assert.ok(!entries.some((e) => e.data.includes('TOKEN=secret')), 'the root .env is not sent');
  const link = entries.find((e) => e.path === 'app/passwd-link');
  assert.equal(link?.type, 'symlink');
  assert.equal(link?.link, '/etc/passwd');
  assert.equal(entries.find((e) => e.path === 'app/main.sh')?.mode, 0o755);
  assert.equal(result.ignored, 4, '.env, node_modules, a.log, build/out.o');
});

test('the digest follows content, not times; the hash cache answers for unchanged files', async () => {
  const first = await scan();
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(path.join(root, 'app/main.sh'), later, later);
  assert.equal((await scan()).digest, first.digest, 'a touch changes nothing');
  fs.writeFileSync(path.join(root, 'app/main.sh'), '#!/bin/sh\necho changed\n');
  const edited = await scan();
  assert.notEqual(edited.digest, first.digest);
  fs.writeFileSync(path.join(root, 'a.log'), 'an ignored file changed');
  assert.equal((await scan()).digest, edited.digest, 'ignored files are not part of the digest');
});

test('a directory swapped for a symlink after the scan is refused, not followed out of the folder', async () => {
  const dir = path.join(root, 'swap');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'secret'), 'host secret');
  const result = await scan();
  fs.rmSync(dir, { recursive: true });
  fs.symlinkSync(path.join(tmp, 'outside'), dir);
  try {
    await assert.rejects(
      tarEntries(result),
      (err: Error & { code?: string }) => err.code === 'E_BUILD_CONTEXT' && /swap\/secret changed/.test(err.message),
    );
  } finally {
    fs.rmSync(dir);
  }
});

test('a file that changes while it is sent fails the build instead of sending other bytes than the key says', async () => {
  const result = await scan();
  fs.writeFileSync(path.join(root, 'keep.log'), 'kepT');
  await assert.rejects(tarEntries(result), /keep\.log changed/);
  fs.writeFileSync(path.join(root, 'keep.log'), 'kept');
});

test('a Dockerfile-specific ignore file wins over the context one; a symlinked ignore file is refused', () => {
  fs.writeFileSync(path.join(root, 'Dockerfile.dockerignore'), 'app\n');
  assert.deepEqual(readIgnorePatterns(root, path.join(root, 'Dockerfile')), ['app']);
  fs.rmSync(path.join(root, 'Dockerfile.dockerignore'));
  fs.symlinkSync('/etc/hostname', path.join(root, 'Dockerfile.dockerignore'));
  try {
    assert.throws(() => readIgnorePatterns(root, path.join(root, 'Dockerfile')), /symbolic link/);
  } finally {
    fs.rmSync(path.join(root, 'Dockerfile.dockerignore'));
  }
});
