import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMicrovmError, MicrovmError, Pool, type PoolEvent, type Vm } from '../../engine';
import type { PoolSettings } from '../../engine/pool/pool';
import { FakeBackend } from '../helpers/fake-backend';

/** Pool logic through the backend seam: fake VMs, no QEMU, each test in milliseconds. */

const CONFIG = { env: [], entrypoint: [], cmd: [], workingDir: '', user: '' };
const SPEC = { rootDisk: '/nonexistent', memoryMib: 64, vcpus: 1 };

function fakePool(
  settings: Partial<PoolSettings> = {},
  backend = new FakeBackend(),
): { pool: Pool; backend: FakeBackend; events: PoolEvent[] } {
  const pool: Pool = new Pool(() => backend.boot(SPEC), CONFIG, {
    min: 0,
    max: 1,
    acquireTimeoutMs: 0,
    idleTimeoutMs: 0,
    restoreOnRelease: false,
    ...settings,
  });
  const events: PoolEvent[] = [];
  pool.onEvent((event) => events.push(event));
  return { pool, backend, events };
}

async function until(condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('waiting acquirers get VMs in the order they asked (FIFO), each as one is released', async () => {
  const { pool, backend } = fakePool({ max: 1 });
  const first = await pool.acquire();
  const order: string[] = [];
  const waiting = ['b', 'c', 'd'].map((name) =>
    pool.acquire().then((vm) => {
      order.push(name);
      return vm;
    }),
  );
  await until(() => pool.stats().waiting === 3, 'three acquirers wait');
  let vm: Vm = first;
  for (const next of waiting) {
    await vm.release();
    vm = await next;
  }
  assert.deepEqual(order, ['b', 'c', 'd']);
  assert.equal(backend.vms.length, 1, 'a healthy released VM is lent again, not replaced');
  assert.equal(backend.peakRunning, 1);
  await vm.release();
  await pool.shutdown();
  assert.equal(backend.running().length, 0);
});

test('a pool of max 1 hands a released VM to an acquire that was waiting for it', async () => {
  for (const restoreOnRelease of [false, true]) {
    const { pool, backend } = fakePool({ min: 1, max: 1, restoreOnRelease });
    const first = await pool.acquire();
    const second = pool.acquire();
    await until(() => pool.stats().waiting === 1, 'the second acquire waits');
    await first.release();
    const vm = await second;
    assert.equal(
      vm.id === first.id,
      !restoreOnRelease,
      `restoreOnRelease ${restoreOnRelease}: the waiter got ${vm.id}, the first was ${first.id}`,
    );
    assert.equal(backend.peakRunning, 1, 'never more than max VMs');
    await vm.release();
    await pool.shutdown();
  }
});

test('the pool boots min VMs at once, grows to max under demand and never past it', async () => {
  const backend = new FakeBackend();
  backend.bootDelayMs = 5;
  const { pool } = fakePool({ min: 2, max: 3 }, backend);
  await until(() => pool.stats().idle === 2, 'min VMs are idle');
  assert.equal(backend.vms.length, 2);
  const lent = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
  assert.equal(new Set(lent.map((vm) => vm.id)).size, 3);
  const fourth = pool.acquire();
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(backend.vms.length, 3, 'a fourth acquirer waits rather than boot past max');
  assert.deepEqual(
    { ...pool.stats(), idlePids: [] },
    { alive: 3, inUse: 3, idle: 0, booting: 0, waiting: 1, min: 2, max: 3, idlePids: [] },
  );
  await lent[0].release();
  const vm = await fourth;
  for (const other of [...lent.slice(1), vm]) await other.release();
  await until(() => pool.stats().idle === 3, 'released VMs are idle');
  assert.deepEqual(
    [...pool.stats().idlePids].sort(),
    backend
      .running()
      .map((v) => v.pid)
      .sort(),
    "stats() names the idle VMs' pids",
  );
  assert.equal(backend.peakRunning, 3);
  await pool.shutdown();
  assert.equal(backend.running().length, 0);
});

test('idle VMs past idleTimeoutMs are stopped down to min', async () => {
  const { pool, backend } = fakePool({ min: 1, max: 3, idleTimeoutMs: 60 });
  const lent = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
  for (const vm of lent) await vm.release();
  assert.equal(pool.stats().idle, 3);
  await until(() => pool.stats().idle === 1, 'idle VMs are evicted to min', 1000);
  assert.equal(backend.running().length, 1);
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(pool.stats().idle, 1, 'min VMs stay however long they idle');
  await pool.shutdown();
});

test('with restoreOnRelease a released VM is stopped and the next acquirer gets a fresh one', async () => {
  const { pool, backend } = fakePool({ min: 1, max: 2, restoreOnRelease: true });
  const first = await pool.acquire();
  await first.release();
  assert.equal(backend.vms[0]!.stops, 1, 'the released VM was stopped');
  const second = await pool.acquire();
  assert.notEqual(second.id, first.id);
  assert.equal(backend.running().length >= 1, true);
  await second.release();
  await pool.shutdown();
  assert.equal(backend.running().length, 0);
});

test('a released VM that fails its health check is stopped and replaced', async () => {
  const { pool, backend } = fakePool({ min: 1, max: 1 });
  const first = await pool.acquire();
  backend.vms[0]!.health = 'unresponsive';
  await first.release();
  assert.equal(backend.vms[0]!.alive, false);
  const second = await pool.acquire();
  assert.notEqual(second.id, first.id);
  await pool.shutdown();
});

test('a failed boot rejects the oldest waiter with its error and is reported; the next boot serves', async () => {
  const { pool, backend, events } = fakePool({ min: 0, max: 1 });
  backend.failBoots(1, new MicrovmError('E_BOOT_FAILED', 'the fake boot failed'));
  await assert.rejects(pool.acquire(), (err) => isMicrovmError(err, 'E_BOOT_FAILED'));
  assert.deepEqual(
    events.map((e) => e.type),
    ['boot-failed'],
  );
  const vm = await pool.acquire();
  assert.equal(vm.id, backend.vms[0]!.id);
  await pool.shutdown();
});

test('an idle VM that crashes is reported and replaced up to min', async () => {
  const { pool, backend, events } = fakePool({ min: 1, max: 1 });
  await until(() => pool.stats().idle === 1, 'one VM is idle');
  backend.vms[0]!.crash();
  await until(() => backend.running().length === 1 && pool.stats().idle === 1, 'a replacement is idle');
  assert.equal(events[0]?.type, 'vm-failed');
  assert.equal(events[0]?.type === 'vm-failed' && events[0].vmId, backend.vms[0]!.id);
  await pool.shutdown();
});

test('an acquire past acquireTimeoutMs fails with E_ACQUIRE_TIMEOUT and leaves the queue', async () => {
  const { pool } = fakePool({ max: 1, acquireTimeoutMs: 30 });
  const vm = await pool.acquire();
  await assert.rejects(pool.acquire(), (err) => isMicrovmError(err, 'E_ACQUIRE_TIMEOUT'));
  assert.equal(pool.stats().waiting, 0);
  await vm.release();
  await pool.shutdown();
});

test('shutdown while boots are under way leaves no VM running and rejects the waiters', async () => {
  const held = new FakeBackend();
  held.holdBoots();
  const { pool, backend } = fakePool({ min: 2, max: 2 }, held);
  const waiting = pool.acquire();
  await until(() => backend.heldBoots === 2, 'two boots are held');
  const shutdown = pool.shutdown();
  await assert.rejects(waiting, (err) => isMicrovmError(err, 'E_POOL_SHUTDOWN'));
  backend.resumeBoots();
  await shutdown;
  assert.equal(backend.vms.length, 2);
  assert.equal(backend.running().length, 0);
});

test('shutdown while a released VM is being checked waits for its stop', async () => {
  const { pool, backend } = fakePool({ min: 0, max: 1 });
  const vm = await pool.acquire();
  let answer: (verdict: 'healthy') => void = () => undefined;
  backend.vms[0]!.checkHealth = () =>
    new Promise((resolve) => {
      answer = resolve;
    });
  const released = vm.release();
  const shutdown = pool.shutdown();
  answer('healthy');
  await Promise.all([released, shutdown]);
  assert.equal(backend.running().length, 0);
});
