import type { ExecChild } from '../../engine/agent/exec-child';

/** One line of a guest process's output, with the host time it arrived. */
export interface TimedLine {
  text: string;
  /** performance.now() when the line arrived. */
  at: number;
}

/**
 * Reads a spawned guest process's stdout as lines, each stamped with the host clock when it
 * arrived, and waits for lines that match. `\r` (a pty's line ends) is dropped.
 */
export class GuestLines {
  readonly lines: TimedLine[] = [];
  private partial = '';
  private waiters: Array<() => void> = [];
  readonly done: Promise<void>;

  constructor(readonly child: ExecChild) {
    this.done = this.pump();
  }

  /** Index to pass to `waitFor` so that only lines after now count. */
  get mark(): number {
    return this.lines.length;
  }

  /** The first line at or after `from` that matches, or an error naming what was seen. */
  async waitFor(match: RegExp | ((text: string) => boolean), from: number, timeoutMs: number): Promise<TimedLine> {
    const test = typeof match === 'function' ? match : (text: string) => match.test(text);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(from).find((l) => test(l.text));
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no guest line matching ${String(match)} within ${timeoutMs} ms; got: ${JSON.stringify(this.lines.slice(from).map((l) => l.text))}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private async pump(): Promise<void> {
    for (;;) {
      const chunk = await this.child.readStdout();
      if (chunk.length === 0) break;
      const at = performance.now();
      const parts = (this.partial + chunk.toString('utf8')).split('\n');
      this.partial = parts.pop() ?? '';
      for (const part of parts) this.lines.push({ text: part.replace(/\r$/, ''), at });
      for (const wake of this.waiters.splice(0)) wake();
    }
  }
}
