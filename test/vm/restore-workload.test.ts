import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Image, MicrovmError, PoolEvent, Vm } from '../../engine';
import { AgentClient } from '../../engine/agent/client';
import { SLOW } from '../helpers/slow';

/**
 * Issue 22: a service baked with `cmd` + `listenerRequired` holds an agent stream when the
 * snapshot is taken. Every restore must keep that process (same PID, same start time) and
 * reach it, while the new host's streams work beside it.
 */
const snapshotsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-restore-workload-'));
after(() => fs.rmSync(snapshotsDir, { recursive: true, force: true }));

const CYCLES = 20;

/** The workload's pid and its start time (clock ticks after boot, /proc/PID/stat field 22). */
async function identity(vm: Vm, port: number): Promise<string> {
  const pid = (await vm.listeningPorts()).find((l) => l.port === port)?.pid;
  assert.ok(pid, `something listens on guest port ${port}`);
  const stat = (await vm.readFile(`/proc/${pid}/stat`)).toString();
  return `${pid}@${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`;
}

async function fetchText(vm: Vm, guestPort: number, urlPath: string): Promise<string> {
  const forward = await vm.exposeTcp(0, guestPort);
  try {
    const response = await fetch(`http://127.0.0.1:${forward.port}${urlPath}`, { signal: AbortSignal.timeout(15_000) });
    assert.equal(response.status, 200);
    return (await response.text()).trim();
  } finally {
    await forward.stop();
  }
}

/** Acquires and releases 1 + CYCLES VMs (the bake's, then restores), checking each with `check`. */
async function cycles(image: Image, check: (vm: Vm, i: number) => Promise<string>): Promise<void> {
  const pool = image.pool({ min: 1, max: 1, restoreOnRelease: true });
  const failures: PoolEvent[] = [];
  pool.onEvent((event) => failures.push(event));
  const seen = new Set<string>();
  const started = performance.now();
  try {
    for (let i = 0; i <= CYCLES; i++) {
      const vm = await pool.acquire();
      try {
        seen.add(await check(vm, i));
        const ps = await vm.exec({ argv: ['ps'] });
        assert.equal(ps.exitCode, 0, 'exec works beside the workload');
      } finally {
        await vm.release();
      }
    }
  } finally {
    await pool.shutdown();
  }
  assert.deepEqual(failures, []);
  assert.equal(seen.size, 1, `the workload is the same process in every VM: ${[...seen].join(', ')}`);
  console.log(
    `# ${CYCLES + 1} acquire/check/release cycles in ${(performance.now() - started).toFixed(0)} ms; workload ${[...seen][0]}`,
  );
}

test('the issue 22 snippet: httpd baked with cmd + listenerRequired answers after the first and 20 more restores, with its PID', async () => {
  const image = await Image.build({
    cmd: ['busybox', 'httpd', '-f', '-p', '80', '-h', '/etc'],
    listenerRequired: true,
    guestPort: 80,
    snapshotsDir,
  });
  await cycles(image, async (vm) => {
    assert.equal(await fetchText(vm, 80, '/hostname'), (await vm.readFile('/etc/hostname')).toString().trim());
    return identity(vm, 80);
  });
});

test(
  'a chatty service (its logs on stdout, nobody reading them after a restore) keeps serving and writing',
  SLOW,
  async () => {
    // httpd logs each request to stderr, joined to stdout; a loop beside it writes 64 KiB every
    // 0.2 s. Were the output of the baked process not drained after a restore, the pipe would
    // fill within a second and httpd would block on its next log line.
    const script =
      'exec 2>&1; (i=0; while :; do i=$((i+1)); echo $i > /tmp/ticks; head -c 65536 /dev/zero; sleep 0.2; done) & ' +
      'exec httpd -f -vv -p 81 -h /etc';
    const image = await Image.build({ cmd: ['sh', '-c', script], listenerRequired: true, guestPort: 81, snapshotsDir });
    const ticks = async (vm: Vm) => Number((await vm.readFile('/tmp/ticks')).toString().trim());
    await cycles(image, async (vm) => {
      const before = await ticks(vm);
      for (const deadline = Date.now() + 10_000; (await ticks(vm)) < before + 8;) {
        assert.ok(
          Date.now() < deadline,
          `the workload goes on writing to its stdout (${before} -> ${await ticks(vm)} ticks)`,
        );
        await new Promise((r) => setTimeout(r, 250));
      }
      for (let i = 0; i < 3; i++) assert.ok((await fetchText(vm, 81, '/hostname')).length > 0);
      return identity(vm, 81);
    });
  },
);

test('a refused RESTORED is reported by the pool with its reason; the VM is replaced; an acquire gets a working VM or E_RESTORE_FAILED', async () => {
  const image = await Image.build({ snapshotsDir });
  const first = image.pool({ min: 0, max: 1 });
  await (await first.acquire()).release(); // the bake's VM, which is not restored
  await first.shutdown();

  // Fault injection: the next RESTOREDs carry a seed the agent refuses (over 512 bytes).
  const original = AgentClient.prototype.restored;
  let sabotage = 0;
  AgentClient.prototype.restored = function (seed, timeNs, onRefusal) {
    return original.call(this, sabotage-- > 0 ? Buffer.alloc(600) : seed, timeNs, onRefusal);
  };
  try {
    sabotage = 1;
    const pool = image.pool({ min: 1, max: 1 });
    const events: PoolEvent[] = [];
    const failed = new Promise<void>((resolve) =>
      pool.onEvent((event) => {
        events.push(event);
        resolve();
      }),
    );
    try {
      await failed;
      const event = events[0];
      assert.ok(event);
      assert.equal(event.type, 'vm-failed');
      assert.equal(event.type === 'vm-failed' && event.error.code, 'E_RESTORE_FAILED');
      assert.match(event.type === 'vm-failed' ? event.error.message : '', /refused RESTORED .*RNG_SEED/);
      const vm = await pool.acquire();
      assert.equal((await vm.exec({ argv: ['echo', 'replaced'] })).stdout, 'replaced\n');
      await vm.release();
    } finally {
      await pool.shutdown();
    }

    sabotage = 1;
    const onDemand = image.pool({ min: 0, max: 1 });
    try {
      const hit = await onDemand.acquire();
      await assert.rejects(
        hit.exec({ argv: ['true'] }),
        (err: MicrovmError) =>
          err.code === 'E_RESTORE_FAILED' && /RNG_SEED/.test(err.message) && /acquire another VM/.test(err.message),
      );
      await hit.release();
      const next = await onDemand.acquire();
      assert.equal((await next.exec({ argv: ['echo', 'fine'] })).stdout, 'fine\n');
      await next.release();
    } finally {
      await onDemand.shutdown();
    }
  } finally {
    AgentClient.prototype.restored = original;
  }
});
