import * as path from 'node:path';
import { AgentClient } from '../agent/client';
import { mib, spaceOf } from '../disk-full';
import { withDeadline } from '../agent/process';
import { isMicrovmError, MicrovmError } from '../errors';
import { volumeDriveId } from '../qemu/argv';
import { QmpClient, QmpEvent } from '../qemu/qmp';
import { classifyRunState, fullDriveOf } from '../qemu/run-state';

/** What a health check found: the VM answers, does not, is paused on a full disk or by the host, or has ended. */
export type HealthVerdict = 'healthy' | 'unresponsive' | 'disk-full' | 'paused' | 'dead';

/** The two questions a health check asks: QEMU's run state (QMP query-status) and an agent ping. */
export interface HealthProbe {
  runStatus(): Promise<string>;
  ping(): Promise<void>;
}

/** QEMU's main loop answers QMP in milliseconds unless QEMU itself is stuck; the agent's ping likewise. */
export const HEALTH_DEADLINE_MS = { qmp: 2000, ping: 3000 } as const;

/**
 * Whether a VM can serve calls. QEMU is asked first: a guest that QEMU paused (a full host
 * disk, a snapshot being written) cannot answer a ping and is not the agent's fault. Only a
 * running guest whose agent misses the ping deadline, or a QEMU that does not answer QMP,
 * is unresponsive.
 */
export async function checkHealth(probe: HealthProbe): Promise<HealthVerdict> {
  let status: string;
  try {
    status = await probe.runStatus();
  } catch (err) {
    return isMicrovmError(err, 'E_AGENT_TIMEOUT') ? 'unresponsive' : 'dead';
  }
  const state = classifyRunState(status);
  if (state !== 'running') return state;
  try {
    await probe.ping();
    return 'healthy';
  } catch (err) {
    if (isMicrovmError(err, 'E_AGENT_TIMEOUT')) return 'unresponsive';
    return isMicrovmError(err, 'E_HOST_DISK_FULL') ? 'disk-full' : 'dead';
  }
}

/**
 * A VM's health: checks after any call misses its deadline (and when the pool takes the VM
 * back), and follows QMP for QEMU pausing the guest on a full host disk. While paused that
 * way, missed deadlines fail with E_HOST_DISK_FULL instead of a timeout.
 */
export class HealthWatch {
  private checking: Promise<HealthVerdict> | undefined;
  private full: MicrovmError | undefined;
  private readonly fullListeners = new Set<(error: MicrovmError) => void>();

  constructor(
    private readonly vmId: string,
    private readonly qmp: QmpClient,
    private readonly agent: AgentClient,
    private readonly volumeFiles: string[],
    private readonly onUnresponsive: (error: MicrovmError) => void,
  ) {
    qmp.onEvent((event) => this.onEvent(event));
    agent.connection.onTimeout(() => void this.check());
    agent.connection.explainTimeout = () => this.full;
  }

  /** The E_HOST_DISK_FULL error while QEMU keeps the guest paused for it. */
  get diskFull(): MicrovmError | undefined {
    return this.full;
  }

  onDiskFull(listener: (error: MicrovmError) => void): () => void {
    this.fullListeners.add(listener);
    return () => this.fullListeners.delete(listener);
  }

  /** One check at a time; an unresponsive verdict is handed to the owner, who stops the VM. */
  check(): Promise<HealthVerdict> {
    this.checking ??= checkHealth({
      runStatus: () => this.runStatus(),
      ping: () => this.agent.ping(HEALTH_DEADLINE_MS.ping),
    })
      .then((verdict) => {
        if (verdict === 'unresponsive') this.onUnresponsive(this.unresponsiveError());
        return verdict;
      })
      .finally(() => {
        this.checking = undefined;
      });
    return this.checking;
  }

  private async runStatus(): Promise<string> {
    const reply = await withDeadline(
      this.qmp.execute('query-status'),
      HEALTH_DEADLINE_MS.qmp,
      () => new MicrovmError('E_AGENT_TIMEOUT', `QEMU did not answer query-status within ${HEALTH_DEADLINE_MS.qmp} ms`),
    );
    return String((reply as { status?: unknown }).status);
  }

  private onEvent(event: QmpEvent): void {
    if (event.event === 'RESUME') this.full = undefined;
    const drive = fullDriveOf(event);
    if (drive === undefined || this.full) return;
    this.full = this.diskFullError(drive);
    for (const listener of this.fullListeners) listener(this.full);
  }

  private unresponsiveError(): MicrovmError {
    return new MicrovmError(
      'E_AGENT_UNRESPONSIVE',
      `the guest agent of VM ${this.vmId} stopped answering: a call missed its deadline and a ping got no reply within ${HEALTH_DEADLINE_MS.ping} ms while QEMU reports the guest running; ` +
        'the VM is stopped (QMP quit, then SIGKILL) and its pool boots a replacement: acquire another VM',
    );
  }

  private diskFullError(drive: string): MicrovmError {
    const file = this.volumeFiles.find((_, i) => volumeDriveId(i) === drive) ?? `drive ${drive}`;
    const directory = path.dirname(file);
    return new MicrovmError(
      'E_HOST_DISK_FULL',
      `the host disk is full: QEMU paused VM ${this.vmId} because a write to ${file} failed with ENOSPC (${describeSpace(directory)}); ` +
        `nothing is lost: free space on the file system holding ${directory}, then call vm.resume(); or release the VM`,
      { details: { file, directory } },
    );
  }
}

function describeSpace(directory: string): string {
  const space = spaceOf(directory);
  return space
    ? `${mib(space.freeBytes)} free of ${mib(space.totalBytes)} in ${directory}`
    : `${directory} cannot be inspected`;
}
