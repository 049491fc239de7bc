import { TCG_WARNING } from '../accel/decide';
import { formatProblem } from '../devcontainer/problems';
import type { PlanSettings } from '../devcontainer/plan';
import { MicrovmError } from '../errors';
import { DEFAULT_PROTECT } from '../mount/types';
import { prepareWorkspace, type PreparedWorkspace } from '../workspace/prepare';
import { Session } from '../workspace/session';
import { Progress } from './progress';
import { guestOutputFor } from './terminal-text';

/** Hook output on stderr: filtered on a terminal (no sequence but colours), as it came on a file or pipe. */
const hookOutput = guestOutputFor(process.stderr);
import type { WorkspaceFlags } from './workspace-args';

/**
 * A workspace as the extension opens it, for the CLI's workspace verbs (`build`, `run
 * --workspace-folder`): the configuration read and pinned, every problem on stderr, then a
 * Session whose log, build output and hook output go to stderr too (stdout stays the
 * command's). A configuration that changed since it was last accepted, in a way that takes
 * more from this machine, is refused unless `--accept-config-changes` says yes: the folder
 * may have been written by a VM.
 */
export async function workspaceSession(
  flags: WorkspaceFlags,
  progress: Progress,
  signal?: AbortSignal,
): Promise<{ session: Session; prepared: PreparedWorkspace }> {
  progress.step(`reading the configuration of ${flags.folder}`);
  const prepared = await prepareWorkspace({
    folder: flags.folder,
    settings: cliPlanSettings(flags),
    allowLocalEnv: flags.allowLocalEnv,
    ...(flags.configFile === undefined ? {} : { configFile: flags.configFile }),
    onProgress: (step) => progress.detail(step),
    signal,
    onConfigChanged: async (file, changes) => {
      for (const change of changes)
        progress.note(
          `${file}: ${change.path} changed since it was last accepted (${change.category}): ${JSON.stringify(change.before)} -> ${JSON.stringify(change.after)}`,
        );
      if (flags.acceptConfigChanges) return 'apply';
      throw new MicrovmError(
        'E_CONFIG',
        `${file} changed since this folder was last opened, in ways that take more from this machine (listed above); ` +
          'check them (a VM can write the folder), then run again with --accept-config-changes',
      );
    },
    onOverLimits: async (over) => {
      for (const o of over) progress.note(`${o.message}; the workspace gets ${o.allowed}`);
      return true;
    },
  });
  progress.finish();
  if (!prepared) throw new MicrovmError('E_CONFIG', `the workspace in ${flags.folder} was not opened`);
  const file = prepared.resolved.file?.file ?? 'devcontainer.json';
  for (const problem of prepared.problems) progress.note(`${problem.severity}: ${formatProblem(file, problem)}`);
  const errors = prepared.problems.filter((p) => p.severity === 'error');
  if (errors.length > 0) {
    throw new MicrovmError(
      'E_CONFIG',
      `${file} has ${errors.length} problem(s) that keep the folder from opening as described (listed above)`,
    );
  }
  const session = new Session(
    prepared.plan,
    {
      log: (line) => progress.note(line),
      baking: () => undefined,
      booting: () => undefined,
      portsChanged: () => undefined,
      exited: (error) => progress.note(`the VM ended: ${error.message}`),
      output: (_label, chunk) => void process.stderr.write(hookOutput(chunk)),
      started: (o) => progress.note(`> ${o.name ? `${o.hook} (${o.name})` : o.hook}: ${o.command}`),
      hookFailed: (description) => progress.note(`warning: ${description}`),
      portForwarded: (port) => progress.note(`forwarding guest port ${port.guestPort} to 127.0.0.1:${port.hostPort}`),
    },
    prepared.lifecycle,
  );
  session.typeProjection = flags.typeProjection;
  let current = '';
  session.onProgress = (step) => {
    const head = step.split(':', 1)[0] ?? '';
    if (head !== current) progress.step(step);
    else progress.detail(step);
    current = head;
  };
  return { session, prepared };
}

/** The settings the CLI's workspace verbs open a folder with (the extension reads its own). */
export function cliPlanSettings(
  flags: Pick<WorkspaceFlags, 'image' | 'network' | 'allow' | 'trustCertificates'>,
): PlanSettings {
  return {
    image: flags.image ?? '',
    memoryMib: 1024,
    cpus: 2,
    network: flags.network,
    allowedHosts: flags.allow,
    trusted: false,
    symlinks: 'opaque',
    protect: [...DEFAULT_PROTECT],
    git: 'writable',
    trustCertificates: flags.trustCertificates,
  };
}

/** Starts the workspace's VM and waits for its hooks, with the TCG warning when it applies. */
export async function startWorkspace(session: Session, progress: Progress): Promise<void> {
  const vm = await session.start();
  progress.finish();
  if (vm.accel.isolation === 'emulated') progress.note(`warning: ${TCG_WARNING}`);
  await session.hooksSettled();
}
