import { TCG_WARNING } from '../accel/decide';
import { isMicrovmError, MicrovmError } from '../errors';
import { SupervisorClient } from '../supervisor/client';
import type { UpResult } from '../supervisor/protocol';
import { Progress } from './progress';
import { showEvent } from './supervisor-events';
import { parseWorkspaceFlags, WorkspaceFlags } from './workspace-args';
import { cliPlanSettings } from './workspace-session';

/**
 * `microvm up --workspace-folder DIR`: starts the folder's supervisor (or attaches to the one
 * running), which opens the workspace as the extension does; returns once the VM is ready and
 * its hooks have settled, printing one JSON line as the reference devcontainer CLI does. The
 * VM keeps running after this returns, until `microvm down` or the idle stop.
 */
export async function upCommand(args: string[], signal?: AbortSignal): Promise<number> {
  try {
    const flags = parseWorkspaceFlags(args, 'up', { vm: true, idle: true, config: true });
    const result = await up(flags, signal);
    process.stdout.write(`${JSON.stringify({ outcome: 'success', ...result })}\n`);
    return 0;
  } catch (err) {
    const code = isMicrovmError(err) ? err.code : 'E_INTERNAL';
    process.stdout.write(
      `${JSON.stringify({ outcome: 'error', message: (err as Error)?.message ?? String(err), code })}\n`,
    );
    process.stderr.write(`microvm: error [${code}]: ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}

type UpOutput = Pick<UpResult, 'containerId' | 'remoteUser' | 'remoteWorkspaceFolder' | 'services' | 'serviceForwards'>;

/**
 * Ctrl-C stops the start only when this command began it (the supervisor was idle or stopped
 * when it attached): a start another client asked for, or a VM already running, is theirs, and
 * Ctrl-C then only detaches.
 */
async function up(flags: WorkspaceFlags, signal?: AbortSignal): Promise<UpOutput> {
  const progress = new Progress();
  progress.step(`starting the workspace supervisor of ${flags.folder}`);
  const client = (await SupervisorClient.connect(flags.folder, {
    kind: 'cli',
    ...(flags.idleStopMinutes !== undefined ? { idleStopMinutes: flags.idleStopMinutes } : {}),
  })) as SupervisorClient;
  client.onEvent((event) => showEvent(event, progress));
  const ours = client.hello.state === 'idle' || client.hello.state === 'stopped';
  const detach = () => client.close();
  if (!ours) signal?.addEventListener('abort', detach, { once: true });
  let declined = false;
  try {
    const result = await client.up(
      {
        settings: cliPlanSettings(flags),
        allowLocalEnv: flags.allowLocalEnv,
        ...(flags.configFile === undefined ? {} : { configFile: flags.configFile }),
        typeProjection: flags.typeProjection,
        waitForHooks: true,
      },
      {
        configChanged: async (file, changes) => {
          for (const change of changes)
            progress.note(
              `${file}: ${change.path} changed since it was last accepted (${change.category}): ${JSON.stringify(change.before)} -> ${JSON.stringify(change.after)}`,
            );
          declined = !flags.acceptConfigChanges;
          return flags.acceptConfigChanges ? 'apply' : 'cancel';
        },
        overLimits: async (over) => {
          for (const o of over) progress.note(`${o.message}; the workspace gets ${o.allowed}`);
          return true;
        },
      },
      ours && signal ? { signal } : {},
    );
    progress.finish();
    if (result.emulated) progress.note(`warning: ${TCG_WARNING}`);
    return {
      containerId: result.containerId,
      remoteUser: result.remoteUser,
      remoteWorkspaceFolder: result.remoteWorkspaceFolder,
      // A compose workspace: its other services, and the forwards forwardPorts asked of them.
      ...(result.services ? { services: result.services, serviceForwards: result.serviceForwards ?? [] } : {}),
    };
  } catch (err) {
    if (declined) {
      throw new MicrovmError(
        'E_CONFIG',
        'devcontainer.json changed since this folder was last opened, in ways that take more from this machine (listed above); ' +
          'check them (a VM can write the folder), then run again with --accept-config-changes',
      );
    }
    throw err;
  } finally {
    signal?.removeEventListener('abort', detach);
    progress.finish();
    client.close();
  }
}
