/**
 * One error class for the whole engine. Callers match on `code`, which never changes once
 * published; `message` says what failed, with the value that failed and what to do next.
 */
export type ErrorCode =
  | 'E_BAD_OPTION'
  | 'E_SETUP_MISSING'
  | 'E_QEMU_MISSING'
  | 'E_ACCEL_UNAVAILABLE'
  | 'E_BOOT_TIMEOUT'
  | 'E_BOOT_FAILED'
  | 'E_VM_EXITED'
  | 'E_VM_RELEASED'
  | 'E_AGENT_PROTOCOL'
  | 'E_AGENT_VERSION'
  | 'E_AGENT_TIMEOUT'
  | 'E_AGENT_UNRESPONSIVE'
  | 'E_HOST_DISK_FULL'
  | 'E_AGENT_REFUSED'
  | 'E_OUTPUT_LIMIT'
  | 'E_FILE_TOO_LARGE'
  | 'E_FILE_NOT_FOUND'
  | 'E_NO_WORKLOAD'
  | 'E_QMP'
  | 'E_IMAGE_NOT_FOUND'
  | 'E_IMAGE_REF'
  | 'E_IMAGE_INVALID'
  | 'E_IMAGE_DIGEST'
  | 'E_IMAGE_UNSUPPORTED'
  | 'E_IMAGE_TOO_LARGE'
  | 'E_IMAGE_NOT_CACHED'
  | 'E_REGISTRY_AUTH'
  | 'E_REGISTRY_UNREACHABLE'
  | 'E_REGISTRY_PROTOCOL'
  | 'E_ROOTFS_BUILD'
  | 'E_STATE_DIR'
  | 'E_SNAPSHOT'
  | 'E_WARMUP_FAILED'
  | 'E_LISTENER_TIMEOUT'
  | 'E_SNAPSHOT_INVALID'
  | 'E_RESTORE_FAILED'
  | 'E_HOTPLUG'
  | 'E_SUSPEND'
  | 'E_POOL_SHUTDOWN'
  | 'E_ACQUIRE_TIMEOUT'
  | 'E_ABORTED'
  | 'E_PORT_IN_USE'
  | 'E_FORWARD_FAILED'
  | 'E_FORWARD_LIMIT'
  | 'E_MOUNT_UNAVAILABLE'
  | 'E_MOUNT_FAILED'
  | 'E_FILE_EVENTS'
  | 'E_VOLUME'
  | 'E_VOLUME_BUSY'
  | 'E_TYPE_PROJECTION'
  | 'E_TYPE_PROJECTION_LIMIT'
  | 'E_CONFIG'
  | 'E_SERVICE_FAILED'
  | 'E_WORKSPACE_RECORD'
  | 'E_DOCKERFILE'
  | 'E_BUILD_CONTEXT'
  | 'E_BUILD_FAILED'
  | 'E_FEATURE_REF'
  | 'E_FEATURE_NOT_FOUND'
  | 'E_FEATURE_INVALID'
  | 'E_FEATURE_OPTION'
  | 'E_FEATURE_ORDER'
  | 'E_SUPERVISOR'
  | 'E_NO_PROCESS'
  | 'E_WORKSPACE_RUNNING';

/** The one error class of the engine: `code` says what failed (match on it, not on the message), and `cause` holds the error beneath. */
export class MicrovmError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    // Named as fetch's aborts are, so code that checks `err.name === 'AbortError'` treats ours alike.
    this.name = code === 'E_ABORTED' ? 'AbortError' : 'MicrovmError';
    this.code = code;
  }
}

/** The error of a call whose AbortSignal fired: E_ABORTED, the signal's reason as its cause. */
export function abortedError(what: string, signal: AbortSignal): MicrovmError {
  return new MicrovmError('E_ABORTED', `${what} was aborted by its signal`, { cause: signal.reason });
}

/** Whether `err` is a MicrovmError, and when `code` is given, one with that code. */
export function isMicrovmError(err: unknown, code?: ErrorCode): err is MicrovmError {
  return err instanceof MicrovmError && (code === undefined || err.code === code);
}

/** How much of a value from an image, a registry or the guest an error message quotes. */
const MAX_SHOWN_CHARS = 120;

/**
 * A value from untrusted input (an image document, a registry header, the guest), quoted for
 * an error message: JSON-escaped, so control characters cannot forge lines, and cut short,
 * so a hostile document cannot make the message huge.
 */
export function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  if (text.length <= MAX_SHOWN_CHARS) return text;
  return `${text.slice(0, MAX_SHOWN_CHARS)}... (${text.length} chars)`;
}
