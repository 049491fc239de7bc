// Bundles the three entry points into dist/ as CommonJS for Node 20 (and VS Code's host).
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
  // @parcel/watcher loads a prebuilt native binary per platform: required from node_modules at run time.
  external: ['@parcel/watcher'],
};

await Promise.all([
  esbuild.build({ ...common, entryPoints: ['engine/index.ts'], outfile: 'dist/engine.js' }),
  esbuild.build({ ...common, entryPoints: ['engine/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } }),
  esbuild.build({ ...common, entryPoints: ['extension/extension.ts'], outfile: 'dist/extension.js', external: ['vscode', ...common.external] }),
]);
