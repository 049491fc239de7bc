import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveUser, userInfo } from '../../engine/vm/user';
import { idMapFor } from '../../engine/mount/id-map';
import { isMicrovmError } from '../../engine/errors';

const files: Record<string, string> = {
  '/etc/passwd': 'root:x:0:0:root:/root:/bin/bash\nnode:x:1000:1001::/home/node:/bin/sh\n',
  '/etc/group': 'root:x:0:\nstaff:x:50:\nnode:x:1001:\n',
};
const read = async (path: string) => {
  const text = files[path];
  if (text === undefined) throw new Error('ENOENT');
  return text;
};

test('an image User resolves like Docker: names through the guest files, numbers as they are, root as nothing', async () => {
  assert.equal(await resolveUser('', read!), undefined);
  assert.equal(await resolveUser('root', read!), undefined);
  assert.deepEqual(await resolveUser('node', read!), { uid: 1000, gid: 1001 });
  assert.deepEqual(await resolveUser('node:staff', read!), { uid: 1000, gid: 50 });
  assert.deepEqual(await resolveUser('1234', read!), { uid: 1234, gid: 1234 });
  assert.deepEqual(await resolveUser('1234:99', read!), { uid: 1234, gid: 99 });
  await assert.rejects(
    resolveUser('ghost', read!),
    (err) => isMicrovmError(err, 'E_IMAGE_INVALID') && /"ghost"/.test(err.message),
  );
  await assert.rejects(
    resolveUser('node:nogroup', read!),
    (err) => isMicrovmError(err, 'E_IMAGE_INVALID') && /"nogroup"/.test(err.message),
  );
});

test('a passwd line without a numeric gid is skipped, never read as gid NaN', async () => {
  const guest: Record<string, string> = { '/etc/passwd': 'short:x:1000\nodd:x:1001:staff:::\nodd:x:1002:1002:::\n' };
  const readGuest = async (path: string) => guest[path] ?? '';
  await assert.rejects(
    resolveUser('short', readGuest),
    (err) => isMicrovmError(err, 'E_IMAGE_INVALID') && /"short"/.test(err.message),
  );
  assert.deepEqual(await resolveUser('odd', readGuest), { uid: 1002, gid: 1002 });
});

test('a workspace user comes with its home, a usable login shell and the groups /etc/group lists it in', async () => {
  const guest: Record<string, string> = {
    '/etc/passwd':
      'root:x:0:0:root:/root:/bin/bash\nvscode:x:1000:1000::/home/vscode:/usr/bin/zsh\nsvc:x:999:999::/:/usr/sbin/nologin\nbare:x:1002:1002:::\n',
    '/etc/group':
      'root:x:0:\nvscode:x:1000:\nnvm:x:1001:vscode,other\nsdkman:x:1003:other,vscode\nsudo:x:27:vscode\nbogus:x:abc:vscode\nsvc:x:999:\n',
  };
  const readGuest = async (path: string) => guest[path] ?? '';
  assert.deepEqual(await userInfo('vscode', readGuest), {
    uid: 1000,
    gid: 1000,
    name: 'vscode',
    groups: [1001, 1003, 27],
    home: '/home/vscode',
    shell: '/usr/bin/zsh',
  });
  assert.deepEqual(await userInfo('', readGuest), {
    uid: 0,
    gid: 0,
    name: 'root',
    groups: [],
    home: '/root',
    shell: '/bin/bash',
  });
  assert.equal((await userInfo('svc', readGuest)).shell, '/bin/sh', 'nologin is no shell for a terminal');
  assert.deepEqual(await userInfo('bare', readGuest), {
    uid: 1002,
    gid: 1002,
    name: 'bare',
    groups: [],
    home: '/',
    shell: '/bin/sh',
  });
  assert.deepEqual(await userInfo('4242', readGuest), {
    uid: 4242,
    gid: 4242,
    name: '4242',
    groups: [],
    home: '/',
    shell: '/bin/sh',
  });
  const missing = (spec: string, why: string) => new Error(`custom: ${spec}: ${why}`);
  await assert.rejects(
    userInfo('ghost', readGuest, missing),
    /^Error: custom: ghost: user "ghost" is not in the guest's \/etc\/passwd$/,
  );
});

test("the share's id map makes the workspace user the folder owner; every other guest id stays off the host's ids", () => {
  assert.deepEqual(
    idMapFor(1000).map((m) => [m.inside, m.count]),
    [
      [0, 1],
      [1, 65_535],
    ],
    'guest root by default',
  );
  assert.equal(idMapFor(1000)[0]!.outside, 1000);
  const map = idMapFor(1000, 1000);
  assert.deepEqual(
    map.map((m) => [m.inside, m.count]),
    [
      [0, 1000],
      [1000, 1],
      [1001, 64_535],
    ],
  );
  assert.equal(map[1]!.outside, 1000);
  assert.equal(map[0]!.outside + 1001, map[2]!.outside, 'the subordinate range stays contiguous around the owner');
  assert.equal(
    map.reduce((n, m) => n + m.count, 0),
    65_536,
  );
  assert.ok(
    map.every((m) => m.inside === 1000 || m.outside >= 100_000),
    'guest root and every other id map into the subordinate range, never to host root',
  );
  assert.deepEqual(
    idMapFor(1000, 65_535).map((m) => [m.inside, m.count]),
    [
      [0, 65_535],
      [65_535, 1],
    ],
  );
  assert.deepEqual(
    idMapFor(0, 1000),
    [{ inside: 0, outside: 0, count: 65_536 }],
    'a folder root owns maps identically',
  );
});
