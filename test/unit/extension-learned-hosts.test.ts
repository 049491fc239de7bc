import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EgressLogLine, learnedNames } from '../../engine/index';
import { MAX_NOTICE_VALUE_CHARS } from '../../extension/ui/notice-text';
import { GUEST_REPORT_NOTE, learnedHostItems, learnedHostLine } from '../../extension/vm/learned-hosts';
import { HOSTILE_COMMS } from '../helpers/hostile-names';

function line(name: string, comm?: string): EgressLogLine {
  return {
    at: '2026-01-01T00:00:00.000Z',
    name,
    port: 443,
    allowed: true,
    bytesUp: 1,
    bytesDown: 1,
    mode: 'learn',
    ...(comm === undefined ? {} : { process: { pid: 7, comm } }),
  };
}

test('the approval list names, per host, the guest processes that reached it, as the guest reports them', () => {
  const learned = learnedNames([
    ...Array.from({ length: 12 }, () => line('registry.npmjs.org', 'npm')),
    line('beacon.example', 'node'),
    line('quiet.example'),
  ]);
  const items = learnedHostItems(learned);
  assert.deepEqual(items[0], {
    name: 'registry.npmjs.org',
    label: 'registry.npmjs.org',
    description: '12 connections',
    detail: `by npm (12 connections) (${GUEST_REPORT_NOTE})`,
  });
  assert.equal(items[1]?.detail, `by node (1 connection) (${GUEST_REPORT_NOTE})`);
  assert.equal(items[1]?.description, '1 connection');
  assert.equal(items[2]?.detail, 'no process named (the guest did not say)');
  assert.equal(
    learnedHostLine(items[0]!),
    `registry.npmjs.org \u2014 12 connections, by npm (12 connections) (${GUEST_REPORT_NOTE})`,
  );
});

/** What VS Code turns into a link (notifications) or an icon (QuickPick items), or a terminal into colour or a line. */
function assertInert(text: string, source: string): void {
  assert.doesNotMatch(text, /\]\(|command:|[a-z]:\/\//i, source);
  assert.doesNotMatch(text, /[<>`[\]]|\$\(|<a\b/i, source);
  assert.doesNotMatch(text, /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/, source);
}

test('hostile process names in the approval list are one plain line each: no link, icon, markup, escape, bidi or break; cut', () => {
  const learned = learnedNames(HOSTILE_COMMS.map((comm) => line('a.test', comm)));
  const [item] = learnedHostItems(learned);
  assert.ok(item);
  for (const text of [item.label, item.description, item.detail, learnedHostLine(item)])
    assertInert(text, JSON.stringify(text.slice(0, 80)));
  assert.ok(item.detail.endsWith(`(${GUEST_REPORT_NOTE})`), 'marked as the guest report');
  assert.ok(
    item.detail.length <= HOSTILE_COMMS.length * (MAX_NOTICE_VALUE_CHARS + 20) + 100,
    `${item.detail.length} chars`,
  );
  assert.ok(item.detail.includes(`"${'x'.repeat(32)}" (1 connection)`), 'the 10 KB name is cut, in quotes');
  assert.ok(
    item.detail.includes('"npm\\ninstalled ok\\r\\nregistry.npmjs" (1 connection)'),
    'a forged line stays one quoted name',
  );
  assert.ok(item.detail.includes('"gnp\\u202e.exe\\u202c"'), 'the bidi override is shown escaped');
});

test('a hostile host name (from a tampered log) is escaped the same way; the approval keeps the name as learned', () => {
  const name = '[x](command:workbench.action.quit)\u202e\nevil';
  const [item] = learnedHostItems(learnedNames([line(name, 'npm')]));
  assert.equal(item?.name, name);
  assertInert(item?.label ?? '', 'label');
});
