import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { isProcessAlive, isSameProcessAlive, thisProcess } from '../../engine/host/liveness';

test('this process runs; an exited child and nonsense pids do not', () => {
  assert.equal(isProcessAlive(process.pid), true);
  const exited = spawnSync('true');
  assert.equal(isProcessAlive(exited.pid as number), false);
  for (const pid of [0, -1, NaN, 1.5]) assert.equal(isProcessAlive(pid), false, String(pid));
});

test('a zombie (dead, not yet reaped) does not run', async () => {
  // The shell's background `true` exits, and its parent, now `sleep`, never reaps it.
  const parent = spawn('sh', ['-c', 'true & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const [line] = (await once(parent.stdout, 'data')) as [Buffer];
    const zombie = Number(line.toString().trim());
    await delay(200);
    assert.equal(isProcessAlive(zombie), false);
    assert.equal(isProcessAlive(parent.pid as number), true);
  } finally {
    parent.kill('SIGKILL');
  }
});

test('a recorded process is alive only with its own start time (a reused pid is not it)', () => {
  const me = thisProcess();
  assert.equal(isSameProcessAlive(me), true);
  assert.equal(isSameProcessAlive({ ...me, startTime: `${me.startTime}0` }), false);
  assert.equal(isSameProcessAlive({ pid: 'self' as unknown as number, startTime: me.startTime }), false);
});
