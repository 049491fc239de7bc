import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Image, isMicrovmError, MicrovmError } from '../../engine';
import { isGone, liveProcessesMentioning, qemuPidOf } from './qemu-proc';

/**
 * T19, agent hang. The agent is the guest's PID 1, so it is wedged for real: with the host's
 * virtiofsd stopped (SIGSTOP), the agent's own read of a file on the share blocks in the
 * guest kernel, and nothing in the guest can answer the host any more.
 */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-hang-'));
let image: Image;

before(async () => {
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, 'before.txt'), 'ok');
  image = await Image.build({ network: 'none', mounts: [{ hostPath: dir, guestPath: '/workspace', protect: [] }] });
});

after(() => {
  for (const pid of virtiofsdPids()) process.kill(pid, 'SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The virtiofsd processes serving this test's folder (the parent and its sandbox child). */
function virtiofsdPids(): number[] {
  return liveProcessesMentioning(dir)
    .filter((p) => p.program === 'virtiofsd')
    .map((p) => p.pid);
}

function wedgeAgent(): number[] {
  const pids = virtiofsdPids();
  assert.ok(pids.length > 0, 'found virtiofsd');
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  return pids;
}

/** The longest stall of this event loop while it runs: what a UI on the same loop would feel. */
function watchLoopLag(): () => number {
  let worst = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 20);
    last = now;
  }, 20);
  return () => {
    clearInterval(timer);
    return worst;
  };
}

const settle = <T>(promise: Promise<T>) =>
  promise.then(
    (value) => ({ value, error: undefined, at: Date.now() }),
    (error: MicrovmError) => ({ value: undefined, error, at: Date.now() }),
  );

test('T19: a wedged agent fails the call at its deadline; the health check stops the VM (E_AGENT_UNRESPONSIVE) and the pool replaces it', async () => {
  const pool = image.pool({ min: 1, max: 1 });
  try {
    const vm = await pool.acquire();
    assert.equal((await vm.readFile('/workspace/before.txt')).toString(), 'ok');
    const qemuPid = qemuPidOf(vm.id);
    const exited = new Promise<{ error: MicrovmError; at: number }>((resolve) =>
      vm.onExit((error) => resolve({ error, at: Date.now() })),
    );
    fs.writeFileSync(path.join(dir, 'wedge.txt'), 'never read');
    const lag = watchLoopLag();
    const daemons = wedgeAgent();
    const wedgedAt = Date.now();
    const read = settle(vm.readFile('/workspace/wedge.txt', { timeoutMs: 3000 }));
    // Queued behind the wedge with its own far deadline: the health check ends it.
    const queued = settle(vm.exec({ argv: ['true'] }));

    const timedOut = await read;
    assert.ok(isMicrovmError(timedOut.error, 'E_AGENT_TIMEOUT'), `readFile: ${timedOut.error?.message}`);
    const timeoutMs = timedOut.at - wedgedAt;
    assert.ok(timeoutMs >= 3000 && timeoutMs < 4000, `E_AGENT_TIMEOUT after ${timeoutMs} ms`);

    const failed = await queued;
    assert.ok(isMicrovmError(failed.error, 'E_AGENT_UNRESPONSIVE'), `queued exec: ${failed.error?.message}`);
    const unhealthyMs = failed.at - wedgedAt;
    assert.ok(unhealthyMs < 3000 + 3000 + 1500, `marked unresponsive ${unhealthyMs} ms after the wedge`);

    const exit = await exited;
    assert.ok(isMicrovmError(exit.error, 'E_AGENT_UNRESPONSIVE'), exit.error.message);
    assert.match(exit.error.message, /QMP quit, then SIGKILL/);
    assert.ok(isGone(qemuPid), 'QEMU is gone');
    assert.ok(daemons.every(isGone), 'the stopped virtiofsd is gone');
    await assert.rejects(vm.readFile('/workspace/before.txt'), (err) => isMicrovmError(err, 'E_AGENT_UNRESPONSIVE'));
    await vm.release();

    const next = await pool.acquire();
    const replacedAt = Date.now();
    assert.notEqual(next.id, vm.id);
    assert.equal((await next.readFile('/workspace/before.txt')).toString(), 'ok');
    await next.release();
    const worstLag = lag();
    console.log(
      `wedge -> E_AGENT_TIMEOUT ${timeoutMs} ms, -> E_AGENT_UNRESPONSIVE ${unhealthyMs} ms, -> QEMU gone (onExit) ${exit.at - wedgedAt} ms, -> replacement acquired ${replacedAt - wedgedAt} ms; worst event-loop stall ${worstLag.toFixed(0)} ms`,
    );
    assert.ok(worstLag < 250, `the event loop stalled ${worstLag} ms`);
  } finally {
    await pool.shutdown();
  }
});

test('T19: the pool health-checks a VM handed back; a healthy one is lent again, a wedged one is stopped and replaced', async () => {
  const pool = image.pool({ min: 1, max: 1, restoreOnRelease: false });
  try {
    const vm = await pool.acquire();
    const id = vm.id;
    await vm.release();
    const again = await pool.acquire();
    assert.equal(again.id, id, 'a healthy VM is lent again');

    fs.writeFileSync(path.join(dir, 'wedge2.txt'), 'never read');
    wedgeAgent();
    // A deadline far away: only the pool's check on release can notice the hang.
    const read = settle(again.readFile('/workspace/wedge2.txt', { timeoutMs: 600_000 }));
    await delay(200);
    const releasedAt = Date.now();
    await again.release();
    const releaseMs = Date.now() - releasedAt;
    const failed = await read;
    assert.ok(isMicrovmError(failed.error, 'E_AGENT_UNRESPONSIVE'), `the pending read: ${failed.error?.message}`);
    assert.ok(releaseMs < 3000 + 2000 + 1500, `release with the health check took ${releaseMs} ms`);

    const next = await pool.acquire();
    assert.notEqual(next.id, id, 'the wedged VM is not lent again');
    assert.equal((await next.exec({ argv: ['echo', 'fresh'] })).stdout, 'fresh\n');
    console.log(`release of a wedged VM (health check + stop) ${releaseMs} ms`);
    await next.release();
  } finally {
    await pool.shutdown();
  }
});
