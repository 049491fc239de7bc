import { isMicrovmError, MicrovmError, type ErrorCode, type ErrorDetailsByCode } from '../errors';

/** An error as it crosses the supervisor's socket (the message travels beside it): the engine's code and details. */
export interface WireError {
  code: string;
  details?: unknown;
}

/** What an error that is not the engine's becomes on the wire: a client rebuilds it as a plain Error. */
const INTERNAL = 'E_INTERNAL';
const ENGINE_CODE = /^E_[A-Z_]+$/;

export function errorToWire(err: unknown): WireError {
  if (!isMicrovmError(err)) return { code: INTERNAL };
  return err.details === undefined ? { code: err.code } : { code: err.code, details: err.details };
}

/**
 * The engine error the supervisor raised, same code and details; a plain Error for anything
 * else. The details are taken as sent: the supervisor is this engine's own process, started
 * from the same build as its clients.
 */
export function errorFromWire(message: string, wire: Partial<WireError> | undefined): Error {
  const code = wire?.code;
  if (!code || !ENGINE_CODE.test(code) || code === INTERNAL) return new Error(message);
  const details =
    typeof wire.details === 'object' && wire.details !== null
      ? (wire.details as ErrorDetailsByCode[ErrorCode])
      : undefined;
  return new MicrovmError(code as ErrorCode, message, { details });
}
