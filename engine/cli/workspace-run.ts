import { Progress } from './progress';
import { runInteractive, runPiped, terminalSize } from './stdio';
import { parseWorkspaceFlags } from './workspace-args';
import { startWorkspace, workspaceSession } from './workspace-session';

/**
 * `microvm run --workspace-folder DIR [-- CMD...]`: the workspace as the extension opens it
 * (image, features, mounts, volumes, lifecycle hooks), then CMD as the remote user in the
 * workspace folder with stdio streamed, or an interactive login shell with a pty when no
 * CMD is given. The exit status is the command's; the VM stops afterwards.
 */
export async function workspaceRunCommand(args: string[]): Promise<number> {
  const flags = parseWorkspaceFlags(args, 'run', { vm: true, argv: true, config: true });
  const progress = new Progress();
  const { session } = await workspaceSession(flags, progress);
  try {
    await startWorkspace(session, progress);
    if (flags.argv.length > 0) return await runPiped(session.spawn(flags.argv));
    return await runInteractive(
      session.spawnPty([session.shell, '-l'], terminalSize(), { TERM: process.env.TERM || 'xterm-256color' }),
    );
  } finally {
    await session.stop();
  }
}
