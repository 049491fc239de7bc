import { setTimeout as delay } from 'node:timers/promises';
import { abortedOr, throwIfAborted } from '../../abort';
import { isHostDiskFull } from '../../disk-full';
import { MicrovmError } from '../../errors';
import { DroppedConnection } from './transport';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** The wait before the second try; it doubles after each further failure. */
  baseDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 250 };

/** A failure worth another try: a 5xx or 429 answer. */
export class RetryableStatus extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

export function isRetryable(err: unknown): boolean {
  if (err instanceof MicrovmError) return false;
  if (err instanceof RetryableStatus || err instanceof DroppedConnection) return true;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return (
    (code !== undefined && NETWORK_CODES.has(code)) ||
    /aborted|socket hang up|no (data|response) from/i.test((err as Error)?.message ?? '')
  );
}

/** Runs `attempt` until it succeeds, fails for good, or the tries run out (then E_REGISTRY_UNREACHABLE). */
export async function withRetries<T>(
  what: string,
  policy: RetryPolicy,
  attempt: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      throwIfAborted(signal, `pulling ${what}`);
      return await attempt();
    } catch (err) {
      // An aborted request looks like a dropped connection: it is not retried.
      if (signal?.aborted) throw abortedOr(err, signal, `pulling ${what}`);
      if (!isRetryable(err)) throw systemErrorAsUnreachable(what, err);
      if (i >= policy.attempts) {
        throw new MicrovmError(
          'E_REGISTRY_UNREACHABLE',
          `${what} failed after ${policy.attempts} tries: ${(err as Error).message}; check the network and the registry, then pull again; nothing partial was kept`,
          { cause: err },
        );
      }
      await delay(policy.baseDelayMs * 2 ** (i - 1), undefined, { signal }).catch(() => undefined);
    }
  }
}

/**
 * A system error that another try would not fix (an unknown host, a TLS failure) still gets
 * the engine's code and the registry named; other errors (a full host disk among them) pass
 * through unchanged.
 */
function systemErrorAsUnreachable(what: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (err instanceof MicrovmError || typeof code !== 'string' || isHostDiskFull(err)) return err;
  const hint = code === 'ENOTFOUND' ? 'the registry host name does not resolve' : `the connection failed (${code})`;
  return new MicrovmError(
    'E_REGISTRY_UNREACHABLE',
    `${what} failed: ${hint}: ${(err as Error).message}; check the image reference and the network; nothing partial was kept`,
    { cause: err },
  );
}
