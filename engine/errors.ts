/**
 * One error class for the whole engine. Callers match on `code`, which never changes once
 * published; `message` says what failed, with the value that failed and what to do next.
 */
export type ErrorCode =
  | 'E_BAD_OPTION'
  | 'E_SETUP_MISSING'
  | 'E_QEMU_MISSING'
  | 'E_ACCEL_UNAVAILABLE'
  | 'E_BACKEND_UNAVAILABLE'
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
  | 'E_PLATFORM_MISSING'
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
  | 'E_CONFIG_PATH'
  | 'E_WORKSPACE_CONFIG'
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

/** Where in a Dockerfile a failure is: the file on the host and, when known, its 1-based line. */
export interface DockerfileLocation {
  file: string;
  line?: number;
}

/** E_BUILD_FAILED of a Dockerfile: where, and the step buildah was running when it failed (if it had started one). */
export interface BuildFailureDetails extends DockerfileLocation {
  step?: string;
}

/** An image or registry failure of a Dockerfile's base image: the line (FROM, COPY --from, RUN --mount=from) that asked for it. */
export interface ImageUseLocation {
  file: string;
  line: number;
}

/** E_HOST_DISK_FULL: the directory whose file system is full and, when QEMU paused a VM on a write, the file it wrote. */
export interface HostDiskFullDetails {
  directory: string;
  file?: string;
}

/** E_VOLUME: the volume's name (for removeVolume), its file on the host, and what failed. */
export interface VolumeDetails {
  volume: string;
  file: string;
  /** Creating or growing the file on the host, or the guest's mount: only a failed mount may mean a damaged file system. */
  failed: 'create' | 'grow' | 'mount';
}

/** A call the guest agent refused: its status (native/agent/protocol.h) and the guest errno when it sent one. */
export interface AgentRefusalDetails {
  agentStatus: number;
  errno?: number;
}

/** E_PLATFORM_MISSING: the platform asked for and those the image has (`linux/arm64`, ...; empty when it names none). */
export interface PlatformMissingDetails {
  wanted: string;
  available: string[];
}

/** The codes an image or a registry fails with; a build's base image adds the Dockerfile line that asked for it. */
const IMAGE_CODES = [
  'E_IMAGE_NOT_FOUND',
  'E_IMAGE_REF',
  'E_IMAGE_INVALID',
  'E_IMAGE_DIGEST',
  'E_IMAGE_UNSUPPORTED',
  'E_IMAGE_TOO_LARGE',
  'E_IMAGE_NOT_CACHED',
  'E_REGISTRY_AUTH',
  'E_REGISTRY_UNREACHABLE',
  'E_REGISTRY_PROTOCOL',
] as const satisfies readonly ErrorCode[];

export type ImageErrorCode = (typeof IMAGE_CODES)[number];

export function isImageErrorCode(code: ErrorCode): code is ImageErrorCode {
  return (IMAGE_CODES as readonly ErrorCode[]).includes(code);
}

/**
 * The codes whose errors carry details. `T | undefined` where only some failures of the code
 * have them (E_FILE_NOT_FOUND from the agent has a status, from a host file none).
 */
interface DetailsOfCodes extends Record<ImageErrorCode, ImageUseLocation | undefined> {
  E_DOCKERFILE: DockerfileLocation;
  E_BUILD_FAILED: BuildFailureDetails | undefined;
  E_HOST_DISK_FULL: HostDiskFullDetails;
  E_VOLUME: VolumeDetails;
  E_AGENT_REFUSED: AgentRefusalDetails | undefined;
  E_FILE_TOO_LARGE: AgentRefusalDetails | undefined;
  E_FILE_NOT_FOUND: AgentRefusalDetails | undefined;
  E_NO_WORKLOAD: AgentRefusalDetails;
  E_PLATFORM_MISSING: PlatformMissingDetails;
}

/** Only codes may be keys of the details map: a misspelt one fails the constraint and so compiles no more. */
type OnlyCodes<D extends Record<Exclude<keyof D, ErrorCode>, never>> = D;

/**
 * What `error.details` holds for each code: `undefined` for the codes without details.
 * `isMicrovmError(err, code)` narrows `err.details` to its code's entry.
 */
export type ErrorDetailsByCode = {
  [C in ErrorCode]: C extends keyof OnlyCodes<DetailsOfCodes> ? OnlyCodes<DetailsOfCodes>[C] : undefined;
};

/**
 * The options of `new MicrovmError(code, message, options)`: the cause, and the code's
 * details: required where every failure of the code has them, refused where it has none.
 */
export type MicrovmErrorOptions<C extends ErrorCode> = { cause?: unknown } & ([ErrorDetailsByCode[C]] extends [
  undefined,
]
  ? { details?: undefined }
  : undefined extends ErrorDetailsByCode[C]
    ? { details?: ErrorDetailsByCode[C] }
    : { details: ErrorDetailsByCode[C] });

/** The options argument may be left out only when the code's details may be. */
type OptionsArgument<C extends ErrorCode> = undefined extends ErrorDetailsByCode[C]
  ? [options?: MicrovmErrorOptions<C>]
  : [options: MicrovmErrorOptions<C>];

/**
 * The engine's error: `code` says which failure (stable once published), `message` says what
 * failed, with the value and what to do next, and `details` holds that code's fields
 * ({@link ErrorDetailsByCode}). `new MicrovmError('E_VOLUME', message, { details })` does not
 * compile with details of another shape, nor without them.
 */
export class MicrovmError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  /** Set only when the failure has details: absent, not `undefined`, on the codes without. */
  declare readonly details: ErrorDetailsByCode[C];

  constructor(code: C, message: string, ...[options]: OptionsArgument<C>) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    // Named as fetch's aborts are, so code that checks `err.name === 'AbortError'` treats ours alike.
    this.name = code === 'E_ABORTED' ? 'AbortError' : 'MicrovmError';
    this.code = code;
    if (options?.details !== undefined)
      Object.defineProperty(this, 'details', { value: options.details, enumerable: true });
  }

  /** `err instanceof MicrovmError` narrows as isMicrovmError(err) does (without this, details would be `any`). */
  static [Symbol.hasInstance](value: unknown): value is AnyMicrovmError {
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

/**
 * Any engine error as a union over its codes, so that checking `code` narrows `details`:
 * `if (isMicrovmError(err) && err.code === 'E_VOLUME') removeVolume(err.details.volume)`.
 */
export type AnyMicrovmError = { [C in ErrorCode]: MicrovmError<C> }[ErrorCode];

/** The error of a call whose AbortSignal fired: E_ABORTED, the signal's reason as its cause. */
export function abortedError(what: string, signal: AbortSignal): MicrovmError<'E_ABORTED'> {
  return new MicrovmError('E_ABORTED', `${what} was aborted by its signal`, { cause: signal.reason });
}

/**
 * The same failure told with more context: its code and details kept, the message replaced
 * (callers lead it with where the failure happened), the original error as its cause.
 */
export function restated<C extends ErrorCode>(err: MicrovmError<C>, message: string): MicrovmError<C> {
  const options = { cause: err, details: err.details } as MicrovmErrorOptions<C>;
  return new MicrovmError(err.code, message, ...([options] as OptionsArgument<C>));
}

/** True for an engine error (of `code`, when given); narrows `details` to that code's. */
export function isMicrovmError<C extends ErrorCode>(err: unknown, code: C): err is MicrovmError<C>;
export function isMicrovmError(err: unknown): err is AnyMicrovmError;
export function isMicrovmError(err: unknown, code?: ErrorCode): boolean {
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
