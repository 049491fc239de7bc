import type { ExecChild } from '../agent/exec-child';
import { Progress } from './progress';
import { exitCodeOf, pipeOut, pumpStdin } from './stdio';
import { parseWorkspaceFlags } from './workspace-args';
import { startWorkspace, workspaceSession } from './workspace-session';

/**
 * `microvm run --workspace-folder DIR [-- CMD...]`: the workspace as the extension opens it
 * (image, features, mounts, volumes, lifecycle hooks), then CMD as the remote user in the
 * workspace folder with stdio streamed, or an interactive login shell with a pty when no
 * CMD is given. The exit status is the command's; the VM stops afterwards.
 */
export async function workspaceRunCommand(args: string[]): Promise<number> {
  const flags = parseWorkspaceFlags(args, 'run', { vm: true, argv: true });
  const progress = new Progress();
  const { session } = await workspaceSession(flags, progress);
  try {
    await startWorkspace(session, progress);
    if (flags.argv.length > 0) return await piped(session.spawn(flags.argv));
    return await interactive(session.spawnPty([session.shell, '-l'], terminalSize(), { TERM: process.env.TERM || 'xterm-256color' }));
  } finally {
    await session.stop();
  }
}

async function piped(child: ExecChild): Promise<number> {
  const stdinDone = pumpStdin(child);
  try {
    await Promise.all([pipeOut(() => child.readStdout(), process.stdout), pipeOut(() => child.readStderr(), process.stderr)]);
    return exitCodeOf(await child.wait());
  } finally {
    stdinDone.stop();
  }
}

function terminalSize(): { rows: number; cols: number } {
  return { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 };
}

/** Raw mode in, pty out, resizes followed. */
async function interactive(child: ExecChild): Promise<number> {
  const { stdin, stdout } = process;
  const onResize = () => {
    const size = terminalSize();
    child.resize(size.rows, size.cols);
  };
  const onData = (chunk: Buffer) => void child.writeStdin(chunk);
  stdout.on('resize', onResize);
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.on('data', onData);
  stdin.once('end', () => child.closeStdin());
  try {
    await pipeOut(() => child.readStdout(), stdout);
    return exitCodeOf(await child.wait());
  } finally {
    stdout.off('resize', onResize);
    stdin.off('data', onData);
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
  }
}
