import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeFailure, hooksToRun, splitAtWaitFor } from '../../engine/workspace/lifecycle-runner';
import { parseEnviron } from '../../engine/workspace/user-env';
import { containerInputs } from '../../engine/workspace/container';
import { containerRootVolume, withContainer, withImage, WorkspaceRecord } from '../../engine/workspace/record';

test("which hooks run: the container's once (until done), postStart each start, postAttach each attach", () => {
  assert.deepEqual(hooksToRun([], { start: true, attach: true }), [
    'onCreateCommand',
    'updateContentCommand',
    'postCreateCommand',
    'postStartCommand',
    'postAttachCommand',
  ]);
  assert.deepEqual(
    hooksToRun(['onCreateCommand', 'updateContentCommand', 'postCreateCommand'], { start: true, attach: true }),
    ['postStartCommand', 'postAttachCommand'],
  );
  assert.deepEqual(
    hooksToRun(['onCreateCommand', 'updateContentCommand', 'postCreateCommand'], { start: false, attach: true }),
    ['postAttachCommand'],
  );
});

test('waitFor: hooks up to it run before the workspace is handed over (default updateContentCommand)', () => {
  const all = hooksToRun([], { start: true, attach: true });
  assert.deepEqual(splitAtWaitFor(all, 'updateContentCommand'), {
    before: ['onCreateCommand', 'updateContentCommand'],
    after: ['postCreateCommand', 'postStartCommand', 'postAttachCommand'],
  });
  assert.deepEqual(splitAtWaitFor(all, 'postStartCommand').after, ['postAttachCommand']);
  assert.deepEqual(splitAtWaitFor(all, 'initializeCommand').before, []);
});

test('a failing hook names itself, its entry, its origin and how it ended', () => {
  assert.equal(
    describeFailure({ hook: 'postCreateCommand', origin: 'devcontainer.json', command: 'bundle install', exitCode: 1 }),
    "postCreateCommand 'bundle install' exited 1",
  );
  assert.equal(
    describeFailure({
      hook: 'postStartCommand',
      origin: 'ghcr.io/x/f:1',
      name: 'db',
      command: 'x'.repeat(100),
      exitCode: -1,
      signal: 'SIGKILL',
    }),
    `postStartCommand (db) from ghcr.io/x/f:1 '${'x'.repeat(57)}...' was killed by SIGKILL`,
  );
});

test("the probed environment drops the shell's bookkeeping", () => {
  assert.deepEqual(parseEnviron('PATH=/a:/b\0PWD=/x\0SHLVL=2\0EMPTY=\0EQ=a=b\0_=/bin/cat\0bogus\0'), {
    PATH: '/a:/b',
    EMPTY: '',
    EQ: 'a=b',
  });
});

test('a new container when what makes it changes; the same one (and its hooks done) otherwise', () => {
  const plan = {
    source: { kind: 'image' as const, ref: 'a' },
    containerEnv: {},
    volumes: [],
    tmpfs: [],
    workspaceFolder: '/w',
  };
  const record = { version: 1 as const, folder: '/f', id: '0123456789abcdef', createdAt: 'now' } as WorkspaceRecord;
  const first = withContainer(record, containerInputs(plan));
  const done = { ...first, container: { ...first.container!, hooksDone: ['postCreateCommand'] } };
  assert.equal(withContainer(done, containerInputs(plan)), done);
  assert.deepEqual(
    withContainer(done, containerInputs({ ...plan, source: { kind: 'image', ref: 'b' } })).container?.hooksDone,
    [],
  );
  assert.equal(containerInputs(plan), containerInputs({ ...plan }), 'stable');
});

test('the container follows its image: its first boot keeps its hooks record, a rebuilt image makes a new one with an empty disk', () => {
  const record = withContainer(
    { version: 1 as const, folder: '/f', id: '0123456789abcdef', createdAt: 'now' } as WorkspaceRecord,
    'inputs',
  );
  const booted = withImage(record, 'sha256:aaa');
  assert.equal(booted.fresh, true, 'a container that never booted starts from an empty disk');
  assert.equal(booted.record.container?.image, 'sha256:aaa');
  const done = { ...booted.record, container: { ...booted.record.container!, hooksDone: ['postCreateCommand'] } };
  assert.deepEqual(withImage(done, 'sha256:aaa'), { record: done, fresh: false }, 'the same image: the same container');
  const rebuilt = withImage(done, 'sha256:bbb');
  assert.equal(rebuilt.fresh, true);
  assert.deepEqual(rebuilt.record.container?.hooksDone, [], 'its hooks run again');
  const legacy = { ...record, container: { ...record.container!, hooksDone: ['postCreateCommand'] } };
  assert.deepEqual(
    withImage(legacy, 'sha256:aaa').record.container?.hooksDone,
    [],
    'a record from before containers kept their root: hooks run again',
  );
  assert.match(
    containerRootVolume(record),
    /^wsroot-0123456789abcdef$/,
    'not a name a configuration volume (ws-<id>-<name>) can take',
  );
});
