import { DEFAULT_IDLE_STOP_MINUTES, runSupervisor } from '../supervisor/server';
import { parseWorkspaceFlags } from './workspace-args';

/** `microvm __supervise --workspace-folder DIR [--idle-stop-minutes N]`: the supervisor process itself (started detached by clients). */
export async function superviseCommand(args: string[]): Promise<number> {
  const flags = parseWorkspaceFlags(args, '__supervise', { idle: true });
  await runSupervisor({ folder: flags.folder, idleStopMinutes: flags.idleStopMinutes ?? DEFAULT_IDLE_STOP_MINUTES });
  return 0;
}
