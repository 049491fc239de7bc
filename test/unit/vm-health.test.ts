import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MicrovmError } from '../../engine/errors';
import { buildQemuArgv, volumeDriveId } from '../../engine/qemu/argv';
import { QemuSpec } from '../../engine/qemu/types';
import { classifyRunState, fullDriveOf } from '../../engine/qemu/run-state';
import { checkHealth, HealthProbe } from '../../engine/vm/health';

test('QMP run states: running, paused on a write error (disk full), paused by the host, dead', () => {
  assert.equal(classifyRunState('running'), 'running');
  assert.equal(classifyRunState('io-error'), 'disk-full');
  for (const s of ['paused', 'inmigrate', 'postmigrate', 'finish-migrate', 'save-vm', 'restore-vm', 'prelaunch'])
    assert.equal(classifyRunState(s), 'paused', s);
  for (const s of ['guest-panicked', 'shutdown', 'internal-error', 'something-new'])
    assert.equal(classifyRunState(s), 'dead', s);
});

test('only a BLOCK_IO_ERROR with nospace and action stop means "host disk full"', () => {
  const data = {
    device: 'vol0',
    'node-name': '#block123',
    operation: 'write',
    action: 'stop',
    nospace: true,
    reason: 'No space left on device',
  };
  assert.equal(fullDriveOf({ event: 'BLOCK_IO_ERROR', data }), 'vol0');
  assert.equal(
    fullDriveOf({ event: 'BLOCK_IO_ERROR', data: { ...data, nospace: false, reason: 'Input/output error' } }),
    undefined,
  );
  assert.equal(fullDriveOf({ event: 'BLOCK_IO_ERROR', data: { ...data, action: 'report' } }), undefined);
  assert.equal(fullDriveOf({ event: 'BLOCK_IO_ERROR', data: { ...data, device: 42 } }), undefined);
  assert.equal(fullDriveOf({ event: 'BLOCK_IO_ERROR' }), undefined);
  assert.equal(fullDriveOf({ event: 'STOP', data }), undefined);
});

test('volume drives pause the guest on ENOSPC (werror=enospc); the read-only root disk has no such option', () => {
  const spec: QemuSpec = {
    arch: 'x86_64',
    accel: 'tcg',
    memoryMib: 256,
    vcpus: 1,
    kernel: '/k',
    initrd: '/i',
    cmdline: [],
    rootDisk: '/root.ext4',
    memory: { kind: 'anonymous' },
    agentSocket: '/s/a',
    qmpSocket: '/s/q',
    seccomp: true,
    volumes: [
      { file: '/home/v/a.ext4', serial: 'microvm-vol0' },
      { file: '/home/v/b,c.ext4', serial: 'microvm-vol1' },
    ],
  };
  const drives = buildQemuArgv(spec).flatMap((arg, i, all) => (arg === '-drive' ? [all[i + 1]] : []));
  assert.deepEqual(drives.slice(1), [
    `id=${volumeDriveId(0)},file=/home/v/a.ext4,format=raw,if=none,discard=unmap,werror=enospc`,
    `id=${volumeDriveId(1)},file=/home/v/b,,c.ext4,format=raw,if=none,discard=unmap,werror=enospc`,
  ]);
  assert.doesNotMatch(drives[0]!, /werror/);
});

const timeout = () => new MicrovmError('E_AGENT_TIMEOUT', 'no answer');
function probe(status: string | Error, ping: 'ok' | Error): HealthProbe & { pinged: number } {
  const p = {
    pinged: 0,
    runStatus: async () => {
      if (status instanceof Error) throw status;
      return status;
    },
    ping: async () => {
      p.pinged++;
      if (ping instanceof Error) throw ping;
    },
  };
  return p;
}

test('health: a running guest whose agent answers is healthy; one that misses the ping is unresponsive', async () => {
  assert.equal(await checkHealth(probe('running', 'ok')), 'healthy');
  assert.equal(await checkHealth(probe('running', timeout())), 'unresponsive');
  assert.equal(await checkHealth(probe('running', new MicrovmError('E_VM_EXITED', 'gone'))), 'dead');
});

test('health: QEMU is asked first, so a guest paused on a full disk (or by a snapshot) is never called unresponsive', async () => {
  const full = probe('io-error', timeout());
  assert.equal(await checkHealth(full), 'disk-full');
  assert.equal(full.pinged, 0, 'a paused guest is not pinged');
  assert.equal(await checkHealth(probe('postmigrate', timeout())), 'paused');
  assert.equal(
    await checkHealth(
      probe('running', new MicrovmError('E_HOST_DISK_FULL', 'paused meanwhile', { details: { directory: '/tmp' } })),
    ),
    'disk-full',
  );
});

test('health: a QEMU that does not answer QMP is unresponsive; a closed QMP socket means the VM is gone', async () => {
  assert.equal(await checkHealth(probe(timeout(), 'ok')), 'unresponsive');
  assert.equal(
    await checkHealth(probe(new MicrovmError('E_QMP', 'the QMP connection closed (QEMU exited)'), 'ok')),
    'dead',
  );
});
