import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { homePaths } from '../../engine/paths';
import { enforceSuspendedBudget, suspendedBudgetMiB } from '../../engine/workspace/suspended-budget';
import { mismatch } from '../../engine/workspace/warm-snapshot';

/** Suspended states made by hand: a memory file of real (allocated) bytes, saved at a given time. */
let home: string;
const previous = process.env.MICROVM_HOME;

beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'mvh-budget-'));
  process.env.MICROVM_HOME = home;
});

afterEach(() => {
  fs.rmSync(homePaths.suspended(), { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
  if (previous === undefined) delete process.env.MICROVM_HOME;
  else process.env.MICROVM_HOME = previous;
});

function state(id: string, mib: number, savedSecondsAgo: number): string {
  const dir = path.join(homePaths.suspended(), id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'memory'), Buffer.alloc(mib * 1024 * 1024, 1));
  fs.writeFileSync(path.join(dir, 'state'), 'device state');
  const at = new Date(Date.now() - savedSecondsAgo * 1000);
  for (const name of ['memory', 'state']) fs.utimesSync(path.join(dir, name), at, at);
  return dir;
}

test('the oldest other suspended states are dropped until the rest fit; the one just made never is', () => {
  const oldest = state('aaa', 3, 300);
  const middle = state('bbb', 3, 200);
  const newest = state('ccc', 3, 100);
  const justMade = state('ddd', 3, 0);
  const dropped = enforceSuspendedBudget(7, 'ddd');
  assert.deepEqual(
    dropped.map((d) => d.workspaceId),
    ['aaa', 'bbb'],
    'two dropped: 12 MiB held, 7 allowed',
  );
  assert.deepEqual(dropped[0], { workspaceId: 'aaa', mib: 3 });
  for (const dir of [oldest, middle]) {
    assert.ok(!fs.existsSync(path.join(dir, 'memory')), 'its RAM file is gone');
    const why = mismatch({ key: 'k', savedAt: '', disks: [] }, 'k', [], dir);
    assert.match(why ?? '', /dropped to keep suspended workspace VMs within 7 MiB.*MICROVM_SUSPENDED_MAX_MIB/);
  }
  for (const dir of [newest, justMade]) assert.ok(fs.existsSync(path.join(dir, 'memory')));
  assert.deepEqual(enforceSuspendedBudget(7, 'ddd'), [], 'within the budget now: nothing more is dropped');
  assert.deepEqual(
    enforceSuspendedBudget(0, 'ddd').map((d) => d.workspaceId),
    ['ccc'],
    'budget 0 keeps only the latest',
  );
  assert.ok(fs.existsSync(path.join(justMade, 'memory')), 'even when it alone is over the budget');
});

test('the budget: MICROVM_SUSPENDED_MAX_MIB, else a quarter of the host RAM; a bad value is an error naming it', () => {
  assert.equal(suspendedBudgetMiB({ MICROVM_SUSPENDED_MAX_MIB: '2048' }), 2048);
  assert.equal(suspendedBudgetMiB({}), Math.floor(os.totalmem() / 1024 / 1024 / 4));
  for (const bad of ['-1', '1.5', 'lots'])
    assert.throws(
      () => suspendedBudgetMiB({ MICROVM_SUSPENDED_MAX_MIB: bad }),
      (err: Error & { code?: string }) =>
        err.code === 'E_BAD_OPTION' && err.message.includes(`MICROVM_SUSPENDED_MAX_MIB="${bad}"`),
    );
});
