/**
 * Wire protocol constants. The one definition is native/agent/protocol.h (explained in
 * native/agent/protocol.md); test/unit/protocol-constants.test.ts keeps these in step.
 */
export const PROTO_VERSION = 1;
export const FRAME_MAGIC = 0x564d;
export const HEADER_SIZE = 12;
export const MAX_PAYLOAD = 4 * 1024 * 1024 + 64 * 1024;
export const MAX_CHUNK = 64 * 1024;
export const MAX_FILE = 4 * 1024 * 1024;
export const OUTPUT_WINDOW = 256 * 1024;
export const STDIN_WINDOW = 128 * 1024;
/** Open streams in all; each kind has its own share so that none can starve another. */
export const MAX_STREAMS = 128;
export const MAX_EXEC_STREAMS = 64;
export const MAX_FORWARD_STREAMS = 60;
export const MAX_WATCH_STREAMS = 4;
export const MAX_ARGS = 4096;
export const MAX_CHAIN = 16;
export const MAX_LISTENERS = 256;
/** FILE_EVENT entries in one FILE_EVENTS request. */
export const MAX_FILE_EVENTS = 1024;
/** pids.max of an exec's cgroup in the guest when the request sets none. */
export const DEFAULT_PIDS_MAX = 4096;
export const MAX_PIDS_MAX = 4194304;

export const FrameType = {
  HELLO: 1,
  REQUEST: 2,
  RESPONSE: 3,
  STDIN: 4,
  STDOUT: 5,
  STDERR: 6,
  CLOSE_STDIN: 7,
  CREDIT: 8,
  SIGNAL: 9,
  RESIZE: 10,
  ERROR: 11,
  CLOSE_STDOUT: 12,
  RESET: 13,
} as const;

export const Tag = {
  OP: 1,
  ARGV: 2,
  ENV: 3,
  CWD: 4,
  TIMEOUT_MS: 5,
  TTY: 6,
  ROWS: 7,
  COLS: 8,
  STAGE_PATH: 9,
  STAGE_MODE: 10,
  STAGE_DATA: 11,
  CHAIN: 12,
  WORKLOAD: 13,
  PATH: 14,
  MODE: 15,
  DATA: 16,
  SIGNO: 17,
  PORT: 18,
  LISTENER: 19,
  STATUS: 20,
  ERROR: 21,
  ERRNO: 22,
  EXIT_CODE: 23,
  SIGNAL: 24,
  TIMED_OUT: 25,
  PEAK_RSS_KIB: 26,
  ADDR: 27,
  PID: 28,
  COMM: 29,
  NONCE: 30,
  PROTO_VERSION: 31,
  AGENT_VERSION: 32,
  FEATURE: 33,
  KERNEL: 34,
  FAMILY: 35,
  STREAM_FLOOR: 36,
  RNG_SEED: 40,
  TIME_NS: 41,
  UID: 42,
  GID: 43,
  PIDS_MAX: 44,
  GROUP: 45,
  MOUNT_KIND: 50,
  MOUNT_SOURCE: 51,
  READ_ONLY: 52,
  SIZE_MIB: 53,
  FILE_EVENT: 54,
  EVENT_KIND: 55,
  EVENT_PATH: 56,
  // 57 and 58 are retired (a FILE_EVENT's SIZE and MTIME_NS, protocol.md): never reuse them.
} as const;

export const Op = {
  EXEC: 1,
  WRITE_FILE: 2,
  READ_FILE: 3,
  SIGNAL_WORKLOAD: 4,
  INFO: 5,
  SHUTDOWN: 6,
  PING: 7,
  TCP_CONNECT: 8,
  WATCH_PORTS: 9,
  RESTORED: 16,
  MOUNT: 20,
  UNMOUNT: 21,
  FILE_EVENTS: 22,
  SOCKET_OWNER: 23,
} as const;

/** MOUNT_KIND values. */
export const MountKind = {
  VIRTIOFS: 1,
  VOLUME: 2,
  TMPFS: 3,
  PARKED: 4,
} as const;

/** EVENT_KIND values (FILE_EVENTS). */
export const FileEventKind = {
  MODIFY: 1,
  CREATE: 2,
  DELETE: 3,
  DIR_CHANGED: 4,
} as const;

export const Status = {
  OK: 0,
  E_BAD_REQUEST: 1,
  E_UNKNOWN_OP: 2,
  E_TOO_LARGE: 3,
  E_NOT_FOUND: 4,
  E_IO: 5,
  E_BUSY: 6,
  E_NO_WORKLOAD: 7,
  E_BAD_FRAME: 8,
  E_BAD_STREAM: 9,
  E_CONNECT: 10,
} as const;

export function statusName(status: number): string {
  const entry = Object.entries(Status).find(([, value]) => value === status);
  return entry ? entry[0] : `status ${status}`;
}
