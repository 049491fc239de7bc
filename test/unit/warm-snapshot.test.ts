import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mismatch } from '../../engine/workspace/warm-snapshot';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-warm-unit-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function disk(name: string, bytes: number): { file: string; size: number; mtimeMs: number } {
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.alloc(bytes));
  const stat = fs.statSync(file);
  return { file, size: stat.size, mtimeMs: stat.mtimeMs };
}

test('a suspended state is resumed only with the same key, its files present and every disk as it was left', () => {
  const saved = path.join(dir, 'saved');
  fs.mkdirSync(saved);
  fs.writeFileSync(path.join(saved, 'state'), 'x');
  fs.writeFileSync(path.join(saved, 'memory'), 'x');
  const a = disk('a.ext4', 10);
  const b = disk('b.ext4', 20);
  const suspended = { key: 'k1', savedAt: '', disks: [a, b] };
  assert.equal(mismatch(suspended, 'k1', [a.file, b.file], saved), undefined);
  assert.match(mismatch(suspended, 'k2', [a.file, b.file], saved) ?? '', /inputs changed/);
  assert.match(mismatch(suspended, 'k1', [a.file], saved) ?? '', /set of disks changed/);
  fs.appendFileSync(b.file, 'written while suspended');
  assert.match(mismatch(suspended, 'k1', [a.file, b.file], saved) ?? '', /b\.ext4 changed/);
  fs.rmSync(b.file);
  assert.match(mismatch(suspended, 'k1', [a.file, b.file], saved) ?? '', /b\.ext4 changed/);
  fs.rmSync(path.join(saved, 'memory'));
  assert.match(mismatch(suspended, 'k1', [a.file, b.file], saved) ?? '', /memory file is gone/);
});
