import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { homePaths } from '../../engine/paths';
import {
  enforceSuspendedBudget,
  orphanedSuspendedDirs,
  suspendedBudgetMiB,
} from '../../engine/workspace/suspended-budget';
import { mismatch } from '../../engine/workspace/warm-snapshot';

/** Suspended states made by hand: a memory file of real (allocated) bytes, saved at a given time. */
let home: string;
const previous = { home: process.env.MICROVM_HOME, run: process.env.MICROVM_RUN_DIR };

beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'mvh-budget-'));
  process.env.MICROVM_HOME = home;
  // A run dir of its own: the budget counts every suspended VM of this user on /dev/shm, and
  // this test must neither count nor drop real ones.
  process.env.MICROVM_RUN_DIR = path.join(home, 'run');
});

afterEach(() => {
  fs.rmSync(home, { recursive: true, force: true });
  for (const [name, value] of [
    ['MICROVM_HOME', previous.home],
    ['MICROVM_RUN_DIR', previous.run],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
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

test('suspended VMs of a MICROVM_HOME that no longer exists are removed at the next suspend, whatever the budget', () => {
  const orphan = state('eee', 1, 50);
  fs.writeFileSync(path.join(homePaths.suspended(), 'home'), path.join(home, 'deleted-home'));
  assert.deepEqual(orphanedSuspendedDirs(), [homePaths.suspended()]);
  assert.deepEqual(enforceSuspendedBudget(1024, 'fff'), [{ workspaceId: 'eee', mib: 1 }]);
  assert.ok(!fs.existsSync(orphan));
  state('ggg', 1, 0);
  fs.writeFileSync(path.join(homePaths.suspended(), 'home'), home);
  assert.deepEqual(orphanedSuspendedDirs(), [], 'a home that exists keeps its suspended VMs');
});

test('a state being resumed (taken) is never dropped; a home named by a relative path is not taken for gone', () => {
  const taken = state('hhh', 2, 500);
  fs.writeFileSync(path.join(taken, 'taken'), '');
  state('iii', 2, 0);
  assert.deepEqual(enforceSuspendedBudget(0, 'iii'), [], 'the only other state is being resumed');
  assert.ok(fs.existsSync(path.join(taken, 'memory')));
  fs.writeFileSync(path.join(homePaths.suspended(), 'home'), 'relative/home');
  assert.deepEqual(orphanedSuspendedDirs(), []);
});
