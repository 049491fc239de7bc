import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backlog } from '../../engine/supervisor/backlog';
import { RingBuffer } from '../../engine/supervisor/ring-buffer';
import { parseWorkspaceFlags } from '../../engine/cli/workspace-args';
import { supervisorFiles } from '../../engine/supervisor/paths';

test('a ring buffer keeps the most recent bytes, in order, and counts what it dropped', () => {
  const ring = new RingBuffer(10);
  ring.push(Buffer.from('abcd'));
  ring.push(Buffer.from('efgh'));
  assert.equal(ring.contents().toString(), 'abcdefgh');
  ring.push(Buffer.from('ijkl'));
  assert.equal(ring.contents().toString(), 'cdefghijkl');
  assert.equal(ring.dropped, 2);
  ring.push(Buffer.from('0123456789XYZ'));
  assert.equal(ring.contents().toString(), '3456789XYZ', 'a chunk larger than the ring keeps its end');
  assert.equal(ring.length, 10);
  assert.equal(ring.dropped, 15);
});

test('a ring buffer copies what it keeps (the caller may reuse its buffer)', () => {
  const ring = new RingBuffer(8);
  const chunk = Buffer.from('abc');
  ring.push(chunk);
  chunk.write('xyz');
  assert.equal(ring.contents().toString(), 'abc');
});

test('a backlog keeps the last events within its count and size bounds', () => {
  const backlog = new Backlog<string>(3, 10, (s) => s.length);
  for (const item of ['a', 'b', 'c', 'd']) backlog.push(item);
  assert.deepEqual(backlog.list(), ['b', 'c', 'd']);
  backlog.push('0123456789');
  assert.deepEqual(backlog.list(), ['0123456789'], 'the size bound drops older events, never the newest');
  backlog.push('x'.repeat(50));
  assert.deepEqual(backlog.list(), ['x'.repeat(50)]);
});

test('exec takes its command without --, as the reference CLI; up takes an idle time in minutes', () => {
  const folder = process.cwd();
  assert.deepEqual(
    parseWorkspaceFlags(['--workspace-folder', folder, 'ls', '-la'], 'exec', { argv: true, bareArgv: true }).argv,
    ['ls', '-la'],
  );
  assert.deepEqual(
    parseWorkspaceFlags(['--workspace-folder', folder, '--', '--weird'], 'exec', { argv: true, bareArgv: true }).argv,
    ['--weird'],
  );
  assert.equal(
    parseWorkspaceFlags(['--workspace-folder', folder, '--idle-stop-minutes', '0.05'], 'up', { idle: true })
      .idleStopMinutes,
    0.05,
  );
  assert.throws(
    () => parseWorkspaceFlags(['--idle-stop-minutes', '-1'], 'up', { idle: true }),
    /invalid --idle-stop-minutes value "-1"/,
  );
  assert.throws(() => parseWorkspaceFlags(['--force'], 'down', {}), /unknown option "--force"/);
  assert.equal(parseWorkspaceFlags(['--force'], 'rm', { force: true }).force, true);
});

test('supervisor files: one socket, pid and log per workspace id; the start lock is an abstract name', () => {
  const files = supervisorFiles('0123456789abcdef');
  assert.match(files.socket, /supervisors\/0123456789abcdef\.sock$/);
  assert.ok(files.lockName.startsWith('\0microvm-supervisor-'));
  assert.throws(() => supervisorFiles('../x'), /not a workspace id/);
});
