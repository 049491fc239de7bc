/** A line longer than this is cut: a service printing one endless line cannot fill the host's memory. */
const MAX_LINE = 400;

/**
 * The last lines a service printed, for the message when it crashes. Guest output is
 * untrusted: control characters (escape sequences, carriage returns) are shown escaped, so a
 * line cannot repaint a terminal or fake another message.
 */
export class TailLines {
  private readonly kept: string[] = [];
  private partial = '';

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    const parts = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = (parts.pop() ?? '').slice(-MAX_LINE);
    for (const line of parts) this.keep(line);
  }

  lines(): string[] {
    return this.partial ? [...this.kept, escapeControl(this.partial)].slice(-this.max) : [...this.kept];
  }

  private keep(line: string): void {
    this.kept.push(escapeControl(line.slice(0, MAX_LINE)));
    if (this.kept.length > this.max) this.kept.shift();
  }
}

/** `\x1b[31m` as the text `\x1b[31m`; tabs stay. */
export function escapeControl(text: string): string {
  return text.replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}
