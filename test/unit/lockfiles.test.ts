import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  changedLockfiles,
  LOCKFILES,
  lockfilesDigest,
  lockfileStamps,
  newContentNote,
} from '../../engine/workspace/lockfiles';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-lockfiles-unit-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the lockfiles digest is what records already hold: each name, then its content hash or "absent"', () => {
  fs.writeFileSync(path.join(dir, 'package-lock.json'), '{"lockfileVersion": 3}\n');
  const hash = createHash('sha256');
  for (const name of LOCKFILES) {
    const file = path.join(dir, name);
    hash.update(`${name}\0`);
    hash.update(fs.existsSync(file) ? createHash('sha256').update(fs.readFileSync(file)).digest('hex') : 'absent');
    hash.update('\0');
  }
  assert.equal(lockfilesDigest(dir), hash.digest('hex').slice(0, 32));
});

test('the log names the lockfiles added, removed or changed since updateContentCommand last succeeded', () => {
  fs.writeFileSync(path.join(dir, 'package-lock.json'), 'v1\n');
  fs.writeFileSync(path.join(dir, 'Cargo.lock'), 'c\n');
  const before = lockfileStamps(dir);
  assert.deepEqual(Object.keys(before), ['package-lock.json', 'Cargo.lock']);
  assert.deepEqual(changedLockfiles(before, lockfileStamps(dir)), []);
  fs.writeFileSync(path.join(dir, 'package-lock.json'), 'v2\n');
  fs.rmSync(path.join(dir, 'Cargo.lock'));
  fs.writeFileSync(path.join(dir, 'go.sum'), 'g\n');
  const now = lockfileStamps(dir);
  assert.deepEqual(changedLockfiles(before, now), ['package-lock.json', 'Cargo.lock', 'go.sum']);
  assert.equal(
    newContentNote(before, now),
    'updateContentCommand runs again: package-lock.json, Cargo.lock, go.sum changed since it last succeeded',
  );
  // A record from before the stamps were kept: the digest alone says something changed.
  assert.equal(newContentNote(undefined, now), 'a lockfile changed since updateContentCommand last ran: it runs again');
});
