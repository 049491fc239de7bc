import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Image, Pool, Vm } from '../../engine';
import { qemuPidOf } from './qemu-proc';

/**
 * Fork bombs in the guest: every exec runs in its own cgroup (pids.max, cgroup.kill), so a
 * timeout or SIGKILL ends the whole tree, setsid or not, the agent stays responsive, and the
 * host's QEMU stays within the guest's memory.
 */
let image: Image;
let pool: Pool;

/**
 * The classic bomb (bash: in POSIX mode, as `sh`, bash refuses `:` as a function name). The
 * starting shell then sleeps, so the call lasts until its timeout; the bomb itself is not
 * waited for (its shells return at once), as with any background process.
 */
const FUNCTION_BOMB = ['bash', '-c', ':(){ :|:& };: 2>/dev/null; sleep 600'];
/** Every child starts a new session (busybox setsid), so a process-group kill misses them. */
const SETSID_SCRIPT = 'b(){ setsid sh -c "$S" & setsid sh -c "$S" & wait; }; b 2>/dev/null; sleep 600';
const SETSID_BOMB = ['sh', '-c', SETSID_SCRIPT];

before(async () => {
  image = await Image.build({});
  pool = image.pool({ min: 1, max: 1 });
});

after(async () => {
  await pool?.shutdown();
});

/** Guest user processes (not kernel threads), counted by shell builtins only, so the count itself forks nothing. */
const COUNT_PROCESSES =
  'n=0; for p in /proc/[0-9]*/stat; do read -r pid comm state ppid rest < "$p" 2>/dev/null || continue; ' +
  '[ "$pid" = 2 ] || [ "$ppid" = 2 ] || n=$((n+1)); done; echo $n';

async function userProcesses(vm: Vm): Promise<number> {
  const { stdout } = await vm.exec({ argv: ['sh', '-c', COUNT_PROCESSES], timeoutMs: 30_000 });
  return Number(stdout.trim());
}

