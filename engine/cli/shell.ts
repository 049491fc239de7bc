import { parseVmCommand } from './args';
import { Progress } from './progress';
import { exitCodeOf, pipeOut } from './run';
import { openSession } from './session';

/** Starts the image's best shell: bash when it has one, else sh. */
const SHELL_ARGV = ['/bin/sh', '-c', 'if command -v bash >/dev/null 2>&1; then exec bash -l; fi; exec sh -l'];

/** `microvm shell [flags]`: an interactive pty in the guest, raw mode, resize follows. */
export async function shellCommand(args: string[]): Promise<number> {
  const { flags } = parseVmCommand(args, false);
  const session = await openSession(flags, new Progress());
  const stdin = process.stdin;
  const stdout = process.stdout;
  try {
    const child = session.vm.spawn({
      argv: SHELL_ARGV,
      env: { TERM: process.env.TERM || 'xterm-256color', PS1: '\\u@microvm:\\w\\$ ', ...flags.env },
      cwd: flags.cwd,
      timeoutMs: 0,
      tty: true,
      winsize: { rows: stdout.rows || 24, cols: stdout.columns || 80 },
    });
    const onResize = () => child.resize(stdout.rows || 24, stdout.columns || 80);
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
  } finally {
    await session.close();
  }
}
