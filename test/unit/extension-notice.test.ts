import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_NOTICE_CHARS,
  MAX_NOTICE_VALUE_CHARS,
  notice,
  noticeValue,
  plainLine,
} from '../../extension/ui/notice-text';
import { failureNotice } from '../../extension/ui/failure-notice';
import { progressText } from '../../extension/ui/plain-text';

/** What VS Code's notification renderer turns into a clickable link (its linkedText parser). */
const VSCODE_LINK = /\[([^\]]+)\]\(((?:https?:\/\/|command:|file:)[^)\s]+)(?: (["'])(.+?)(\3))?\)/i;

const HOSTILE = [
  '[x](command:workbench.action.terminal.sendSequence?%7B%22text%22%3A%22rm%20-rf%20~%5Cn%22%7D)',
  '[Show Log](command:workbench.action.quit)',
  '[docs](https://evil.example/)',
  '[f](file:///etc/passwd "title")',
  '<a href="command:workbench.action.quit">click</a>',
  '`code` and ```fenced```',
  '$(warning) $(loading~spin) icons',
  'line one\nline two\r\n[x](command:a)\u2028forged line',
  '\u202egnp.exe\u202c right-to-left override',
  `${'A'.repeat(5000)}[x](command:workbench.action.quit)`,
  'COMMAND:Workbench.action.quit and vscode://file/x and http://x',
];

function assertInert(text: string, source: string): void {
  assert.doesNotMatch(text, VSCODE_LINK, source);
  assert.doesNotMatch(text, /\]\(/, source);
  assert.doesNotMatch(text, /[a-z]:\/\/|command:|file:|vscode:/i, source);
  assert.doesNotMatch(text, /<a\b|[<>`[\]]|\$\(/i, source);
  assert.doesNotMatch(text, /[\n\r\u2028\u2029\u202a-\u202e]/, source);
}

test('hostile values in a notice lose every link, tag, backtick, icon, line break and bidi override', () => {
  for (const value of HOSTILE) {
    const text = notice`MicroVM: the guest said ${value}; see the MicroVM log.`;
    assertInert(text, JSON.stringify(value));
    assert.ok(text.length <= MAX_NOTICE_CHARS, `${text.length} chars`);
    assert.ok(text.startsWith('MicroVM: the guest said '));
    assert.ok(text.endsWith('; see the MicroVM log.'), text);
  }
});

test('a value keeps its words (brackets become look-alikes) and long ones are cut', () => {
  assert.equal(noticeValue('[x](command:quit)'), '\uff3bx\uff3d(command\u2236quit)');
  assert.equal(noticeValue('127.0.0.1:3000'), '127.0.0.1:3000');
  assert.equal(noticeValue(5432), '5432');
  assert.equal(noticeValue('A'.repeat(500)).length, MAX_NOTICE_VALUE_CHARS);
  assert.equal(plainLine(' a\n\tb\u202e ', 10), 'a b');
});

test('failure notices are fixed sentences with the code: the message never reaches the notification', () => {
  const exited = Object.assign(
    new Error('the VM exited unexpectedly\nlast guest console lines:\n[x](command:workbench.action.quit)'),
    { code: 'E_VM_EXITED' },
  );
  assert.equal(
    failureNotice(exited, 'exited'),
    'MicroVM: the VM stopped unexpectedly (E_VM_EXITED); see the MicroVM log.',
  );
  const config = Object.assign(new Error('.devcontainer.json: $["[x](command:a)"]: expected ...'), {
    name: 'DevcontainerError',
  });
  assert.equal(
    failureNotice(config, 'open'),
    "MicroVM: the folder's devcontainer.json cannot be used; see the MicroVM log.",
  );
  assert.match(
    failureNotice(Object.assign(new Error('x'), { code: 'E_SETUP_MISSING' }), 'open'),
    /run "npm run setup" \(E_SETUP_MISSING\)/,
  );
  assert.equal(
    failureNotice(new TypeError('[x](command:a)'), 'open'),
    'MicroVM: the VM could not start (TypeError); see the MicroVM log.',
  );
  assert.equal(
    failureNotice(Object.assign(new Error('x'), { code: '[x](command:a)' }), 'forward', 80),
    'MicroVM: cannot forward guest port 80 (\uff3bx\uff3d(command\u2236a)); see the MicroVM log.',
  );
  for (const context of ['open', 'exited', 'forward'] as const) assertInert(failureNotice(exited, context), context);
});

test('progress steps naming configuration text never form a link and keep ordinary text readable', () => {
  for (const hostile of HOSTILE) {
    const text = progressText(`Resolving feature ${hostile}`);
    assert.doesNotMatch(text, VSCODE_LINK, text);
    assert.doesNotMatch(text, /[\u0000-\u001f]/);
  }
  assert.equal(
    progressText('Pulling node:22-bookworm (package.json makes this a Node.js project)'),
    'Pulling node:22-bookworm (package.json makes this a Node.js project)',
  );
  assert.equal(progressText('x'.repeat(500)).length, 200);
});
