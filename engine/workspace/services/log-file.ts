import * as fs from 'node:fs';
import * as path from 'node:path';
import { recordFile } from '../record';

/** A service's log stops growing here: the older half moves to `.1`, as the egress log does. */
const MAX_BYTES = 2 * 1024 * 1024;

/** Where a compose service's output goes for `microvm logs`: beside the workspace record, owner-only. */
export function serviceLogFile(folder: string, service: string): string {
  return recordFile(folder).replace(/\.json$/, `.service-${service.replace(/[^A-Za-z0-9._-]/g, '_')}.log`);
}

/** Appends to a service's log file, rotating at MAX_BYTES; a write that fails is dropped (the log is best effort). */
export class ServiceLogWriter {
  private size: number;

  constructor(private readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.size = fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
  }

  write(text: string): void {
    try {
      if (this.size > MAX_BYTES) {
        fs.renameSync(this.file, `${this.file}.1`);
        this.size = 0;
      }
      fs.appendFileSync(this.file, text, { mode: 0o600 });
      this.size += Buffer.byteLength(text);
    } catch {
      // A full disk or a removed folder must not stop the service.
    }
  }
}

/** The last `lines` lines of a service's log (with the rotated part when the current one is short). */
export function readServiceLog(folder: string, service: string, lines?: number): string {
  const file = serviceLogFile(folder, service);
  const read = (f: string) => {
    try {
      return fs.readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  const text = read(`${file}.1`) + read(file);
  if (lines === undefined) return text;
  const all = text.split('\n');
  if (all[all.length - 1] === '') all.pop();
  return all
    .slice(-lines)
    .map((l) => `${l}\n`)
    .join('');
}
