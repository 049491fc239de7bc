import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collapse, mergeChange, PendingKind, relativeToShare } from '../../engine/watch/coalesce';

const merged = (changes: Array<[string, 'create' | 'update' | 'delete']>) => {
  const pending = new Map<string, PendingKind>();
  for (const [rel, change] of changes) mergeChange(pending, rel, change);
  return [...pending];
};

test('changes to one path merge: create+delete cancel, create+update stay a create, update+delete is a delete', () => {
  assert.deepEqual(
    merged([
      ['a', 'create'],
      ['a', 'delete'],
    ]),
    [],
  );
  assert.deepEqual(
    merged([
      ['a', 'create'],
      ['a', 'update'],
    ]),
    [['a', 'CREATE']],
  );
  assert.deepEqual(
    merged([
      ['a', 'update'],
      ['a', 'delete'],
    ]),
    [['a', 'DELETE']],
  );
  assert.deepEqual(
    merged([
      ['a', 'delete'],
      ['a', 'create'],
    ]),
    [['a', 'CREATE']],
  );
  assert.deepEqual(
    merged([
      ['a', 'update'],
      ['a', 'update'],
    ]),
    [['a', 'MODIFY']],
  );
});

test('a rename (delete then create) keeps its order in the batch', () => {
  assert.deepEqual(
    merged([
      ['old', 'delete'],
      ['new', 'create'],
    ]),
    [
      ['old', 'DELETE'],
      ['new', 'CREATE'],
    ],
  );
});

test('a batch over the limit collapses to its directories, one level up at a time, on the nearest existing one', () => {
  const pending = new Map<string, PendingKind>();
  for (let d = 0; d < 10; d++) for (let f = 0; f < 100; f++) pending.set(`src/d${d}/f${f}.js`, 'CREATE');
  const small = new Map<string, PendingKind>([['a', 'MODIFY']]);
  assert.equal(
    collapse(small, 5, () => true),
    small,
  );
  const byDir = collapse(pending, 20, () => true);
  assert.equal(byDir.size, 10);
  assert.deepEqual(
    [...byDir.values()].every((k) => k === 'DIR_CHANGED'),
    true,
  );
  assert.ok(byDir.has('src/d3'));
  assert.deepEqual([...collapse(pending, 5, () => true)], [['src', 'DIR_CHANGED']]);
  // A removed subtree is the delete of its top directory; the share itself always exists.
  const removed = collapse(pending, 20, (rel) => rel === 'src');
  assert.equal(removed.size, 10);
  assert.equal(removed.get('src/d3'), 'DELETE');
  assert.deepEqual([...collapse(pending, 20, () => false)], [['src', 'DELETE']]);
  assert.deepEqual(
    [
      ...collapse(
        new Map([
          ['x/1', 'DELETE'],
          ['y/2', 'DELETE'],
        ]),
        1,
        () => false,
      ),
    ],
    [['', 'DIR_CHANGED']],
  );
});

test('paths outside the share, in .git, under a volume or too long are not relayed', () => {
  assert.equal(relativeToShare('/w', '/w/src/a.ts', []), 'src/a.ts');
  assert.equal(relativeToShare('/w', '/w', []), undefined);
  assert.equal(relativeToShare('/w', '/other/a', []), undefined);
  assert.equal(relativeToShare('/w', '/w/.git/index', []), undefined);
  assert.equal(relativeToShare('/w', '/w/sub/.git/HEAD', []), undefined);
  assert.equal(relativeToShare('/w', '/w/node_modules/x/index.js', ['node_modules']), undefined);
  assert.equal(relativeToShare('/w', '/w/node_modules_extra/a', ['node_modules']), 'node_modules_extra/a');
  assert.equal(relativeToShare('/w', `/w/${'d/'.repeat(2100)}f`, []), undefined);
});
