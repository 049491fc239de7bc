import type { ExecChild } from '../agent/exec-child';
import type { WaitResult } from '../agent/process';
import { linuxSignalNumber } from '../agent/signals';

/** A guest process's end as an exit status: its code, or 128+N when signal N ended it. */
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
