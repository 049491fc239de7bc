import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Image, Pool, Vm } from '../../engine';
import { testImage } from '../helpers/test-arch';

/**
 * The share's cache settings keep both sides coherent (ARCHITECTURE.md, "Shared folders:
 * caching and the staleness bound"): a guest write is on the host when write(2) returns,
 * even with the file still open (no writeback cache, no FLUSH needed), and a host change
 * reaches a guest that has the old entry, attributes and pages cached within the bound.
 * Each case first makes the guest cache what it will have to drop. Fails if someone turns
 * on writeback, cache=always or keep_cache, or lengthens a timeout past the bound.
 */
const STALENESS_BOUND_MS = 1050; // the guest's 1 s (virtiofsd cache=auto) + the view's 50 ms
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-coherence-'));
let pool: Pool;
let vm: Vm;

before(async () => {
  fs.chmodSync(dir, 0o755);
  const image = await Image.build({
    ...testImage(),
    network: 'none',
    mounts: [{ hostPath: dir, guestPath: '/workspace', protect: [] }],
  });
  pool = image.pool({ min: 1, max: 1 });
  vm = await pool.acquire();
});

after(async () => {
  await vm?.release();
  await pool?.shutdown();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function guest(script: string): Promise<string> {
  const result = await vm.exec({ argv: ['sh', '-c', script] });
  assert.equal(result.exitCode, 0, `${script}: ${result.stderr}`);
  return result.stdout;
}

/**
 * Runs `change` on the host, then polls `probe` in the guest until it prints `want`; the
 * time from the change to the first exec that saw it must stay within the bound, plus the
 * exec round trips of this (TCG, shared) machine measured just before.
 */
async function seenWithinBound(what: string, probe: string, want: string, change: () => void): Promise<void> {
  const t = performance.now();
  await guest(probe); // the guest caches the old entry, attributes and pages right before the change
  const roundTrip = performance.now() - t;
  change();
  const changed = performance.now();
  let lastStart = changed;
  for (;;) {
    lastStart = performance.now();
    const seen = await guest(probe);
    if (seen === want) break;
    assert.ok(
      performance.now() - changed < STALENESS_BOUND_MS + 10 * roundTrip + 1000,
      `${what}: the guest still sees ${JSON.stringify(seen)}`,
    );
  }
  const lag = lastStart - changed;
  console.log(`${what}: seen by the guest after ${lag.toFixed(0)} ms (exec round trip ${roundTrip.toFixed(0)} ms)`);
  assert.ok(
    lag <= STALENESS_BOUND_MS + 2 * roundTrip,
    `${what}: seen only after ${lag.toFixed(0)} ms, over the ${STALENESS_BOUND_MS} ms bound`,
  );
}

test('a guest write is on the host when write(2) returns, with the file still open', async () => {
  const held = guest(
    'exec 3> /workspace/held.txt; printf guest-data >&3; : > /workspace/written; ' +
      'i=0; while [ ! -e /workspace/host-saw ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done; [ -e /workspace/host-saw ]',
  );
  const started = Date.now();
  while (!fs.existsSync(path.join(dir, 'written'))) {
    assert.ok(Date.now() - started < 30_000, 'the guest never wrote');
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(
    fs.readFileSync(path.join(dir, 'held.txt'), 'utf8'),
    'guest-data',
    'the write was not on the host while the guest held the file open',
  );
  fs.writeFileSync(path.join(dir, 'host-saw'), '');
  await held;
  await guest('printf more >> /workspace/held.txt');
  assert.equal(fs.readFileSync(path.join(dir, 'held.txt'), 'utf8'), 'guest-datamore');
});

test('host changes to files the guest has cached arrive within the bound', async () => {
  const file = path.join(dir, 'cached.txt');
  fs.writeFileSync(file, 'one\n');
  await guest('cat /workspace/cached.txt; cat /workspace/cached.txt; stat /workspace/cached.txt >/dev/null');
  await seenWithinBound('a host append (size grows)', 'cat /workspace/cached.txt', 'one\ntwo\n', () =>
    fs.appendFileSync(file, 'two\n'),
  );
  await seenWithinBound('a same-size host rewrite in place', 'cat /workspace/cached.txt', 'ONE\nTWO\n', () => {
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, 'ONE\nTWO\n', 0);
    fs.closeSync(fd);
  });
  await seenWithinBound('a host truncate', 'cat /workspace/cached.txt; echo .', '.\n', () => fs.truncateSync(file, 0));
  await seenWithinBound(
    'an editor-style save (write a temp file, rename over)',
    'cat /workspace/cached.txt',
    'saved\n',
    () => {
      fs.writeFileSync(path.join(dir, '.cached.txt.tmp'), 'saved\n');
      fs.renameSync(path.join(dir, '.cached.txt.tmp'), file);
    },
  );
});

test('host creates and deletes reach a guest that looked the names up', async () => {
  fs.writeFileSync(path.join(dir, 'doomed.txt'), 'x');
  await guest('[ -e /workspace/doomed.txt ] && [ ! -e /workspace/newborn.txt ]; ls /workspace >/dev/null');
  await seenWithinBound('a host delete', '[ -e /workspace/doomed.txt ] && echo present || echo gone', 'gone\n', () =>
    fs.rmSync(path.join(dir, 'doomed.txt')),
  );
  await seenWithinBound('a host create', 'cat /workspace/newborn.txt 2>/dev/null || echo missing', 'new\n', () =>
    fs.writeFileSync(path.join(dir, 'newborn.txt'), 'new\n'),
  );
  await seenWithinBound('a host mkdir, listed', 'ls /workspace | grep -c "^newdir$" || true', '1\n', () =>
    fs.mkdirSync(path.join(dir, 'newdir')),
  );
});
