import { ExecChild } from '../agent/exec-child';
import { WaitResult } from '../agent/process';
import { linuxSignalNumber } from '../agent/signals';
import { MicrovmError } from '../errors';
import { parseVmCommand } from './args';
import { Progress } from './progress';
import { openSession } from './session';

/** `microvm run [flags] [--] ARGV...`: streams stdio both ways, exits with the guest's code. */
export async function runCommand(args: string[]): Promise<number> {
  const { flags, argv } = parseVmCommand(args, true);
  if (argv.length === 0) throw new MicrovmError('E_BAD_OPTION', 'microvm run needs a command, e.g. `microvm run -- uname -a`');
  const session = await openSession(flags, new Progress());
  try {
    const child = session.vm.spawn({ argv, env: flags.env, cwd: flags.cwd, timeoutMs: 0 });
    const stdinDone = pumpStdin(child);
    await Promise.all([
      pipeOut(() => child.readStdout(), process.stdout),
      pipeOut(() => child.readStderr(), process.stderr),
    ]);
    const result = await child.wait();
    stdinDone.stop();
    return exitCodeOf(result);
  } finally {
    await session.close();
  }
}

export function exitCodeOf(result: WaitResult): number {
  if (result.signal) return 128 + linuxSignalNumber(result.signal);
  return result.exitCode;
}

export async function pipeOut(read: () => Promise<Buffer | null>, out: NodeJS.WriteStream): Promise<void> {
  for (let chunk = await read(); chunk; chunk = await read()) {
    if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
  }
}

/** Forwards host stdin with backpressure, closing the guest's stdin at EOF. */
export function pumpStdin(child: ExecChild): { stop(): void } {
  const stdin = process.stdin;
  const onData = (chunk: Buffer) => {
    stdin.pause();
    child.writeStdin(chunk).then(() => stdin.resume(), () => stdin.resume());
  };
  const onEnd = () => child.closeStdin();
  stdin.on('data', onData);
  stdin.once('end', onEnd);
  return {
    stop: () => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.pause();
      stdin.unref?.();
    },
  };
}
