import { DEFAULT_IDLE_STOP_MINUTES, runSupervisor } from '../supervisor/server';
import { parseWorkspaceFlags } from './workspace-args';

/** `microvm __supervise --workspace-folder DIR [--idle-stop-minutes N]`: the supervisor process itself (started detached by clients). */
export async function superviseCommand(args: string[]): Promise<number> {
  const flags = parseWorkspaceFlags(args, '__supervise', { idle: true });
  await runSupervisor({ folder: flags.folder, idleStopMinutes: flags.idleStopMinutes ?? DEFAULT_IDLE_STOP_MINUTES });
  // The VM is stopped and the socket gone: end now, whatever handle a stopped session still holds,
  // so `down` means the process is gone (the next start must not race a lingering one).
  setImmediate(() => process.exit(0));
  return 0;
}
