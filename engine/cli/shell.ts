import { parseVmCommand } from './args';
import { Progress } from './progress';
import { runInteractive, terminalSize } from './stdio';
import { openSession } from './session';

/**
 * Starts the image's best shell: bash when it has one, else sh. The prompt travels as
 * MICROVM_PS1 because a non-interactive bash (the wrapper, where /bin/sh is bash) unsets PS1.
 */
const SHELL_ARGV = [
  '/bin/sh',
  '-c',
  'export PS1="$MICROVM_PS1"; unset MICROVM_PS1; if command -v bash >/dev/null 2>&1; then exec bash -l; fi; exec sh -l',
];
const DEFAULT_PS1 = '\\u@microvm:\\w\\$ ';

/** `microvm shell [flags]`: an interactive pty in the guest, raw mode, resize follows. */
export async function shellCommand(args: string[]): Promise<number> {
  const { flags } = parseVmCommand(args, false);
  const session = await openSession(flags, new Progress());
  try {
    const child = session.vm.spawn({
      argv: SHELL_ARGV,
      env: { TERM: process.env.TERM || 'xterm-256color', ...flags.env, MICROVM_PS1: flags.env.PS1 ?? DEFAULT_PS1 },
      cwd: flags.cwd,
      timeoutMs: 0,
      tty: true,
      winsize: terminalSize(),
    });
    return await runInteractive(child);
  } finally {
    await session.close();
  }
}
