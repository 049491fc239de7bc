import type { QmpEvent } from './qmp';

/**
 * What a QMP `query-status` run state means for the engine:
 * - `running`: the guest runs, so a silent agent is the agent's fault;
 * - `disk-full`: QEMU paused the guest on a write error (werror=enospc), nothing is lost;
 * - `paused`: the host paused it on purpose (a snapshot, a migration, a restore in progress);
 * - `dead`: the guest cannot run again (panicked, shut down, an internal error).
 */
export type RunState = 'running' | 'disk-full' | 'paused' | 'dead';

const PAUSED = new Set([
  'paused',
  'prelaunch',
  'inmigrate',
  'postmigrate',
  'finish-migrate',
  'save-vm',
  'restore-vm',
  'suspended',
  'debug',
  'colo',
  'watchdog',
]);

export function classifyRunState(status: string): RunState {
  if (status === 'running') return 'running';
  if (status === 'io-error') return 'disk-full';
  if (PAUSED.has(status)) return 'paused';
  return 'dead';
}

/**
 * The drive QEMU paused the guest for because the host file system is full: a
 * BLOCK_IO_ERROR with `nospace` and action `stop` (what werror=enospc does on ENOSPC).
 * Other I/O errors are reported to the guest and need nothing from the host.
 */
export function fullDriveOf(event: QmpEvent): string | undefined {
  if (event.event !== 'BLOCK_IO_ERROR' || typeof event.data !== 'object' || event.data === null) return undefined;
  const data = event.data as { device?: unknown; nospace?: unknown; action?: unknown };
  if (data.nospace !== true || data.action !== 'stop' || typeof data.device !== 'string') return undefined;
  return data.device;
}
