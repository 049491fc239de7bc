import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** scripts/check-include-cycles.mjs, which `npm test` runs on native/ beside madge, on small C trees. */
const SCRIPT = path.resolve(__dirname, '../../scripts/check-include-cycles.mjs');

function tree(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'include-cycles-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), text);
  }
  return root;
}

function check(root: string): { status: number | null; stderr: string } {
  try {
    const run = spawnSync(process.execPath, [SCRIPT, root], { encoding: 'utf8' });
    return { status: run.status, stderr: run.stderr };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

test('a tree whose headers include each other fails and names the cycle', () => {
  const result = check(
    tree({
      'agent/main.c': '#include "agent.h"\nint main(void) { return 0; }\n',
      'agent/agent.h': '#include <stdint.h>\n#include "streams.h"\n',
      'agent/streams.h': '#include "process.h"\n',
      'agent/process.h': '#include "agent.h"\n',
    }),
  );
  assert.equal(result.status, 1);
  assert.match(
    result.stderr,
    /include cycle: agent\/agent\.h -> agent\/streams\.h -> agent\/process\.h -> agent\/agent\.h/,
  );
});

test('a header that includes itself, or one in another folder through .., is a cycle', () => {
  assert.equal(check(tree({ 'a.h': '#include "a.h"\n' })).status, 1);
  const across = check(
    tree({ 'agent/agent.h': '#include "../shared/wire.h"\n', 'shared/wire.h': '#include "../agent/agent.h"\n' }),
  );
  assert.equal(across.status, 1);
  assert.match(across.stderr, /agent\/agent\.h -> shared\/wire\.h -> agent\/agent\.h/);
});

test('a tree without cycles passes: shared headers, system headers and commented-out includes are no cycle', () => {
  const result = check(
    tree({
      'agent/main.c': '#include "agent.h"\n#include "process.h"\n',
      'agent/exec.c': '#include "process.h"\n',
      'agent/process.h': '#include "agent.h"\n',
      'agent/agent.h':
        '#include <agent.h>\n#include "protocol.h"\n/* #include "process.h" */\n// #include "process.h"\n',
      'agent/protocol.h': '#define MAX_STREAMS 128\n',
    }),
  );
  assert.equal(result.status, 0, result.stderr);
});

test('native/ has no #include cycle', () => {
  assert.match(execFileSync(process.execPath, [SCRIPT], { encoding: 'utf8' }), /^no #include cycle among \d+ C files/);
});
