/* Wire protocol constants shared with engine/agent/protocol.ts. See protocol.md. */
#ifndef MICROVM_PROTOCOL_H
#define MICROVM_PROTOCOL_H

#define PROTO_VERSION 1
#define FRAME_MAGIC 0x564D
#define HEADER_SIZE 12
#define MAX_PAYLOAD (4 * 1024 * 1024 + 64 * 1024)
#define MAX_CHUNK (64 * 1024)
#define MAX_FILE (4 * 1024 * 1024)
#define OUTPUT_WINDOW (256 * 1024)
#define STDIN_WINDOW (128 * 1024)
/* Open streams: each kind has its own budget, so that no kind can starve another. Calls
 * without a stream of their own (PING, INFO, files, RESTORED, ...) take no slot at all. */
#define MAX_STREAMS 128
#define MAX_EXEC_STREAMS 64
#define MAX_FORWARD_STREAMS 60
#define MAX_WATCH_STREAMS 4
#define MAX_ARGS 4096
#define MAX_CHAIN 16
#define MAX_LISTENERS 256
#define DEFAULT_PIDS_MAX 4096
#define MAX_PIDS_MAX 4194304
#define MAX_GROUPS 64
#define MAX_FILE_EVENTS 1024

enum frame_type {
    FT_HELLO = 1,
    FT_REQUEST = 2,
    FT_RESPONSE = 3,
    FT_STDIN = 4,
    FT_STDOUT = 5,
    FT_STDERR = 6,
    FT_CLOSE_STDIN = 7,
    FT_CREDIT = 8,
    FT_SIGNAL = 9,
    FT_RESIZE = 10,
    FT_ERROR = 11,
    FT_CLOSE_STDOUT = 12,
    FT_RESET = 13,
};

enum tlv_tag {
    TAG_OP = 1,
    TAG_ARGV = 2,
    TAG_ENV = 3,
    TAG_CWD = 4,
    TAG_TIMEOUT_MS = 5,
    TAG_TTY = 6,
    TAG_ROWS = 7,
    TAG_COLS = 8,
    TAG_STAGE_PATH = 9,
    TAG_STAGE_MODE = 10,
    TAG_STAGE_DATA = 11,
    TAG_CHAIN = 12,
    TAG_WORKLOAD = 13,
    TAG_PATH = 14,
    TAG_MODE = 15,
    TAG_DATA = 16,
    TAG_SIGNO = 17,
    TAG_PORT = 18,
    TAG_LISTENER = 19,
    TAG_STATUS = 20,
    TAG_ERROR = 21,
    TAG_ERRNO = 22,
    TAG_EXIT_CODE = 23,
    TAG_SIGNAL = 24,
    TAG_TIMED_OUT = 25,
    TAG_PEAK_RSS_KIB = 26,
    TAG_ADDR = 27,
    TAG_PID = 28,
    TAG_COMM = 29,
    TAG_NONCE = 30,
    TAG_PROTO_VERSION = 31,
    TAG_AGENT_VERSION = 32,
    TAG_FEATURE = 33,
    TAG_KERNEL = 34,
    TAG_FAMILY = 35,
    TAG_STREAM_FLOOR = 36,
    TAG_RNG_SEED = 40,
    TAG_TIME_NS = 41,
    TAG_UID = 42,
    TAG_GID = 43,
    TAG_PIDS_MAX = 44,
    TAG_GROUP = 45,
    TAG_MOUNT_KIND = 50,
    TAG_MOUNT_SOURCE = 51,
    TAG_READ_ONLY = 52,
    TAG_SIZE_MIB = 53,
    TAG_FILE_EVENT = 54,
    TAG_EVENT_KIND = 55,
    TAG_EVENT_PATH = 56,
    /* 57 and 58 are retired (a FILE_EVENT's SIZE and MTIME_NS, protocol.md): never reuse them. */
};

enum op {
    OP_EXEC = 1,
    OP_WRITE_FILE = 2,
    OP_READ_FILE = 3,
    OP_SIGNAL_WORKLOAD = 4,
    OP_INFO = 5,
    OP_SHUTDOWN = 6,
    OP_PING = 7,
    OP_TCP_CONNECT = 8,
    OP_WATCH_PORTS = 9,
    OP_RESTORED = 16,
    OP_MOUNT = 20,
    OP_UNMOUNT = 21,
    OP_FILE_EVENTS = 22,
    OP_SOCKET_OWNER = 23,
};

/* MOUNT_KIND values */
enum mount_kind {
    MOUNT_VIRTIOFS = 1,
    MOUNT_VOLUME = 2,
    MOUNT_TMPFS = 3,
    MOUNT_PARKED = 4,
};

/* EVENT_KIND values (FILE_EVENTS) */
enum file_event_kind {
    FILE_EVENT_MODIFY = 1,
    FILE_EVENT_CREATE = 2,
    FILE_EVENT_DELETE = 3,
    FILE_EVENT_DIR_CHANGED = 4,
};

enum status {
    ST_OK = 0,
    ST_E_BAD_REQUEST = 1,
    ST_E_UNKNOWN_OP = 2,
    ST_E_TOO_LARGE = 3,
    ST_E_NOT_FOUND = 4,
    ST_E_IO = 5,
    ST_E_BUSY = 6,
    ST_E_NO_WORKLOAD = 7,
    ST_E_BAD_FRAME = 8,
    ST_E_BAD_STREAM = 9,
    ST_E_CONNECT = 10,
};

#endif
