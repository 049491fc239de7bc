import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseVmCommand } from '../../engine/cli/args';
import { isMicrovmError } from '../../engine/errors';
import { buildOptionsSchema, execOptionsSchema, parseOptions, poolOptionsSchema } from '../../engine/options';

function refused(fn: () => unknown, ...fragments: RegExp[]): void {
  assert.throws(fn, (err) => isMicrovmError(err, 'E_BAD_OPTION') && fragments.every((f) => f.test(err.message)));
}

test('option errors name the field and the bad value', () => {
  refused(() => parseOptions(buildOptionsSchema, { memoryMib: 'lots' }, 'Image.build'), /memoryMib/, /"lots"/);
  refused(() => parseOptions(buildOptionsSchema, { memoryMb: 512 }, 'Image.build'), /unknown option\(s\) memoryMb/);
  refused(() => parseOptions(poolOptionsSchema, { min: 3, max: 2 }, 'pool'), /min must not exceed max/);
  refused(() => parseOptions(execOptionsSchema, { argv: [] }, 'exec'), /argv/, /at least one/);
  refused(() => parseOptions(execOptionsSchema, { argv: ['true'], cwd: 'relative' }, 'exec'), /cwd/, /absolute/);
  refused(() => parseOptions(execOptionsSchema, { argv: ['true'], timeoutMs: -1 }, 'exec'), /timeoutMs/, /-1/);
  refused(() => parseOptions(execOptionsSchema, { argv: ['true'], env: { 'A=B': 'x' } }, 'exec'), /env/);
});

test('defaults follow the design: 256 MiB, 1 vCPU, 60 s exec timeout, pool of 1', () => {
  assert.deepEqual(parseOptions(buildOptionsSchema, undefined, 'Image.build'), { memoryMib: 256, vcpus: 1, env: {} });
  const pool = parseOptions(poolOptionsSchema, {}, 'pool');
  assert.equal(pool.min, 1);
  assert.equal(pool.max, 1);
  assert.equal(pool.acquireTimeoutMs, 60_000);
  assert.equal(parseOptions(execOptionsSchema, { argv: ['true'] }, 'exec').timeoutMs, 60_000);
});

test('the CLI passes everything after the first non-flag word to the guest', () => {
  assert.deepEqual(parseVmCommand(['--memory', '512', 'ls', '-la'], true), { flags: { env: {}, memoryMib: 512 }, argv: ['ls', '-la'] });
  assert.deepEqual(parseVmCommand(['--env=A=1', '--', '--weird'], true).argv, ['--weird']);
  refused(() => parseVmCommand(['--memory', 'big'], true), /--memory/, /"big"/);
  refused(() => parseVmCommand(['--bogus'], true), /unknown option --bogus/);
  refused(() => parseVmCommand(['--cpus'], true), /--cpus needs a value/);
  refused(() => parseVmCommand(['extra'], false), /unexpected argument "extra"/);
});
