import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * The engine as a package a program depends on: `microvm-sandbox/engine` resolves through the
 * package's `exports` map to dist/engine.js at run time and to the declarations in dist/types
 * for TypeScript (`npm run build` makes both; `npm test` builds first). A consumer project
 * outside the repository, with the package linked into its node_modules, type-checks code
 * that uses the public API and runs it.
 */
const repo = path.resolve(__dirname, '../..');
const built =
  fs.existsSync(path.join(repo, 'dist/engine.js')) && fs.existsSync(path.join(repo, 'dist/types/engine/index.d.ts'));

test(
  'a consumer imports microvm-sandbox/engine: typed by dist/types, run from dist/engine.js',
  { skip: built ? false : 'run `npm run build` first' },
  () => {
    const consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-consumer-'));
    try {
      fs.mkdirSync(path.join(consumer, 'node_modules'));
      fs.symlinkSync(repo, path.join(consumer, 'node_modules', 'microvm-sandbox'));
      fs.symlinkSync(path.join(repo, 'node_modules', '@types'), path.join(consumer, 'node_modules', '@types'));
      fs.writeFileSync(
        path.join(consumer, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'node16',
            moduleResolution: 'node16',
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            types: ['node'],
            lib: ['ES2022', 'ESNext.Disposable'],
          },
          files: ['use.ts'],
        }),
      );
      fs.writeFileSync(
        path.join(consumer, 'use.ts'),
        [
          "import { Image, MicrovmError, isMicrovmError, type ExecOptions } from 'microvm-sandbox/engine';",
          "const options: ExecOptions = { argv: ['uname', '-a'], stageFiles: { '/tmp/x': 'y' } };",
          'export async function run(): Promise<string> {',
          '  const image = await Image.build({ memoryMib: 256 });',
          '  const pool = image.pool({ min: 0, max: 1 });',
          '  const vm = await pool.acquire();',
          '  try { return String((await vm.exec(options)).stdout); } finally { await vm.release(); await pool.shutdown(); }',
          '}',
          "export const checked: boolean = isMicrovmError(new MicrovmError('E_BAD_OPTION', 'x'), 'E_BAD_OPTION');",
          '// @ts-expect-error: an unknown error code is a type error',
          "export const wrong = new MicrovmError('E_NOT_A_CODE', 'x');",
        ].join('\n'),
      );
      execFileSync(process.execPath, [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', consumer], {
        stdio: 'pipe',
      });
      const exported = execFileSync(
        process.execPath,
        [
          '-e',
          "const e = require('microvm-sandbox/engine'); console.log(typeof e.Image.build, typeof e.MicrovmError, require.resolve('microvm-sandbox/engine'))",
        ],
        { cwd: consumer, encoding: 'utf8' },
      )
        .trim()
        .split(' ');
      assert.deepEqual(exported.slice(0, 2), ['function', 'function']);
      assert.equal(fs.realpathSync(exported[2] ?? ''), path.join(repo, 'dist/engine.js'));
    } finally {
      fs.rmSync(consumer, { recursive: true, force: true });
    }
  },
);
