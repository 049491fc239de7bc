import { onAbort } from '../abort';
import { abortedError, MicrovmError } from '../errors';
import { linuxSignalName } from './signals';
import { Op, Tag } from './protocol';
import { TlvFields, TlvWriter } from './tlv';

/** A process request after option validation: what goes on the wire for OP_EXEC. */
export interface ProcessRequest {
  argv: string[];
  env: string[];
  cwd?: string;
  timeoutMs: number;
  tty?: { rows: number; cols: number };
  stageFiles: Array<{ path: string; mode: number; data: Buffer }>;
  chain: string[][];
  workload?: boolean;
  /** Run as this user (the image's User), with these supplementary groups; absent = root. */
  user?: { uid: number; gid: number; groups?: number[] };
  /** pids.max of the process's cgroup in the guest; absent = the agent's DEFAULT_PIDS_MAX. */
  pidsMax?: number;
}

/** How a guest process ended: what `ExecChild.wait()` resolves to and every ExecResult carries. */
export interface WaitResult {
  /** The exit status, or -1 when a signal ended the process. */
  exitCode: number;
  /** The signal that ended the process ('SIGKILL', ...), or null. */
  signal: string | null;
  timedOut: boolean;
  peakRssKib: number;
}

/** Extra time the host waits past a process timeout before it gives up on the agent. */
export const HOST_TIMEOUT_GRACE_MS = 5000;

export function encodeProcessRequest(request: ProcessRequest): TlvWriter {
  const body = new TlvWriter().u32(Tag.OP, Op.EXEC);
  for (const arg of request.argv) body.str(Tag.ARGV, arg);
  for (const entry of request.env) body.str(Tag.ENV, entry);
  if (request.cwd !== undefined) body.str(Tag.CWD, request.cwd);
  body.u32(Tag.TIMEOUT_MS, request.timeoutMs);
  if (request.tty) {
    body.u32(Tag.TTY, 1).u32(Tag.ROWS, request.tty.rows).u32(Tag.COLS, request.tty.cols);
  }
  for (const file of request.stageFiles) {
    body.str(Tag.STAGE_PATH, file.path).u32(Tag.STAGE_MODE, file.mode).raw(Tag.STAGE_DATA, file.data);
  }
  for (const argv of request.chain) {
    const inner = new TlvWriter();
    for (const arg of argv) inner.str(Tag.ARGV, arg);
    body.nested(Tag.CHAIN, inner);
  }
  if (request.workload) body.u32(Tag.WORKLOAD, 1);
  if (request.user) {
    body.u32(Tag.UID, request.user.uid).u32(Tag.GID, request.user.gid);
    for (const group of request.user.groups ?? []) body.u32(Tag.GROUP, group);
  }
  if (request.pidsMax !== undefined) body.u32(Tag.PIDS_MAX, request.pidsMax);
  return body;
}

export function decodeWaitResult(fields: TlvFields): WaitResult {
  const exitCode = fields.i32(Tag.EXIT_CODE);
  if (exitCode === undefined) {
    throw new MicrovmError('E_AGENT_PROTOCOL', 'the guest agent answered an exec without an exit code');
  }
  const signal = fields.u32(Tag.SIGNAL) ?? 0;
  return {
    exitCode,
    signal: signal === 0 ? null : linuxSignalName(signal),
    timedOut: (fields.u32(Tag.TIMED_OUT) ?? 0) === 1,
    peakRssKib: Number(fields.u64(Tag.PEAK_RSS_KIB) ?? 0n),
  };
}

/** How long an aborted call waits for the agent to report the killed process's end before it rejects anyway. */
export const ABORT_GRACE_MS = 5000;

/**
 * Ties a process call to an AbortSignal: an abort calls `kill` (SIGKILL to the process group)
 * and the call rejects with E_ABORTED once the agent reported the end, or after
 * ABORT_GRACE_MS if it does not (a stuck agent is the VM's health check's business).
 */
export function abortable<T>(
  call: Promise<T>,
  signal: AbortSignal | undefined,
  kill: () => void,
  what: string,
): Promise<T> {
  if (!signal) return call;
  return new Promise<T>((resolve, reject) => {
    const unlink = onAbort(signal, () => {
      kill();
      const error = abortedError(what, signal);
      const timer = setTimeout(() => reject(error), ABORT_GRACE_MS);
      timer.unref();
      const done = () => {
        clearTimeout(timer);
        reject(error);
      };
      call.then(done, done);
    });
    const settle = (end: () => void) => {
      unlink();
      if (!signal.aborted) end();
    };
    call.then(
      (value) => settle(() => resolve(value)),
      (err) => settle(() => reject(err)),
    );
  });
}

/** Rejects after `ms` unless the promise settles first; the timer never keeps Node alive. */
export function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => MicrovmError): Promise<T> {
  if (ms <= 0) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
