import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  isMicrovmError,
  MicrovmError,
  type AnyMicrovmError,
  type BuildImageOptions,
  type BuildOptions,
  type ErrorDetailsByCode,
  type ExecOptions,
} from '../../engine';
import { dockerfileError } from '../../engine/build/dockerfile';
import { errorFromWire, errorToWire } from '../../engine/supervisor/wire-error';

/**
 * Details are typed per code. The runtime checks below run under node:test; the
 * `@ts-expect-error` lines are checked by `tsc --noEmit` (which covers test/): each must fail
 * to compile, or tsc reports the directive as unused.
 */

test("isMicrovmError(err, code) narrows details to that code's", () => {
  const err: unknown = new MicrovmError('E_VOLUME', 'the guest could not mount the volume data at /data: EIO', {
    details: { volume: 'data', file: '/h/volumes/data.ext4', failed: 'mount' },
  });
  assert.ok(isMicrovmError(err, 'E_VOLUME'));
  const volume: string = err.details.volume;
  assert.equal(volume, 'data');
  assert.equal(err.details.file, '/h/volumes/data.ext4');
  assert.equal(isMicrovmError(err, 'E_DOCKERFILE'), false);
  assert.equal(isMicrovmError(new Error('x'), 'E_VOLUME'), false);
});

test('checking code on any engine error narrows details (a discriminated union)', () => {
  const errors: unknown[] = [
    dockerfileError('/ws/Dockerfile', 3, 'unknown instruction "FORM"', 'use FROM'),
    new MicrovmError('E_NO_WORKLOAD', 'the guest agent refused the call: no workload', {
      details: { agentStatus: 9, errno: 2 },
    }),
    new MicrovmError('E_BAD_OPTION', 'invalid Image.build option memoryMib'),
  ];
  const seen: string[] = [];
  for (const err of errors) {
    if (!isMicrovmError(err)) continue;
    switch (err.code) {
      case 'E_DOCKERFILE':
        seen.push(`${err.details.file}:${err.details.line}`);
        break;
      case 'E_NO_WORKLOAD':
        seen.push(`status ${err.details.agentStatus}`);
        break;
      default:
        seen.push(err.code);
    }
  }
  assert.deepEqual(seen, ['/ws/Dockerfile:3', 'status 9', 'E_BAD_OPTION']);
});

test('instanceof narrows as isMicrovmError does: details are never `any`', () => {
  const err: unknown = new MicrovmError('E_HOST_DISK_FULL', 'the host disk is full', {
    details: { directory: '/home', file: '/home/v.ext4' },
  });
  assert.ok(err instanceof MicrovmError);
  assert.equal(new Error('x') instanceof MicrovmError, false);
  // @ts-expect-error without checking the code, details are the union of every code's, not `any`.
  const unnarrowed: number = err.details;
  assert.ok(unnarrowed);
  if (err.code !== 'E_HOST_DISK_FULL') assert.fail(err.code);
  assert.equal(err.details.directory, '/home');
});

test('a code without details has none: the property is absent, not undefined', () => {
  const err = new MicrovmError('E_BOOT_TIMEOUT', 'the VM did not answer within 1000 ms', { cause: new Error('slow') });
  const none: undefined = err.details;
  assert.equal(none, undefined);
  assert.equal('details' in err, false);
  assert.equal((err.cause as Error).message, 'slow');
  assert.equal(err.name, 'MicrovmError');
  assert.equal(new MicrovmError('E_ABORTED', 'build was aborted by its signal').name, 'AbortError');
});

test('codes whose details only some failures have: optional, and narrowed to T | undefined', () => {
  const fromHost = new MicrovmError('E_FILE_NOT_FOUND', 'extraFiles: cannot read /nope: ENOENT');
  const fromAgent = new MicrovmError('E_FILE_NOT_FOUND', 'the guest agent refused the call: no such file', {
    details: { agentStatus: 4 },
  });
  assert.equal(fromHost.details?.agentStatus, undefined);
  assert.equal(fromAgent.details?.agentStatus, 4);
});

