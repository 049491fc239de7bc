import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * One message style for every MicrovmError the code raises: lower case (a name such as QEMU,
 * MICROVM_HOME or a quoted value may start it), no trailing period, one sentence whose parts
 * are joined by ";" or ":", so that messages read the same when the CLI prints
 * `microvm: error [CODE]: message` and when they are joined into longer ones. Checked on the
 * source: every `new MicrovmError('E_...', <literal> + <literal> ...)`.
 */
const ROOTS = ['engine', 'extension'].map((d) => path.resolve(__dirname, '../..', d));
const LITERAL = String.raw`\`(?:[^\`\\]|\\.)*\`|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"`;
const RAISE = new RegExp(
  String.raw`new MicrovmError\(\s*'(E_[A-Z_]+)',\s*((?:${LITERAL})(?:\s*\+\s*(?:${LITERAL}))*)`,
  'g',
);

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

test('every MicrovmError message starts in lower case and has no trailing period', () => {
  const offenders: string[] = [];
  let seen = 0;
  for (const file of ROOTS.flatMap(sources)) {
    const text = fs.readFileSync(file, 'utf8');
    for (const match of text.matchAll(RAISE)) {
      seen++;
      const parts = [...match[2]!.matchAll(new RegExp(LITERAL, 'g'))].map((m) => m[0].slice(1, -1));
      const message = parts.join('');
      const where = `${path.relative(process.cwd(), file)}:${text.slice(0, match.index).split('\n').length}`;
      if (/^[A-Z][a-z]/.test(message)) offenders.push(`${where}: starts with a capital: ${message.slice(0, 60)}`);
      if (/\.\s*$/.test(message)) offenders.push(`${where}: ends with a period: ...${message.slice(-40)}`);
      // Only the text around interpolations: a ${...} may hold anything.
      const sentences = parts.map((p) => p.replace(/\$\{[^}]*\}/g, 'X')).join('');
      if (/\. [A-Z][a-z]/.test(sentences))
        offenders.push(`${where}: a second sentence (join it with ";"): ${message.slice(0, 60)}`);
      for (const [i, part] of parts.slice(1).entries()) {
        if (/^[A-Z][a-z]/.test(part) && !/[\s;:(]$/.test(parts[i] ?? ''))
          offenders.push(
            `${where}: "${(parts[i] ?? '').slice(-20)}" + "${part.slice(0, 20)}" joined without a separator`,
          );
      }
    }
  }
  assert.ok(seen > 200, `the scan found only ${seen} messages: the pattern no longer matches the code`);
  assert.deepEqual(offenders, []);
});
