import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Image, Pool, isMicrovmError } from '../../engine';
import { homePaths } from '../../engine/paths';
import { qemuPidOf } from './qemu-proc';
import { qemuUser } from '../../engine/qemu/run-as';

/** Hostile guests and dying VMs: the host keeps working, bounded, and says what happened. */
let image: Image;
let pool: Pool;

before(async () => {
  image = await Image.build({});
  pool = image.pool({ min: 1, max: 1 });
});

after(async () => {
  await pool?.shutdown();
});

test('QEMU runs hardened: not as root, seccomp filter, no new privileges, no defaults, raw drives, private state dir and sockets', async () => {
  const vm = await pool.acquire();
  try {
    const pid = qemuPidOf(vm.id);
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    assert.match(status, /^Seccomp:\s+2$/m);
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    const uids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(status)?.slice(1).map(Number);
    const expectedUser = qemuUser();
    if (process.geteuid?.() === 0) assert.ok(expectedUser, 'setup creates the microvm user for a root engine');
    assert.deepEqual(
      uids,
      Array(4).fill(expectedUser?.uid ?? process.geteuid?.()),
      'real, effective, saved and fs uid all dropped',
    );
    if (expectedUser)
      assert.match(
        status,
        new RegExp(`^Groups:\\s+${expectedUser.gid}\\s*$`, 'm'),
        'no supplementary groups but its own',
      );
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    for (const flag of ['-nodefaults', '-no-user-config']) assert.ok(argv.includes(flag), flag);
    for (const [i, arg] of argv.entries()) if (arg === '-drive') assert.match(argv[i + 1]!, /format=raw/);
    assert.ok(!argv.some((a) => /^(tcp|telnet):/.test(a) || a === '-monitor' || a === '-vnc'));
    const dir = path.join(homePaths.runDir(), vm.id);
    for (const d of [dir, homePaths.runDir()]) {
      const stat = fs.statSync(d);
      assert.equal(stat.uid, process.geteuid?.());
      assert.equal(stat.mode & 0o777, expectedUser ? 0o710 : 0o700, `${d}: QEMU's group may only pass through`);
      if (expectedUser) assert.equal(stat.gid, expectedUser.gid);
    }
    for (const name of ['agent.sock', 'qmp.sock', 'owner.json', 'memory']) {
      const mode = fs.statSync(path.join(dir, name), { throwIfNoEntry: false })?.mode;
      if (mode !== undefined) assert.equal(mode & 0o077, 0, `${name} is private`);
    }
  } finally {
    await vm.release();
  }
});

test('a guest kernel panic ends the call with E_VM_EXITED and the console tail; the pool replaces the VM', async () => {
  const vm = await pool.acquire();
  const started = Date.now();
  await assert.rejects(
    vm.exec({ argv: ['sh', '-c', 'echo c > /proc/sysrq-trigger; sleep 10'] }),
    (err) =>
      isMicrovmError(err, 'E_VM_EXITED') &&
      /guest kernel panicked \(Kernel panic - not syncing: sysrq triggered crash\)/.test(err.message),
  );
  assert.ok(Date.now() - started < 5000, 'the caller learns within seconds');
  await vm.release();
  const next = await pool.acquire();
  assert.equal((await next.exec({ argv: ['echo', 'alive'] })).stdout, 'alive\n');
  await next.release();
});

test('output floods are bounded: exec stops at maxBuffer, an unread spawn holds host memory flat', async () => {
  const vm = await pool.acquire();
  try {
    await assert.rejects(vm.exec({ argv: ['yes'], maxBuffer: 1024 * 1024 }), (err) =>
      isMicrovmError(err, 'E_OUTPUT_LIMIT'),
    );
    assert.equal((await vm.exec({ argv: ['echo', 'after the flood'] })).stdout, 'after the flood\n');

    const flood = vm.spawn({ argv: ['yes'], timeoutMs: 0 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const before = process.memoryUsage().rss;
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const growth = process.memoryUsage().rss - before;
    assert.ok(growth < 16 * 1024 * 1024, `host RSS grew ${growth} bytes while nobody read the flood`);
    flood.signal('SIGKILL');
    assert.equal((await flood.wait()).signal, 'SIGKILL', 'a process whose output nobody reads still ends');
    assert.ok(flood.droppedBytes >= 0);

    const deaf = vm.spawn({ argv: ['sleep', '30'], timeoutMs: 0 });
    const writing = deaf.writeStdin(Buffer.alloc(8 * 1024 * 1024));
    const state = await Promise.race([
      writing.then(() => 'done'),
      new Promise((resolve) => setTimeout(() => resolve('blocked'), 1500)),
    ]);
    assert.equal(state, 'blocked', 'a process that does not read stdin holds the writer back');
    deaf.signal('SIGKILL');
    await deaf.wait();
    await writing;
  } finally {
    await vm.release();
  }
});
