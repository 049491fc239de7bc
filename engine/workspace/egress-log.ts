import * as fs from 'node:fs';
import type { EgressEvent } from '../egress/proxy';
import { recordFile } from './record';

/**
 * The workspace's egress log: one JSON line per connection its VMs asked the egress proxy
 * for, beside its record (`<record>.egress.log`, 0600). `microvm net-log` prints it and
 * `microvm net-policy` reads the names a `learn` run reached from it. It keeps the last
 * MAX_BYTES or so: at that size the file moves to `.1` (the one before is dropped).
 */
export interface EgressLogLine extends EgressEvent {
  mode: 'allowlist' | 'learn';
}

const MAX_BYTES = 1024 * 1024;

/** The egress log of a workspace: the host names its guest reached or was refused, beside its record. */
export function egressLogFile(folder: string): string {
  return recordFile(folder).replace(/\.json$/, '.egress.log');
}

/** Appends a line to a workspace's egress log, rotating it past 1 MiB; a failure to write is ignored. */
export function appendEgressLog(file: string, line: EgressLogLine): void {
  try {
    if ((fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0) > MAX_BYTES) fs.renameSync(file, `${file}.1`);
    fs.appendFileSync(file, `${JSON.stringify(line)}\n`, { mode: 0o600 });
  } catch {
    // The log is a convenience: a full disk must not fail the guest's connection.
  }
}

/** The log's lines, oldest first (the rotated file first); lines that do not parse are skipped. */
export function readEgressLog(file: string): EgressLogLine[] {
  const lines: EgressLogLine[] = [];
  for (const part of [`${file}.1`, file]) {
    let text: string;
    try {
      text = fs.readFileSync(part, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const parsed = JSON.parse(line) as EgressLogLine;
        if (typeof parsed.name === 'string' && typeof parsed.port === 'number' && typeof parsed.allowed === 'boolean')
          lines.push(parsed);
      } catch {
        // a torn last line after a crash
      }
    }
  }
  return lines;
}

/** One name a `learn` run reached: how often, when last, and by which guest processes (as the guest reported them). */
export interface LearnedName {
  name: string;
  count: number;
  last: string;
  /** The distinct process names (comm) the agent reported for its connections, at most MAX_PROCESSES. */
  processes: string[];
}

const MAX_PROCESSES = 8;

/** The names a `learn` run reached (allowed connections), most used first. */
export function learnedNames(lines: readonly EgressLogLine[]): LearnedName[] {
  const byName = new Map<string, LearnedName>();
  for (const line of lines) {
    if (line.mode !== 'learn' || !line.allowed) continue;
    const entry = byName.get(line.name) ?? { name: line.name, count: 0, last: line.at, processes: [] };
    entry.count++;
    if (line.at > entry.last) entry.last = line.at;
    const comm = typeof line.process?.comm === 'string' ? line.process.comm : undefined;
    if (comm !== undefined && !entry.processes.includes(comm) && entry.processes.length < MAX_PROCESSES)
      entry.processes.push(comm);
    byName.set(line.name, entry);
  }
  return [...byName.values()].sort((a, b) => b.count - a.count || a.name.localeCompare(b.name));
}
