import { MicrovmError } from '../errors';
import { namesWorkspaceFolder, parseVmCommand } from './args';
import { Progress } from './progress';
import { runPiped } from './stdio';
import { openSession } from './session';
import { workspaceRunCommand } from './workspace-run';

/**
 * `microvm run [flags] [--] ARGV...`: streams stdio both ways, exits with the guest's code.
 * `signal` (Ctrl-C) stops the build or boot under way, or kills the guest command.
 */
export async function runCommand(args: string[], signal?: AbortSignal): Promise<number> {
  if (namesWorkspaceFolder(args)) return workspaceRunCommand(args);
  const { flags, argv } = parseVmCommand(args, true);
  if (argv.length === 0)
    throw new MicrovmError('E_BAD_OPTION', 'microvm run needs a command, e.g. `microvm run -- uname -a`');
  const session = await openSession(flags, new Progress(), signal);
  try {
    const child = session.vm.spawn({ argv, env: flags.env, cwd: flags.cwd, timeoutMs: 0, signal });
    return await runPiped(child);
  } finally {
    await session.close();
  }
}
