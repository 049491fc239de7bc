import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseVmCommand } from '../../engine/cli/args';
import { isMicrovmError } from '../../engine/errors';
import { execOptionsSchema, parseOptions, poolOptionsSchema } from '../../engine/options';
import { buildOptionsSchema } from '../../engine/api/image';

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
  const build = parseOptions(buildOptionsSchema, undefined, 'Image.build');
  assert.equal(build.memoryMib, 256);
  assert.equal(build.vcpus, 1);
  assert.equal(build.network, 'outbound');
  assert.equal(build.pullPolicy, 'missing');
  assert.equal(build.snapshot, true);
  assert.equal(build.warmupTag, '');
  refused(
    () => parseOptions(buildOptionsSchema, { listenerRequired: true }, 'Image.build'),
    /listenerRequired needs guestPort/,
  );
  const pool = parseOptions(poolOptionsSchema, {}, 'pool');
  assert.equal(pool.min, 1);
  assert.equal(pool.max, 1);
  assert.equal(pool.acquireTimeoutMs, 60_000);
  assert.equal(parseOptions(execOptionsSchema, { argv: ['true'] }, 'exec').timeoutMs, 60_000);
});

test('the CLI passes everything after the first non-flag word to the guest', () => {
  assert.deepEqual(parseVmCommand(['--memory', '512', 'ls', '-la'], true), {
    flags: { env: {}, publish: [], allow: [], memoryMib: 512 },
    argv: ['ls', '-la'],
  });
  assert.deepEqual(parseVmCommand(['--env=A=1', '--', '--weird'], true).argv, ['--weird']);
  refused(() => parseVmCommand(['--memory', 'big'], true), /--memory/, /"big"/);
  refused(() => parseVmCommand(['--bogus'], true), /unknown option --bogus/);
  refused(() => parseVmCommand(['--cpus'], true), /--cpus needs a value/);
  refused(() => parseVmCommand(['extra'], false), /unexpected argument "extra"/);
});

test('--publish HOST:GUEST and --network are parsed and checked', () => {
  const { flags } = parseVmCommand(['--publish', '8080:3000', '--publish=5173', '--network', 'none', 'sh'], true);
  assert.deepEqual(flags.publish, [
    { hostPort: 8080, guestPort: 3000 },
    { hostPort: 5173, guestPort: 5173 },
  ]);
  assert.equal(flags.network, 'none');
  assert.throws(() => parseVmCommand(['--publish', '8080:0', 'sh'], true), /invalid --publish value "8080:0"/);
  assert.throws(() => parseVmCommand(['--publish', '70000:80', 'sh'], true), /HOST:GUEST/);
  assert.throws(() => parseVmCommand(['--network', 'bridge', 'sh'], true), /expected outbound, none, allowlist, learn/);
});

test('stageFiles takes the list with modes or the record form, and reports a bad entry at its path', () => {
  const listed = parseOptions(
    execOptionsSchema,
    { argv: ['true'], stageFiles: [{ path: '/a', data: 'x', mode: 0o755 }] },
    'exec',
  );
  assert.deepEqual(listed.stageFiles, [{ path: '/a', data: 'x', mode: 0o755 }]);
  const data = Buffer.from('y');
  const recorded = parseOptions(
    execOptionsSchema,
    { argv: ['true'], stageFiles: { '/app/x.js': data, '/app/y.txt': 'z' } },
    'exec',
  );
  assert.deepEqual(recorded.stageFiles, [
    { path: '/app/x.js', data },
    { path: '/app/y.txt', data: 'z' },
  ]);
  assert.deepEqual(parseOptions(execOptionsSchema, { argv: ['true'] }, 'exec').stageFiles, []);
  refused(
    () => parseOptions(execOptionsSchema, { argv: ['true'], stageFiles: { 'app/x.js': 'x' } }, 'exec'),
    /stageFiles\.app\/x\.js/,
    /absolute/,
  );
  refused(
    () => parseOptions(execOptionsSchema, { argv: ['true'], stageFiles: { '/a': 3 } }, 'exec'),
    /stageFiles\.\/a/,
    /string or a Buffer/,
    /got 3/,
  );
  refused(
    () => parseOptions(execOptionsSchema, { argv: ['true'], stageFiles: [{ path: 'rel', data: '' }] }, 'exec'),
    /stageFiles\.0\.path/,
    /"rel"/,
  );
  refused(() => parseOptions(execOptionsSchema, { argv: ['true'], stageFiles: 'nope' }, 'exec'), /stageFiles/);
});
