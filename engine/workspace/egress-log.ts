import * as fs from 'node:fs';
import { commLabel } from '../egress/attribution';
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
  /**
   * The process names (comm) the agent reported for its connections, most connections first,
   * at most MAX_PROCESSES. Connections with no name reported, or by processes past the first
   * MAX_PROCESSES, count only in `count`.
   */
  processes: LearnedProcess[];
}

/** A guest process name behind some of a learned name's connections: the guest's word, unescaped. */
export interface LearnedProcess {
  comm: string;
  connections: number;
}

const MAX_PROCESSES = 8;

/** The names a `learn` run reached (allowed connections), most used first, each with its processes. */
export function learnedNames(lines: readonly EgressLogLine[]): LearnedName[] {
  const byName = new Map<string, { learned: LearnedName; byComm: Map<string, number> }>();
  for (const line of lines) {
    if (line.mode !== 'learn' || !line.allowed) continue;
    const entry = byName.get(line.name) ?? {
      learned: { name: line.name, count: 0, last: line.at, processes: [] },
      byComm: new Map<string, number>(),
    };
    entry.learned.count++;
    if (line.at > entry.learned.last) entry.learned.last = line.at;
    const comm = line.process?.comm;
    if (typeof comm === 'string') entry.byComm.set(comm, (entry.byComm.get(comm) ?? 0) + 1);
    byName.set(line.name, entry);
  }
  return [...byName.values()]
    .map(({ learned, byComm }) => ({ ...learned, processes: mostConnections(byComm) }))
    .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name));
}

function mostConnections(byComm: ReadonlyMap<string, number>): LearnedProcess[] {
  return [...byComm]
    .map(([comm, connections]) => ({ comm, connections }))
    .sort((a, b) => b.connections - a.connections || (a.comm < b.comm ? -1 : a.comm > b.comm ? 1 : 0))
    .slice(0, MAX_PROCESSES);
}

/**
 * Who made a learned name's connections, most first: `npm (12 connections), node (1 connection)`,
 * then `, 3 connections by other or unnamed processes` for the rest (no attribution, or past
 * MAX_PROCESSES names); '' when no process was named. Each name is the guest's word and goes
 * through commLabel (one short quoted line of printable ASCII unless it is plain), then through
 * `escape`: what the caller's display needs on top (the extension's noticeValue; the terminal needs nothing).
 */
export function describeLearnedProcesses(
  learned: LearnedName,
  escape: (label: string) => string = (label) => label,
): string {
  const named = learned.processes.map((p) => `${escape(commLabel(p.comm))} (${connections(p.connections)})`);
  const rest = learned.count - learned.processes.reduce((sum, p) => sum + p.connections, 0);
  if (named.length === 0) return '';
  return rest > 0 ? `${named.join(', ')}, ${connections(rest)} by other or unnamed processes` : named.join(', ');
}

function connections(n: number): string {
  return n === 1 ? '1 connection' : `${n} connections`;
}
