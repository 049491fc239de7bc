import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { NEEDS_ROOT } from '../helpers/host-net';

const run = promisify(execFile);
const REPO = path.resolve(__dirname, '..', '..');
const SUMMARY_FIELDS = ['samples', 'min', 'p50', 'p90', 'p99', 'max'] as const;

/** The harness end to end on the exec rows, writing to a temp dir (not bench/results). */
test('bench --quick --rows exec writes a complete report', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-test-'));
  try {
    await run(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--rows', 'exec', '--out', out], {
      cwd: REPO,
      maxBuffer: 16 * 1024 * 1024,
    });
    const results = JSON.parse(fs.readFileSync(path.join(out, 'latest.json'), 'utf8'));
    assert.ok(results.machine.cpuModel && results.machine.cores > 0 && results.machine.memoryMib > 0);
    assert.ok(results.machine.kernel && results.machine.os);
    assert.match(results.accelerator.accel, /^(kvm|tcg|hvf)$/);
    assert.match(results.qemu.version, /^\d+\.\d+/);
    assert.ok(results.guestKernel);
    assert.ok(!Number.isNaN(Date.parse(results.date)));

    assert.deepEqual(
      results.rows.map((r: { name: string }) => r.name),
      ['exec true round trip', 'agent ping round trip'],
    );
    for (const row of results.rows) {
      for (const field of SUMMARY_FIELDS) assert.ok(row[field] > 0, `${row.name}.${field} = ${row[field]}`);
      assert.ok(row.min <= row.p50 && row.p50 <= row.p90 && row.p90 <= row.p99 && row.p99 <= row.max, row.name);
      assert.equal(row.unit, 'ms');
      assert.equal(row.baseline, 'raw virtio-serial echo');
      assert.ok(row.baselineP50 > 0 && row.ratio > 0, row.name);
      assert.equal(row.values.length, row.samples);
    }
    const echo = results.baselines.find((b: { name: string }) => b.name === 'raw virtio-serial echo');
    for (const field of SUMMARY_FIELDS) assert.ok(echo[field] > 0, `echo.${field}`);

    const markdown = fs.readFileSync(path.join(out, 'latest.md'), 'utf8');
    assert.match(markdown, /\| exec true round trip \|/);
    assert.match(markdown, /latest\.svg/);
    assert.match(fs.readFileSync(path.join(out, 'latest.svg'), 'utf8'), /^<svg[\s\S]*<\/svg>\n$/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test(
  'bench --quick --rows netguard reports the block window and the connect cost against their baselines',
  { skip: NEEDS_ROOT },
  async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-test-'));
    try {
      const bench = () =>
        run(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--rows', 'netguard', '--out', out], {
          cwd: REPO,
          maxBuffer: 16 * 1024 * 1024,
        });
      // One window sample in a CI run under load waited out its 30 s deadline (2026-12-07; not
      // reproduced in 4 runs after): the probe now says which half never came (the guard's
      // refusal or the kernel's event). Printed, and run once more; a second time fails the test.
      await bench().catch(async (err: Error & { stderr?: string }) => {
        if (!/netguard-probe: timed out/.test(`${err.message}${err.stderr ?? ''}`)) throw err;
        console.log(`netguard bench, first attempt: ${err.message}`);
        await bench();
      });
      const results = JSON.parse(fs.readFileSync(path.join(out, 'latest.json'), 'utf8'));
      assert.deepEqual(
        results.rows.map((r: { name: string; baseline: string }) => [r.name, r.baseline]),
        [
          ['netguard block window', 'kernel RTM_NEWADDR event at a listener'],
          ['connect() through netguard', 'raw connect() system call'],
        ],
      );
      const [window] = results.rows;
      assert.equal(window.samples, 30);
      assert.ok(window.max > 0 && window.max <= 100, `block window max ${window.max} ms`);
      assert.match(results.notes.join('\n'), /meets the ≤ 100 ms target/);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  },
);
