import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commLabel } from '../../engine/egress/attribution';
import { describeLearnedProcesses, EgressLogLine, LearnedName, learnedNames } from '../../engine/workspace/egress-log';
import { HOSTILE_COMMS } from '../helpers/hostile-names';

let clock = 0;
function line(name: string, comm?: string, extra: Partial<EgressLogLine> = {}): EgressLogLine {
  return {
    at: new Date(Date.UTC(2026, 0, 1) + 1000 * clock++).toISOString(),
    name,
    port: 443,
    allowed: true,
    bytesUp: 1,
    bytesDown: 1,
    mode: 'learn',
    ...(comm === undefined ? {} : { process: { pid: 100 + clock, comm } }),
    ...extra,
  };
}

test('learned names group by host, each with its processes by connection count, most first', () => {
  const lines = [
    ...Array.from({ length: 11 }, () => line('registry.npmjs.org', 'npm')),
    line('registry.npmjs.org', 'node'),
    line('beacon.example', 'node'),
    line('beacon.example'),
    line('refused.example', 'curl', { allowed: false, reason: 'not in the allowlist' }),
    line('allowlist.example', 'curl', { mode: 'allowlist' }),
  ];
  const learned = learnedNames(lines);
  assert.deepEqual(
    learned.map((l) => [l.name, l.count, l.processes]),
    [
      [
        'registry.npmjs.org',
        12,
        [
          { comm: 'npm', connections: 11 },
          { comm: 'node', connections: 1 },
        ],
      ],
      ['beacon.example', 2, [{ comm: 'node', connections: 1 }]],
    ],
  );
  assert.equal(learned[0]?.last, lines[11]?.at, 'the last connection to the host');
  assert.equal(describeLearnedProcesses(learned[0]!), 'npm (11 connections), node (1 connection)');
  assert.equal(
    describeLearnedProcesses(learned[1]!),
    'node (1 connection), 1 connection by other or unnamed processes',
  );
  assert.equal(describeLearnedProcesses({ name: 'x', count: 3, last: '', processes: [] }), '');
});

test('a host keeps its eight busiest process names; the rest count as other processes', () => {
  const lines = Array.from({ length: 20 }, (_, i) =>
    Array.from({ length: i + 1 }, () => line('a.test', `p${i}`)),
  ).flat();
  const [learned] = learnedNames(lines);
  assert.equal(learned?.count, 210);
  assert.deepEqual(
    learned?.processes.map((p) => p.comm),
    ['p19', 'p18', 'p17', 'p16', 'p15', 'p14', 'p13', 'p12'],
  );
  assert.match(describeLearnedProcesses(learned!), /, 78 connections by other or unnamed processes$/);
});

test('commLabel: a hostile process name becomes one short line of printable ASCII, quoted', () => {
  for (const comm of HOSTILE_COMMS) {
    const label = commLabel(comm);
    assert.match(label, /^"[\x20-\x7e]*"$/, JSON.stringify(comm.slice(0, 60)));
    assert.ok(label.length <= 2 + 32 * 6, `${label.length} chars`);
  }
  assert.equal(commLabel('gnp\u202e.exe'), '"gnp\\u202e.exe"');
  assert.equal(commLabel('npm'), 'npm');
});

test('the grouping keeps a hostile name as data (bounded by the log), for the caller to escape', () => {
  const learned: LearnedName[] = learnedNames(HOSTILE_COMMS.map((comm) => line('a.test', comm)));
  assert.equal(learned[0]?.processes.length, HOSTILE_COMMS.length);
  const described = describeLearnedProcesses(learned[0]!);
  assert.doesNotMatch(described, /[^\x20-\x7e]/);
});
