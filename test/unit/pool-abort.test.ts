import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMicrovmError, MicrovmError } from '../../engine/errors';
import { Pool } from '../../engine/pool/pool';
import type { BackendVm } from '../../engine/backend/types';

/** Just what the pool uses of a Machine: no QEMU, no agent. */
class FakeMachine {
  alive = true;
  stopped = false;
  readonly id = `fake-${Math.random().toString(36).slice(2)}`;
  onExit(): () => void {
    return () => undefined;
  }
  async stop(): Promise<void> {
    this.alive = false;
    this.stopped = true;
  }
  async checkHealth(): Promise<'healthy'> {
    return 'healthy';
  }
}

/** A pool whose boots wait until the test lets them finish. */
function controlledPool(settings: Partial<ConstructorParameters<typeof Pool>[2]> = {}) {
  const boots: Array<(machine: FakeMachine) => void> = [];
  const pool = new Pool(
    () => new Promise<BackendVm>((resolve) => boots.push((m) => resolve(m as unknown as BackendVm))),
    { env: [], entrypoint: [], cmd: [], workingDir: '', user: '' } as never,
    { min: 0, max: 1, acquireTimeoutMs: 0, idleTimeoutMs: 0, restoreOnRelease: false, ...settings },
  );
  return { pool, boots };
}

const aborted = (err: unknown) =>
  isMicrovmError(err, 'E_ABORTED') && err.name === 'AbortError' && /pool\.acquire/.test(err.message);

test('an aborted acquire stops waiting with E_ABORTED; the VM booted for it stays in the pool for the next', async () => {
  const { pool, boots } = controlledPool();
  const controller = new AbortController();
  const waiting = pool.acquire({ signal: controller.signal });
  assert.equal(boots.length, 1, 'the acquire started a boot');
  assert.equal(pool.stats().waiting, 1);
  controller.abort(new Error('user cancelled'));
  await assert.rejects(waiting, (err) => aborted(err) && (err as MicrovmError).cause instanceof Error);
  assert.equal(pool.stats().waiting, 0);

  const machine = new FakeMachine();
  boots[0]!(machine);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(pool.stats(), { alive: 1, inUse: 0, idle: 1, booting: 0, waiting: 0, min: 0, max: 1, idlePids: [] });
  const vm = await pool.acquire();
  assert.equal(vm.id, machine.id, 'the next acquire takes it at once');
  assert.equal(boots.length, 1, 'nothing else booted');
  await vm.release();
  await pool.shutdown();
  assert.ok(machine.stopped, 'shutdown stops it: nothing leaks');
});

test('an already aborted signal fails at once and boots nothing; a later abort does not touch a lent VM', async () => {
  const { pool, boots } = controlledPool();
  await assert.rejects(pool.acquire({ signal: AbortSignal.abort() }), aborted);
  assert.equal(boots.length, 0);

  const controller = new AbortController();
  const acquiring = pool.acquire({ signal: controller.signal });
  boots[0]!(new FakeMachine());
  const vm = await acquiring;
  controller.abort();
  assert.equal(pool.stats().inUse, 1, 'an abort after the acquire resolved changes nothing');
  await vm.release();
  await pool.shutdown();
});

test('the signal fired as the VM was handed over: the VM goes back to the pool', async () => {
  const { pool, boots } = controlledPool();
  const controller = new AbortController();
  const acquiring = pool.acquire({ signal: controller.signal });
  const machine = new FakeMachine();
  // The pool subscribes to onExit just before it hands the machine to the waiter; the abort
  // queued here runs after that hand-over and before acquire() goes on.
  machine.onExit = () => {
    queueMicrotask(() => controller.abort());
    return () => undefined;
  };
  boots[0]!(machine);
  await assert.rejects(acquiring, aborted);
  assert.deepEqual(
    pool.stats(),
    { alive: 1, inUse: 0, idle: 1, booting: 0, waiting: 0, min: 0, max: 1, idlePids: [] },
    'the VM is idle again, not lost',
  );
  await pool.shutdown();
  assert.ok(machine.stopped);
});

test('waiters behind an aborted one are still served in order, and a bad option is refused', async () => {
  const { pool, boots } = controlledPool({ max: 1 });
  const first = new AbortController();
  const a = pool.acquire({ signal: first.signal });
  const b = pool.acquire();
  first.abort();
  await assert.rejects(a, aborted);
  boots[0]!(new FakeMachine());
  const vm = await b;
  assert.equal(pool.stats().inUse, 1);
  await vm.release();
  await assert.rejects(
    pool.acquire({ signal: 'stop' as never }),
    (err) => isMicrovmError(err, 'E_BAD_OPTION') && /signal/.test(err.message),
  );
  await pool.shutdown();
});
