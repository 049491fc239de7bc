import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chooseHostPort,
  ForwardOrigin,
  isWellKnownServicePort,
  MAX_AUTO_FORWARDS,
  NOTICE_WINDOW_MS,
  NoticeBudget,
  NOTICES_PER_WINDOW,
  planConfigured,
  planForwards,
} from '../../engine/ports';

test('well-known service ports: privileged ports and the named list, not ordinary dev ports', () => {
  for (const port of [22, 80, 443, 1023, 3306, 5432, 6379, 27017, 11434, 9200, 5672, 1433, 1521])
    assert.ok(isWellKnownServicePort(port), String(port));
  for (const port of [1024, 3000, 5173, 8000, 8080, 8123, 49152])
    assert.ok(!isWellKnownServicePort(port), String(port));
});

test('an undeclared guest port never gets the same host port: a free one (0), or its previous OS-chosen one', () => {
  assert.deepEqual(chooseHostPort({ guestPort: 3000, declared: false }), { candidates: [0], offerSame: false });
  assert.deepEqual(chooseHostPort({ guestPort: 5432, declared: false }), { candidates: [0], offerSame: false });
  assert.deepEqual(chooseHostPort({ guestPort: 3000, declared: false, previousHostPort: 41234 }), {
    candidates: [41234, 0],
    offerSame: false,
  });
  // The guest's own number never comes back as "previous" unless the policy allows it now.
  assert.deepEqual(chooseHostPort({ guestPort: 3000, declared: false, previousHostPort: 3000 }), {
    candidates: [0],
    offerSame: false,
  });
});

test('a declared port gets the same host port if free, else a free one; a declared well-known port asks first', () => {
  assert.deepEqual(chooseHostPort({ guestPort: 3000, declared: true }), { candidates: [3000, 0], offerSame: false });
  assert.deepEqual(chooseHostPort({ guestPort: 3000, declared: true, previousHostPort: 45000 }), {
    candidates: [3000, 45000, 0],
    offerSame: false,
  });
  assert.deepEqual(chooseHostPort({ guestPort: 5432, declared: true }), { candidates: [0], offerSame: true });
  assert.deepEqual(chooseHostPort({ guestPort: 80, declared: true }), { candidates: [0], offerSame: true });
  assert.deepEqual(chooseHostPort({ guestPort: 5432, declared: true, sameConfirmed: true }), {
    candidates: [5432, 0],
    offerSame: false,
  });
  assert.deepEqual(chooseHostPort({ guestPort: 5432, declared: true, previousHostPort: 5432 }), {
    candidates: [0],
    offerSame: true,
  });
});

function state(
  listening: number[],
  forwards: Array<[number, ForwardOrigin]> = [],
  extra: { stopped?: number[]; ignored?: number[]; declared?: number[] } = {},
) {
  return {
    listening,
    forwards: new Map(forwards),
    stoppedByUser: new Set(extra.stopped ?? []),
    ignored: (p: number) => (extra.ignored ?? []).includes(p),
    declared: (p: number) => (extra.declared ?? []).includes(p),
  };
}

test('auto-forward adds new listeners, skipping forwarded, stopped and ignored ports, declared ones first', () => {
  const plan = planForwards(
    state([9000, 3000, 4000, 8080, 7000, 22], [[3000, 'auto']], { stopped: [8080], ignored: [7000], declared: [9000] }),
  );
  assert.deepEqual(plan, { add: [9000, 22, 4000], remove: [], overLimit: [] });
});

test('auto-forwards whose listener is gone are removed; config and user forwards stay', () => {
  const plan = planForwards(
    state(
      [3000],
      [
        [3000, 'auto'],
        [4000, 'auto'],
        [5000, 'config'],
        [6000, 'user'],
      ],
    ),
  );
  assert.deepEqual(plan, { add: [], remove: [4000], overLimit: [] });
});

test(`at most ${MAX_AUTO_FORWARDS} auto-forwards; the rest are over the limit until one goes away`, () => {
  const ports = Array.from({ length: 300 }, (_, i) => 20000 + i);
  const first = planForwards(state(ports));
  assert.equal(first.add.length, MAX_AUTO_FORWARDS);
  assert.equal(first.overLimit.length, 300 - MAX_AUTO_FORWARDS);
  const forwards = first.add.map((p): [number, ForwardOrigin] => [p, 'auto']);
  const full = planForwards(state(ports, [...forwards, [1, 'user'], [2, 'config']]));
  assert.deepEqual([full.add.length, full.remove.length, full.overLimit.length], [0, 0, 300 - MAX_AUTO_FORWARDS]);
  // Two listeners close: two of the waiting ports take their place.
  const fewer = planForwards(state(ports.slice(2), forwards));
  assert.deepEqual(fewer.remove, [20000, 20001]);
  assert.deepEqual(fewer.add, [20032, 20033]);
  // All close: every auto-forward goes.
  assert.equal(planForwards(state([], forwards)).remove.length, MAX_AUTO_FORWARDS);
});

test('configured forwardPorts: once each, capped', () => {
  assert.deepEqual(planConfigured([3000, 3000, 4000], 2), { add: [3000, 4000], overLimit: [] });
  assert.deepEqual(planConfigured([1, 2, 3, 4], 2), { add: [1, 2], overLimit: [3, 4] });
});

test('notices: one per new port, none for a restarted listener, a summary for a burst', () => {
  const budget = new NoticeBudget();
  assert.deepEqual(budget.admit([3000], 0), { each: [3000], summary: [], quiet: [] });
  assert.deepEqual(budget.admit([3000], 1000), { each: [], summary: [], quiet: [3000] }, 'churn: noticed before');
  const burst = Array.from({ length: 40 }, (_, i) => 20000 + i);
  assert.deepEqual(budget.admit(burst, 2000), { each: [], summary: burst, quiet: [] });
  assert.deepEqual(
    budget.admit([4000, 4001, 4002], 3000),
    { each: [], summary: [], quiet: [4000, 4001, 4002] },
    'one summary per window',
  );
  assert.deepEqual(
    budget.admit([5000], 3000),
    { each: [5000], summary: [], quiet: [] },
    'single ports still fit the window',
  );
});

test(`notices: at most ${NOTICES_PER_WINDOW} of their own per window, however the ports trickle in`, () => {
  const budget = new NoticeBudget();
  const counts = { each: 0, summary: 0, quiet: 0, summaries: 0 };
  // 256 ports, one every 250 ms (the agent's scan interval), for 64 s.
  for (let i = 0; i < 256; i++) {
    const d = budget.admit([20000 + i], i * 250);
    counts.each += d.each.length;
    counts.summary += d.summary.length;
    counts.quiet += d.quiet.length;
    counts.summaries += d.summary.length > 0 ? 1 : 0;
  }
  const windows = Math.ceil((256 * 250) / NOTICE_WINDOW_MS);
  assert.ok(counts.each <= NOTICES_PER_WINDOW * windows, JSON.stringify(counts));
  assert.ok(counts.summaries <= windows, JSON.stringify(counts));
  assert.equal(counts.each + counts.summary + counts.quiet, 256);
});
