import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ESLint, Linter } from 'eslint';

/**
 * The layering eslint.config.mjs holds, proved on in-memory files through ESLint's Node API:
 * extension/ imports only the engine's public entry, and the extension's pure files (the ones
 * test/unit imports) never import `vscode`; bench rows import only the public entry too, but for
 * the exceptions the config lists with a reason.
 */
const REPO = path.resolve(__dirname, '../..');
const eslint = new ESLint({ cwd: REPO });

async function restrictedImports(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(REPO, file) });
  assert.ok(result, `no lint result for ${file}`);
  const fatal = result.messages.filter((m) => m.fatal);
  assert.deepEqual(fatal, [], `${file} did not parse`);
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

test('extension/ importing an engine internal fails, at any depth and in any import form', async () => {
  const bad: Array<[string, string]> = [
    ['extension/commands.ts', "import { Image } from '../engine/image/image';\nvoid Image;\n"],
    [
      'extension/vm/open-folder.ts',
      "import type { AgentClient } from '../../engine/agent/client';\nexport type A = AgentClient;\n",
    ],
    ['extension/vm/open-folder.ts', "export { Session } from '../../engine/workspace/session';\n"],
    ['extension/vm/open-folder.ts', "import { openWorkspace } from '../../engine/workspace';\nvoid openWorkspace;\n"],
    ['extension/a/b/deep.ts', "import * as qemu from '../../../engine/qemu/argv';\nvoid qemu;\n"],
  ];
  for (const [file, code] of bad) {
    const messages = await restrictedImports(file, code);
    assert.equal(messages.length, 1, `${file}: ${code}`);
    assert.match(messages[0]!, /imports only the engine's public entry/);
  }
});

test("extension/ importing the engine's public entry passes", async () => {
  const good: Array<[string, string]> = [
    ['extension/commands.ts', "import { resetContainer } from '../engine/index';\nvoid resetContainer;\n"],
    [
      'extension/vm/open-folder.ts',
      "import { MicrovmError, type ErrorCode } from '../../engine';\nexport type E = ErrorCode;\nvoid MicrovmError;\n",
    ],
    [
      'extension/ports/notices.ts',
      "import type { ForwardedPort } from '../../engine/index.ts';\nexport type F = ForwardedPort;\n",
    ],
  ];
  for (const [file, code] of good) assert.deepEqual(await restrictedImports(file, code), [], `${file}: ${code}`);
});

test('a pure extension file importing vscode fails; a thin one may', async () => {
  for (const code of [
    "import * as vscode from 'vscode';\nvoid vscode;\n",
    "import type { Uri } from 'vscode';\nexport type U = Uri;\n",
  ]) {
    const messages = await restrictedImports('extension/ui/status.ts', code);
    assert.equal(messages.length, 1, code);
    assert.match(messages[0]!, /this extension file is pure/);
  }
  assert.deepEqual(
    await restrictedImports('extension/ui/status-bar.ts', "import * as vscode from 'vscode';\nvoid vscode;\n"),
    [],
  );
});

test('a pure extension file still may not reach engine internals, and may import the public entry', async () => {
  const internal = await restrictedImports(
    'extension/ports/rules.ts',
    "import { planForwards } from '../../engine/ports/plan';\nvoid planForwards;\n",
  );
  assert.equal(internal.length, 1);
  assert.match(internal[0]!, /imports only the engine's public entry/);
  assert.deepEqual(
    await restrictedImports(
      'extension/ports/rules.ts',
      "import { planForwards } from '../../engine/index';\nvoid planForwards;\n",
    ),
    [],
  );
});

test('every extension file the unit tests import is one of the pure files', async () => {
  const unit = path.join(REPO, 'test/unit');
  const imported = new Set(
    fs
      .readdirSync(unit)
      .flatMap((name) =>
        [...fs.readFileSync(path.join(unit, name), 'utf8').matchAll(/from '\.\.\/\.\.\/(extension\/[^']+)'/g)].map(
          (m) => `${m[1]}.ts`,
        ),
      ),
  );
  assert.ok(imported.size >= 5, `only ${imported.size} extension files found in the unit tests`);
  for (const file of imported) {
    const config = (await eslint.calculateConfigForFile(path.join(REPO, file))) as Linter.Config;
    const rule = JSON.stringify(config.rules?.['no-restricted-imports'] ?? []);
    assert.match(rule, /"name":"vscode"/, `${file} is imported by a unit test but is not in PURE_EXTENSION_FILES`);
  }
});

test('a bench row importing an engine internal fails, except the ones BENCH_ROW_EXCEPTIONS lists with a reason', async () => {
  const bad: Array<[string, string]> = [
    ['bench/rows/warm.ts', "import { homePaths } from '../../engine/paths';\nvoid homePaths;\n"],
    ['bench/rows/express.ts', "import type { Vm } from '../../engine/vm/vm';\nexport type V = Vm;\n"],
    ['bench/rows/compose.ts', "export { SERVICE_MEMORY_MIB } from '../../engine/workspace/services/service-vm';\n"],
    ['bench/rows/egress.ts', "import { EgressProxy } from '../../engine/egress/proxy-extra';\nvoid EgressProxy;\n"],
  ];
  for (const [file, code] of bad) {
    const messages = await restrictedImports(file, code);
    assert.equal(messages.length, 1, `${file}: ${code}`);
    assert.match(messages[0]!, /bench rows import only the engine's public entry/);
  }
  const good: Array<[string, string]> = [
    ['bench/rows/warm.ts', "import { Image, type VmOf } from '../../engine';\nexport type V = VmOf;\nvoid Image;\n"],
    ['bench/rows/egress.ts', "import { EgressProxy } from '../../engine/egress/proxy';\nvoid EgressProxy;\n"],
    ['bench/rows/memory.ts', "import { engineHome } from '../engine-home';\nvoid engineHome;\n"],
  ];
  for (const [file, code] of good) assert.deepEqual(await restrictedImports(file, code), [], `${file}: ${code}`);
  const configFile = path.join(REPO, 'eslint.config.mjs');
  const config = (await import(configFile)) as { BENCH_ROW_EXCEPTIONS: Record<string, string> };
  for (const [module, reason] of Object.entries(config.BENCH_ROW_EXCEPTIONS))
    assert.ok(reason.length > 20, `the exception ${module} says why`);
});
