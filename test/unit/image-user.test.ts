import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveUser } from '../../engine/vm/user';
import { isMicrovmError } from '../../engine/errors';

const files: Record<string, string> = {
  '/etc/passwd': 'root:x:0:0:root:/root:/bin/bash\nnode:x:1000:1001::/home/node:/bin/sh\n',
  '/etc/group': 'root:x:0:\nstaff:x:50:\nnode:x:1001:\n',
};
const read = async (path: string) => {
  if (!(path in files)) throw new Error('ENOENT');
  return files[path];
};

test('an image User resolves like Docker: names through the guest files, numbers as they are, root as nothing', async () => {
  assert.equal(await resolveUser('', read), undefined);
  assert.equal(await resolveUser('root', read), undefined);
  assert.deepEqual(await resolveUser('node', read), { uid: 1000, gid: 1001 });
  assert.deepEqual(await resolveUser('node:staff', read), { uid: 1000, gid: 50 });
  assert.deepEqual(await resolveUser('1234', read), { uid: 1234, gid: 1234 });
  assert.deepEqual(await resolveUser('1234:99', read), { uid: 1234, gid: 99 });
  await assert.rejects(resolveUser('ghost', read), (err) => isMicrovmError(err, 'E_IMAGE_INVALID') && /"ghost"/.test(err.message));
  await assert.rejects(resolveUser('node:nogroup', read), (err) => isMicrovmError(err, 'E_IMAGE_INVALID') && /"nogroup"/.test(err.message));
});
