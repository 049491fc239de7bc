import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as prettier from 'prettier';

/**
 * The formatter is part of `npm run lint` (and so of `npm test` and CI): a misformatted file
 * fails it. Checked here through Prettier's own API with the repository's configuration.
 */
const root = path.resolve(__dirname, '../..');

test('npm run lint checks formatting, and a deliberately misformatted file fails the check', async () => {
  const scripts = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).scripts as Record<
    string,
    string
  >;
  assert.match(scripts.lint ?? '', /prettier --check \./);
  assert.match(fs.readFileSync(path.join(root, 'scripts/test'), 'utf8'), /^npm run --silent lint$/m);

  const file = path.join(root, 'engine/format-probe.ts');
  const options = { ...(await prettier.resolveConfig(file)), filepath: file };
  assert.equal(options.printWidth, 120);
  const info = await prettier.getFileInfo(file, { ignorePath: path.join(root, '.prettierignore') });
  assert.equal(info.ignored, false, 'engine/*.ts is checked');

  const good = "export const answer = { value: 42, name: 'answer' };\n";
  assert.equal(await prettier.check(good, options), true);
  for (const bad of [
    'export const answer = {value:42,name:"answer"}\n',
    `export const long = [${Array.from({ length: 30 }, (_, i) => `'item-${i}'`).join(', ')}];\n`,
  ]) {
    assert.equal(await prettier.check(bad, options), false, bad);
  }
});

test('the formatter leaves guest C code, docs and bench results alone', async () => {
  const ignorePath = path.join(root, '.prettierignore');
  for (const file of [
    'native/agent/main.c',
    'README.md',
    'bench/results/latest.json',
    'dist/extension.js',
    'package.json',
  ]) {
    assert.equal((await prettier.getFileInfo(path.join(root, file), { ignorePath })).ignored, true, file);
  }
  for (const file of ['engine/index.ts', 'extension/extension.ts', 'test/unit/format.test.ts', 'esbuild.mjs']) {
    assert.equal((await prettier.getFileInfo(path.join(root, file), { ignorePath })).ignored, false, file);
  }
});
