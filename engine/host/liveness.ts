import * as fs from 'node:fs';

/**
 * The one rule for "does that process still run", used by every reaper and lock on the host.
 * A pid runs when it exists (EPERM: it does, but is someone else's) and is not a zombie: a
 * process killed with SIGKILL stays one until its parent reaps it, and what it held is free
 * the moment it died.
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !hasProcFs() || processStartTime(pid) !== undefined;
}

/** A process told apart from a later one that reuses its pid, by its start time. */
export interface ProcessIdentity {
  pid: number;
  startTime: string;
}

export function thisProcess(): ProcessIdentity {
  return { pid: process.pid, startTime: processStartTime(process.pid) ?? '' };
}

/** Whether that very process still runs; without /proc (no start times), whether its pid does. */
export function isSameProcessAlive(owner: ProcessIdentity): boolean {
  if (!hasProcFs()) return isProcessAlive(owner.pid);
  const startTime = processStartTime(owner.pid);
  return startTime !== undefined && startTime === owner.startTime;
}

function hasProcFs(): boolean {
  return fs.existsSync('/proc/self/stat');
}

/**
 * Field 22 of /proc/PID/stat (clock ticks after boot), or undefined when the process does not
 * run: gone, or a zombie (dead, not yet reaped by its parent).
 */
function processStartTime(pid: number): string | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ...fields] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return state === 'Z' || state === 'X' ? undefined : fields[18];
  } catch {
    return undefined;
  }
}
