import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coalesced, SerialQueue } from '../../engine/workspace/serial-queue';

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('tasks run one at a time in order; a failure does not stop the next; closed refuses', async () => {
  const queue = new SerialQueue();
  const log: string[] = [];
  let running = 0;
  const task = (name: string, fail = false) =>
    queue.run(async () => {
      running++;
      assert.equal(running, 1, 'one at a time');
      log.push(`start ${name}`);
      await tick();
      log.push(`end ${name}`);
      running--;
      if (fail) throw new Error(name);
      return name;
    });
  const results = await Promise.allSettled([task('a'), task('b', true), task('c')]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  assert.deepEqual(log, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  queue.close();
  await assert.rejects(
    queue.run(async () => 'never'),
    /not running/,
  );
});

test('a burst of requests runs the task once while it waits, and once more if one comes while it runs', async () => {
  const queue = new SerialQueue();
  let runs = 0;
  let release: () => void = () => undefined;
  const request = coalesced(
    queue,
    async () => {
      runs++;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    },
    (err) => assert.fail(err),
  );
  for (let i = 0; i < 100; i++) request();
  await tick();
  assert.equal(runs, 1);
  for (let i = 0; i < 100; i++) request();
  release();
  await tick();
  await tick();
  assert.equal(runs, 2, 'requests that came while it ran: one more run');
  release();
  await queue.idle();
  assert.equal(runs, 2);
});