/** Polls until the guest is back to `baseline` processes; returns how long that took. */
async function waitForBaseline(vm: Vm, baseline: number, withinMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const count = await userProcesses(vm);
    if (count === baseline) return Date.now() - started;
    assert.ok(
      Date.now() - started < withinMs,
      `${count - baseline} bomb processes still run ${withinMs} ms after the kill`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const GUEST_RAM_MIB = 256; // Image.build's default memoryMib

/**
 * QEMU's resident memory from /proc/PID/smaps, split into the guest's RAM (the one mapping of
 * its size; at most GUEST_RAM_MIB by construction), TCG's translated-code buffer (the rwx
 * anonymous mapping, capped by QEMU's tb-size) and the rest: QEMU's own heap and code.
 */
function qemuMemoryMib(vm: Vm): { total: number; guestRam: number; tcgCode: number; own: number } {
  const smaps = fs.readFileSync(`/proc/${qemuPidOf(vm.id)}/smaps`, 'utf8');
  let total = 0;
  let guestRam = 0;
  let tcgCode = 0;
  for (const block of smaps.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const header = block.slice(0, block.indexOf('\n'));
    const sizeKib = Number(/^Size:\s+(\d+) kB$/m.exec(block)?.[1] ?? 0);
    const rssKib = Number(/^Rss:\s+(\d+) kB$/m.exec(block)?.[1] ?? 0);
    total += rssKib;
    if (/ rwxp /.test(header)) tcgCode += rssKib;
    else if (sizeKib === GUEST_RAM_MIB * 1024) guestRam += rssKib;
  }
  const mib = (kib: number) => Math.round(kib / 1024);
  return { total: mib(total), guestRam: mib(guestRam), tcgCode: mib(tcgCode), own: mib(total - guestRam - tcgCode) };
}

const describeMemory = (m: ReturnType<typeof qemuMemoryMib>) =>
  `${m.total} MiB (guest RAM ${m.guestRam}, TCG code ${m.tcgCode}, QEMU itself ${m.own})`;

async function cgroupCount(vm: Vm): Promise<number> {
  const { stdout } = await vm.exec({
    argv: ['sh', '-c', 'ls /sys/fs/cgroup/microvm.exec | grep -c "^[0-9]"'],
    timeoutMs: 30_000,
  });
  return Number(stdout.trim());
}

for (const [name, argv] of [
  ['the function bomb :(){ :|:& };:', FUNCTION_BOMB],
  ['a bomb whose children call setsid', SETSID_BOMB],
] as const) {
  test(`${name} ends at timeoutMs with every process gone; the agent answers during and after; QEMU RSS stays bounded`, async () => {
    const vm = await pool.acquire();
    try {
      assert.ok(vm.agentInfo.features.includes('cgroup'), 'the guest agent runs execs in cgroups');
      const baseline = await userProcesses(vm);
      const memoryBefore = qemuMemoryMib(vm);
      const started = Date.now();
      const call = vm.exec({ argv: [...argv], env: { S: SETSID_SCRIPT }, timeoutMs: 4000 });
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const readStarted = Date.now();
      assert.match((await vm.readFile('/proc/loadavg')).toString(), /^\d/);
      const readMs = Date.now() - readStarted;
      assert.ok(readMs < 1000, `the agent answered a READ_FILE in ${readMs} ms while the bomb ran`);
      const result = await call;
      const tookMs = Date.now() - started;
      assert.equal(result.timedOut, true);
      assert.equal(result.signal, 'SIGKILL');
      assert.ok(tookMs >= 4000 && tookMs < 8000, `the call ended ${tookMs} ms after it started (timeout 4000 ms)`);
      const goneMs = await waitForBaseline(vm, baseline, 5000);
      const trueStarted = Date.now();
      assert.equal((await vm.exec({ argv: ['true'] })).exitCode, 0);
      const trueMs = Date.now() - trueStarted;
      const memoryAfter = qemuMemoryMib(vm);
      console.log(
        `# ${name}: READ_FILE during the bomb ${readMs} ms, call ${tookMs} ms, bomb gone ${goneMs} ms later, exec true ${trueMs} ms; ` +
          `QEMU RSS ${describeMemory(memoryBefore)} before, ${describeMemory(memoryAfter)} after`,
      );
      assert.ok(memoryAfter.guestRam <= GUEST_RAM_MIB);
      assert.ok(
        memoryAfter.own - memoryBefore.own < 64,
        "QEMU's own memory does not grow with the guest's process count",
      );
      assert.equal(await cgroupCount(vm), 1, 'only the cgroup of the counting exec itself is left');
    } finally {
      await vm.release();
    }
  });
}

test('a spawned fork bomb is capped by pidsMax and killed with SIGKILL, including its setsid children', async () => {
  const vm = await pool.acquire();
  try {
    const baseline = await userProcesses(vm);
    const child = vm.spawn({ argv: SETSID_BOMB, env: { S: SETSID_SCRIPT }, timeoutMs: 0, pidsMax: 64 });
    // The bomb's cgroup: its tasks now, and how many forks the limit refused (pids.events "max").
    const pidsState =
      'd=$(dirname $(grep -lx 64 /sys/fs/cgroup/microvm.exec/*/pids.max)); echo $(cat $d/pids.current) $(sed -n "s/^max //p" $d/pids.events)';
    let running = 0;
    let mostRunning = 0;
    let refused = 0;
    for (const deadline = Date.now() + 30_000; refused === 0 && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      [running = 0, refused = 0] = (await vm.exec({ argv: ['sh', '-c', pidsState] })).stdout
        .trim()
        .split(' ')
        .map(Number);
      mostRunning = Math.max(mostRunning, running);
    }
    assert.ok(refused > 0, `the bomb reached its pidsMax: the cgroup refused ${refused} forks (${running} tasks)`);
    assert.ok(
      mostRunning <= 64 && mostRunning >= 32,
      `the bomb ran up to ${mostRunning} tasks, never over its pidsMax of 64`,
    );
    const started = Date.now();
    child.signal('SIGKILL');
    const result = await child.wait();
    assert.equal(result.signal, 'SIGKILL');
    assert.equal(result.timedOut, false);
    const goneMs = await waitForBaseline(vm, baseline, 5000);
    console.log(
      `# spawned bomb: up to ${mostRunning} tasks at pidsMax 64, ${refused} forks refused; SIGKILL answered in ${Date.now() - started - goneMs} ms, all gone ${goneMs} ms later`,
    );
    assert.equal((await vm.exec({ argv: ['echo', 'alive'] })).stdout, 'alive\n');
  } finally {
    await vm.release();
  }
});

test('processes left behind by an exec stay in its cgroup until they end; then the cgroup is removed', async () => {
  const vm = await pool.acquire();
  try {
    const result = await vm.exec({ argv: ['sh', '-c', 'setsid sleep 2 & echo started'] });
    assert.equal(result.stdout, 'started\n', 'a background process does not hold the call');
    const { stdout } = await vm.exec({
      argv: ['sh', '-c', 'cat /sys/fs/cgroup/microvm.exec/*/pids.max | sort | uniq -c'],
    });
    assert.match(stdout, /4096/, 'the default pids.max is 4096');
    assert.ok((await cgroupCount(vm)) >= 2, 'the sleeping process keeps its cgroup');
    for (const deadline = Date.now() + 10_000; (await cgroupCount(vm)) > 1;) {
      assert.ok(Date.now() < deadline, 'the cgroup is removed after its last process ends');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await vm.release();
  }
});