test('the supervisor carries code and details across its socket; other errors stay plain', () => {
  const sent = new MicrovmError('E_VOLUME', 'cannot grow the volume data', {
    details: { volume: 'data', file: '/v/data.ext4', failed: 'grow' },
  });
  const wire = JSON.parse(JSON.stringify(errorToWire(sent))) as unknown as ReturnType<typeof errorToWire>;
  const received = errorFromWire(sent.message, wire);
  assert.ok(isMicrovmError(received, 'E_VOLUME'));
  assert.deepEqual(received.details, { volume: 'data', file: '/v/data.ext4', failed: 'grow' });
  assert.equal(received.message, sent.message);
  const plain = errorFromWire('boom', errorToWire(new TypeError('boom')));
  assert.equal(plain instanceof MicrovmError, false);
  assert.equal(errorFromWire('x', { code: 'not a code' }) instanceof MicrovmError, false);
});

test('wrong details for a code do not compile (checked by tsc)', () => {
  const failures = [
    // @ts-expect-error E_VOLUME always names its volume: details are required.
    () => new MicrovmError('E_VOLUME', 'no details'),
    // @ts-expect-error E_VOLUME's details are { volume, file }, not a Dockerfile location.
    () => new MicrovmError('E_VOLUME', 'wrong shape', { details: { file: '/ws/Dockerfile', line: 3 } }),
    () =>
      new MicrovmError('E_BAD_OPTION', 'details where none belong', {
        // @ts-expect-error E_BAD_OPTION has no details.
        details: { volume: 'data', file: '/v', failed: 'mount' },
      }),
    // @ts-expect-error the agent status is a number.
    () => new MicrovmError('E_NO_WORKLOAD', 'status as text', { details: { agentStatus: 'E_NO_WORKLOAD' } }),
    // @ts-expect-error codes are the published ones: a misspelt code fails.
    () => new MicrovmError('E_VOLUMES', 'unknown code'),
  ];
  assert.equal(failures.length, 5);
  const narrowed = (err: unknown) => {
    if (!isMicrovmError(err, 'E_BOOT_TIMEOUT')) return;
    // @ts-expect-error E_BOOT_TIMEOUT has no details to read.
    return err.details.file;
  };
  assert.equal(narrowed(new Error('x')), undefined);
  const details: ErrorDetailsByCode['E_HOST_DISK_FULL'] = { directory: '/home' };
  assert.equal(details.file, undefined);
  const any: AnyMicrovmError = new MicrovmError('E_HOST_DISK_FULL', 'the host disk is full', { details });
  assert.equal(any.code, 'E_HOST_DISK_FULL');
});

test('callback options are typed: their parameters are inferred, wrong ones do not compile', () => {
  const build: BuildOptions = {
    onProgress: (event) => {
      void event.phase;
    },
    warmup: async (vm) => {
      await vm.exec({ argv: ['true'] });
    },
  };
  const image: BuildImageOptions = {
    context: '/ws',
    onProgress: (event) => {
      void event.phase;
    },
  };
  const exec: ExecOptions = { argv: ['true'] };
  const wrongField: BuildOptions = {
    onProgress: (event) => {
      // @ts-expect-error a progress event has no field `percent`.
      void event.percent;
    },
  };
  // @ts-expect-error a callback option takes a function, not a string.
  const notAFunction: BuildImageOptions = { context: '/ws', onProgress: 'log' };
  assert.ok(build && image && exec && wrongField && notAFunction);
});

test("no z.any() or z.function() is left in the engine's schemas", () => {
  const offenders: string[] = [];
  const visit = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(full);
      else if (entry.name.endsWith('.ts') && /z\.(any|function)\(\)/.test(fs.readFileSync(full, 'utf8')))
        offenders.push(full);
    }
  };
  visit(path.resolve(__dirname, '../../engine'));
  assert.deepEqual(offenders, []);
});
