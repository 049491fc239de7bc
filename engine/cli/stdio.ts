import type { ExecChild } from '../agent/exec-child';
import type { WaitResult } from '../agent/process';
import { linuxSignalNumber } from '../agent/signals';

/** A guest process's end as an exit status: its code, or 128+N when signal N ended it. */
export function exitCodeOf(result: WaitResult): number {
  if (result.signal) return 128 + linuxSignalNumber(result.signal);
  return result.exitCode;
}

export async function pipeOut(read: () => Promise<Buffer>, out: NodeJS.WriteStream): Promise<void> {
  for (let chunk = await read(); chunk.length > 0; chunk = await read()) {
    if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
  }
}

/** Forwards host stdin with backpressure, closing the guest's stdin at EOF. */
export function pumpStdin(child: ExecChild): { stop(): void } {
  const stdin = process.stdin;
  const onData = (chunk: Buffer) => {
    stdin.pause();
    child.writeStdin(chunk).then(
      () => stdin.resume(),
      () => stdin.resume(),
    );
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

/** Streams a piped guest process: host stdin in, its stdout and stderr out; its exit status. */
export async function runPiped(child: ExecChild): Promise<number> {
  const stdinDone = pumpStdin(child);
  try {
    await Promise.all([
      pipeOut(() => child.readStdout(), process.stdout),
      pipeOut(() => child.readStderr(), process.stderr),
    ]);
    return exitCodeOf(await child.wait());
  } finally {
    stdinDone.stop();
  }
}

/** The host terminal's size (80x24 when stdout is not a terminal). */
export function terminalSize(): { rows: number; cols: number } {
  return { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 };
}

/** Runs a guest pty process interactively: raw mode in, pty out, resizes followed; its exit status. */
export async function runInteractive(child: ExecChild): Promise<number> {
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
