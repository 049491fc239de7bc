// Bundles the three entry points into dist/ as CommonJS for Node 20 (and VS Code's host).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as esbuild from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  logLevel: 'warning',
  // jsonc-parser's "main" is a UMD build that requires its files at run time: bundle its ES module build instead.
  mainFields: ['module', 'main'],
};

await Promise.all([
  esbuild.build({ ...common, entryPoints: ['engine/index.ts'], outfile: 'dist/engine.js' }),
  esbuild.build({
    ...common,
    entryPoints: ['engine/cli/main.ts'],
    outfile: 'dist/cli.js',
    banner: { js: '#!/usr/bin/env node' },
  }),
  esbuild.build({
    ...common,
    entryPoints: ['extension/extension.ts'],
    outfile: 'dist/extension.js',
    external: ['vscode'],
  }),
]);

// @parcel/watcher (engine/watch/) is bundled except its prebuilt native binary, a package per
// platform (the one npm installed here), which its loader requires at run time: from
// dist/node_modules, so the packaged extension has it too (.vscodeignore keeps it).
const parcel = 'node_modules/@parcel';
for (const name of fs.readdirSync(parcel).filter((n) => n.startsWith('watcher-'))) {
  fs.cpSync(path.join(parcel, name), path.join('dist/node_modules/@parcel', name), { recursive: true });
}
