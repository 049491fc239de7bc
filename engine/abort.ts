import { abortedError, isMicrovmError } from './errors';

/**
 * The one place that links an AbortSignal to the work it cancels: a check between steps, a
 * stop for a running thing (a child process, a VM, a request), and the error an aborted call
 * fails with (E_ABORTED, named AbortError), whatever the stopped work failed with itself.
 */

/** Throws E_ABORTED naming `what` when `signal` has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortedError(what, signal);
}

/** Runs `stop` once when `signal` fires (at once if it has); returns the disposer that unlinks it. */
export function onAbort(signal: AbortSignal | undefined, stop: () => void): () => void {
  if (!signal) return () => undefined;
  if (signal.aborted) {
    stop();
    return () => undefined;
  }
  signal.addEventListener('abort', stop, { once: true });
  return () => signal.removeEventListener('abort', stop);
}

/** A child process (mke2fs, a helper) killed with SIGKILL when `signal` fires; returns the disposer. */
export function killOnAbort(
  child: { kill(signal: NodeJS.Signals): boolean },
  signal: AbortSignal | undefined,
): () => void {
  return onAbort(signal, () => void child.kill('SIGKILL'));
}

/** After an abort, whatever the stopped work failed with becomes E_ABORTED (the failure its cause). */
export function abortedOr(err: unknown, signal: AbortSignal | undefined, what: string): unknown {
  if (!signal?.aborted || isMicrovmError(err, 'E_ABORTED')) return err;
  const error = abortedError(what, signal);
  if (error.cause === undefined) Object.defineProperty(error, 'cause', { value: err });
  return error;
}
