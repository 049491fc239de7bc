import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * ARCHITECTURE.md stays true about what exists: every source file it names in backticks (`session.ts`,
 * `engine/workspace/services/relay.ts`, `native/agent/relay.c`) is a file of the repository,
 * found by its path from the root, by a path's tail, or, for a bare name inside a folder's
 * bullet, by its name. A renamed or removed file fails here until the document follows.
 */
const REPO = path.resolve(__dirname, '../..');
const FOLDERS = ['engine', 'extension', 'native', 'test', 'bench', 'scripts', 'examples', 'media'];
/** Names the document uses for files of other projects (a dev container feature's script). */
const NOT_OURS = new Set(['install.sh']);

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.name === 'node_modules' || full === path.join(REPO, 'native', 'build')) return [];
    return e.isDirectory() ? files(full) : [path.relative(REPO, full)];
  });
}

test('every file ARCHITECTURE.md names exists', () => {
  const text = fs.readFileSync(path.join(REPO, 'ARCHITECTURE.md'), 'utf8');
  const all = [
    ...fs.readdirSync(REPO).filter((n) => fs.statSync(path.join(REPO, n)).isFile()),
    ...FOLDERS.flatMap((d) => files(path.join(REPO, d))),
  ];
  const names = new Set(all.map((f) => path.basename(f)));
  const named = [...new Set([...text.matchAll(/`([A-Za-z0-9_./-]+\.(?:ts|c|h|mjs|sh))`/g)].map((m) => m[1]))];
  assert.ok(named.length > 100, `only ${named.length} file names found: the pattern no longer matches the document`);
  const missing = named.filter(
    (name) =>
      !NOT_OURS.has(name!) &&
      (name!.includes('/') ? !all.some((f) => f === name || f.endsWith(`/${name}`)) : !names.has(name!)),
  );
  assert.deepEqual(missing, []);
});
