import * as fs from 'node:fs';

/** A supervisor's own log beside its socket, bounded: past `maxBytes` it moves to FILE.1 (one old copy kept). */
export class LogFile {
  private size: number;

  constructor(
    private readonly file: string,
    private readonly maxBytes = 1024 * 1024,
  ) {
    this.size = fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
  }

  line(text: string): void {
    const entry = `${new Date().toISOString()} ${text.replace(/[\r\n]+/g, ' ')}\n`;
    try {
      if (this.size + entry.length > this.maxBytes) {
        fs.renameSync(this.file, `${this.file}.1`);
        this.size = 0;
      }
      fs.appendFileSync(this.file, entry, { mode: 0o600 });
      this.size += Buffer.byteLength(entry);
    } catch {
      // A log that cannot be written must not take the workspace VM down with it.
    }
  }
}

/** The end of a log file, for an error message when a supervisor failed to start. */
export function logTail(file: string, lines = 5): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
