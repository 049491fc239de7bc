import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * ARCHITECTURE.md stays true about what exists. Every path it names in backticks, a source
 * file (`.ts`, `.c`, `.h`, `.mjs`, `.sh`), a `.md` or `.json` file, or a folder (`engine/vm/`,
 * `services/`), is resolved as the relative path it is, from where the document names it:
 * the repository root, the folder of its `## folder/` section, the folder of its top-level
 * bullet (`- \`workspace/\`: ...`), or a folder named earlier in that same bullet
 * (`services/` (... `relay.ts` ...)). A renamed or removed file or folder fails here until the
 * document follows. Paths that are not the repository's (under $MICROVM_HOME, a guest's or a
 * user's files, build outputs) are listed in NOT_OURS with the reason.
 */
const REPO = path.resolve(__dirname, '../..');
const NAMED = /`([A-Za-z0-9_.-][A-Za-z0-9_./-]*(?:\/|\.(?:ts|c|h|mjs|sh|md|json)))`/g;

const NOT_OURS: Record<string, string> = {
  'assets/': "$MICROVM_HOME's guest assets, written by scripts/setup",
  'assets/manifest.json': "$MICROVM_HOME's record of the x86_64 guest assets",
  'assets/aarch64/manifest.json': "$MICROVM_HOME's record of the aarch64 guest assets",
  'docs/api/': 'the API reference npm run docs:api generates (not committed)',
  'native/build/aarch64/': "scripts/setup's build output for the aarch64 guest",
  '.devcontainer/': "a user's folder's dev container configuration",
  '.microvm-types.json': 'the marker the type projection writes into a host node_modules',
  'build.json': "a Dockerfile build's record in the image store",
  'install.sh': "a dev container feature's script",
  '../shared/DESIGN.md': "the team's design notes beside the repository, not in it (a clone has no ../shared)",
};

interface Named {
  line: number;
  name: string;
  /** Where it may be relative to, nearest first. */
  bases: string[];
}

/** Every path the document names, with the folders it may be relative to. */
function namedPaths(text: string): Named[] {
  const named: Named[] = [];
  let section = '';
  let bulletFolders: string[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.startsWith('#')) {
      section = /^##\s+([\w.-]+\/)\s*$/.exec(line)?.[1] ?? '';
      bulletFolders = [];
      continue;
    }
    // A top-level bullet opens a scope: its own folder, when it starts with one.
    if (line.startsWith('- ')) {
      const own = /^- `([\w.-]+(?:\/[\w.-]+)*\/)`/.exec(line)?.[1];
      bulletFolders = own ? [path.posix.join(section, own)] : [];
    } else if (line.trim() === '' || /^\S/.test(line)) bulletFolders = [];
    for (const m of line.matchAll(NAMED)) {
      const name = m[1]!;
      named.push({ line: i + 1, name, bases: [...new Set([...bulletFolders].reverse().concat(section, ''))] });
      // A folder named inside the bullet holds the names that follow it there.
      if (name.endsWith('/') && bulletFolders.length > 0) {
        const inside = [...bulletFolders, section]
          .map((base) => path.posix.join(base, name))
          .find((p) => fs.existsSync(path.join(REPO, p)));
        if (inside && !bulletFolders.includes(inside)) bulletFolders.push(inside);
      }
    }
  }
  return named;
}

test('every path ARCHITECTURE.md names exists where the document names it', () => {
  const named = namedPaths(fs.readFileSync(path.join(REPO, 'ARCHITECTURE.md'), 'utf8'));
  assert.ok(named.length > 300, `only ${named.length} paths found: the pattern no longer matches the document`);
  assert.ok(named.filter((n) => n.name.endsWith('/')).length > 40, 'the folders are no longer found');
  assert.ok(named.filter((n) => /\.(md|json)$/.test(n.name)).length > 5, 'the .md and .json paths are no longer found');
  const missing = named
    .filter(({ name, bases }) => {
      if (name in NOT_OURS) return false;
      const full = bases.map((base) => path.join(REPO, base, name));
      return !full.some((p) => fs.existsSync(p) && fs.statSync(p).isDirectory() === name.endsWith('/'));
    })
    .map(({ line, name, bases }) => `ARCHITECTURE.md:${line}: ${name} (from ${bases.map((b) => b || '.').join(', ')})`);
  assert.deepEqual(missing, []);
});

test('each NOT_OURS entry is still named by the document and says why it is not a repository path', () => {
  const text = fs.readFileSync(path.join(REPO, 'ARCHITECTURE.md'), 'utf8');
  for (const [name, reason] of Object.entries(NOT_OURS)) {
    assert.ok(text.includes(`\`${name}\``), `${name} is no longer named: drop it from NOT_OURS`);
    assert.ok(reason.length > 15, name);
  }
});

test('the resolution is by relative path, not by base name', () => {
  const doc = ['## engine/', '', '- `image/`: the store; `registry/pull.ts` pulls, `api/image.ts` builds.'].join('\n');
  const [folder, pull, image] = namedPaths(doc);
  assert.deepEqual(folder?.bases, ['engine/image/', 'engine/', '']);
  assert.deepEqual(pull?.bases, ['engine/image/', 'engine/', '']);
  assert.ok(fs.existsSync(path.join(REPO, pull!.bases[0]!, pull!.name)));
  // `api/image.ts` is engine/api/image.ts, not engine/image/api/image.ts nor any image.ts.
  assert.ok(!fs.existsSync(path.join(REPO, image!.bases[0]!, image!.name)));
  assert.ok(fs.existsSync(path.join(REPO, image!.bases[1]!, image!.name)));
});
