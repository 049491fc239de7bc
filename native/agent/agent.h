/* Declarations shared by the agent's files. One file per concern; see main.c. */
#ifndef MICROVM_AGENT_H
#define MICROVM_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"

#define AGENT_VERSION "0.1.0"
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DEFAULT_TERM "xterm-256color"
#define MAX_STAGE_FILES 256
#define MAX_PATH_LEN 4096
#define MAX_DETACHED 8 /* workloads that outlived their connection */
#define MAX_SLOTS (MAX_STREAMS + MAX_DETACHED)
#define TTY_DRAIN_MS 100
#define RETRY_MS 50
#define MAX_ERROR_TEXT 512
#define MAX_CGROUP_PATH 128

/* log.c: messages go to stderr (the console in the guest). */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t now_ms(void);

/* proto.c: frames and TLV, bounded. */
struct frame_header {
    uint16_t magic;
    uint8_t type;
    uint8_t flags;
    uint32_t stream;
    uint32_t length;
};

struct tlv_field {
    uint16_t tag;
    uint32_t len;
    const uint8_t *value;
};

struct tlv_reader {
    const uint8_t *pos;
    size_t left;
};

struct tlv_writer {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool overflow;
};

void frame_header_decode(const uint8_t *bytes, struct frame_header *h);
void frame_header_encode(uint8_t *bytes, uint8_t type, uint32_t stream, uint32_t length);
uint32_t get_u32(const uint8_t *p);
uint64_t get_u64(const uint8_t *p);
uint16_t get_u16(const uint8_t *p);
/* Returns 1 with a field, 0 at the end, -1 (message in err) when malformed. */
int tlv_next(struct tlv_reader *r, struct tlv_field *f, char *err, size_t errlen);
void tlv_put(struct tlv_writer *w, uint16_t tag, const void *value, size_t len);
void tlv_put_u32(struct tlv_writer *w, uint16_t tag, uint32_t value);
void tlv_put_u64(struct tlv_writer *w, uint16_t tag, uint64_t value);
void tlv_put_str(struct tlv_writer *w, uint16_t tag, const char *s);
char *tlv_strdup(const struct tlv_field *f);
const char *tag_name(uint16_t tag);

/* transport.c: the connection to the host. */
enum transport_kind { TRANSPORT_UNIX, TRANSPORT_PORT, TRANSPORT_VSOCK };
int transport_listen_unix(const char *path);
/* Listens on AF_VSOCK VMADDR_CID_ANY:port (vfkit's agent channel); -1 when it cannot. */
int transport_listen_vsock(uint32_t port);
/* Parses a vsock port (1 .. 2^32-2, decimal); 0 when `text` is not one. */
uint32_t transport_parse_vsock_port(const char *text);
int transport_open_port(const char *name);
/* Writes one whole frame; on failure marks the connection lost and returns -1. */
int send_frame(uint8_t type, uint32_t stream, const void *payload, size_t len);
void send_error(uint32_t stream, uint32_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A RESPONSE with STATUS, and ERROR / ERRNO when given (fmt "" for none). */
void send_status(uint32_t stream, uint32_t status, uint32_t err_no, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void transport_set_fd(int fd);
int transport_fd(void);
bool transport_lost(void);
void run_echo(const char *port_name);
/* vsock_ping.c: `--vsock-ping PORT`, one PING over vsock to this guest's own agent (CID 1); 0 when answered. */
int run_vsock_ping(uint32_t port);
/* relay.c: `--relay LISTEN TARGET ...`, TCP relays inside the guest (compose network_mode service:X). */
int run_relays(int count, char **pairs);

/* request.c: EXEC requests decoded from TLV. */
struct command {
    char **argv;
    int argc;
};

struct stage_file {
    char *path;
    uint32_t mode;
    const uint8_t *data; /* points into the request payload: used before it is reused */
    size_t len;
    bool has_data;
};

struct exec_spec {
    struct command cmds[MAX_CHAIN + 1];
    int ncmds;
    char **envp;
    int nenv;
    char *cwd;
    uint32_t timeout_ms;
    bool tty;
    uint16_t rows, cols;
    bool workload;
    bool has_uid, has_gid;
    uint32_t uid, gid;
    gid_t groups[MAX_GROUPS]; /* supplementary groups, set only with a UID */
    int ngroups;
    uint32_t pids_max; /* 0 = DEFAULT_PIDS_MAX */
    struct stage_file stages[MAX_STAGE_FILES];
    int nstages;
};

/* Returns 0, or a status with a message in err. */
uint32_t exec_spec_parse(const uint8_t *payload, size_t len, struct exec_spec *spec,
                         char *err, size_t errlen);
void exec_spec_free(struct exec_spec *spec);

/* files.c */
int mkdir_parents(const char *path, char *err, size_t errlen);
uint32_t write_file(const char *path, uint32_t mode, const uint8_t *data, size_t len,
                    uint32_t *err_no, char *err, size_t errlen);
uint32_t read_file(const char *path, uint8_t **data, size_t *len, uint32_t *err_no,
                   char *err, size_t errlen);

/* pty.c */
int pty_open(uint16_t rows, uint16_t cols, int *master, int *slave);
int pty_resize(int master, uint16_t rows, uint16_t cols);
int pty_make_controlling(int slave);

/* streams.c: the one table of open streams: id, kind, output credit, budget per kind. */
enum stream_kind { STREAM_FREE, STREAM_EXEC, STREAM_FORWARD, STREAM_WATCH };
/* Takes a slot for a new stream; -1 (E_BUSY already answered) when its kind's budget is spent. */
int stream_open(uint32_t id, enum stream_kind kind);
void stream_close(int slot);
/* The slot of a stream the current host can address (not detached), or -1. */
int stream_lookup(uint32_t id);
enum stream_kind stream_kind(int slot);
uint32_t stream_id(int slot);
bool stream_detached(int slot);
/* Keeps a slot (the workload) after its host is gone; false when MAX_DETACHED are kept. */
bool stream_detach(int slot);
uint64_t stream_credit(int slot);
void stream_take_credit(int slot, size_t n);
void stream_add_credit(int slot, uint32_t amount);
/* A CREDIT frame: the host may send `amount` more STDIN bytes on stream `id`. */
void stream_grant_stdin(uint32_t id, size_t amount);
/* The highest id among streams the host can address; a new host numbers above it. */
uint32_t streams_floor(void);

/* exec.c: processes, one per EXEC stream, and their stdio (stdio.c). */
struct pollfd;
/* Starts an EXEC; takes ownership of spec. Sends the error RESPONSE itself. */
void exec_start(uint32_t id, struct exec_spec *spec);
void exec_stdin(int slot, const uint8_t *data, size_t len);
void exec_close_stdin(int slot);
void exec_signal(int slot, int signo);
void exec_resize(int slot, uint16_t rows, uint16_t cols);
int exec_signal_workload(int signo);
void exec_reap(void);
void exec_disconnect(void);
void exec_kill_all(void);
/* Poll integration: fills fds (returns how many), then handles their events. */
int exec_pollfds(struct pollfd *fds, int max);
void exec_handle_events(const struct pollfd *fds, int n);
int64_t exec_next_deadline(void);
void exec_timers(int64_t now);

/* forward.c: TCP_CONNECT streams to guest ports. */
void forward_start(uint32_t id, uint32_t port);
void forward_stdin(int slot, const uint8_t *data, size_t len);
void forward_close_stdin(int slot);
void forward_reset(int slot);
int forward_pollfds(struct pollfd *fds, int *slots, int max);
void forward_handle_events(const struct pollfd *fds, const int *slots, int n);
void forward_disconnect(void);

/* ports.c: WATCH_PORTS streams (the guest's TCP listeners). */
void ports_start(uint32_t id);
void ports_credit(int slot);
void ports_stop(int slot);
void ports_disconnect(void);
int64_t ports_next_deadline(void);
void ports_timers(int64_t now);

/* socket_owner.c: SOCKET_OWNER (the process of a guest TCP connection, by its local port) */
void op_socket_owner(uint32_t stream, uint32_t port);

/* proc_sockets.c: the sockets the guest's processes hold (one /proc/PID/fd walk for ports.c
 * and socket_owner.c). `visit` is called for each socket fd of each process; false stops the walk. */
typedef bool (*socket_visit)(uint32_t pid, unsigned long inode, void *ctx);
void for_each_socket_fd(socket_visit visit, void *ctx);
/* The process's command name (/proc/PID/comm), or "" when it is gone. */
void read_comm(uint32_t pid, char *comm, size_t cap);

/* restore.c: RESTORED (fresh entropy and wall clock after a snapshot restore) */
void op_restored(uint32_t stream, const uint8_t *payload, size_t len);

/* mounts.c: MOUNT (virtio-fs shares and virtio-blk volumes) */
void op_mount(uint32_t stream, const uint8_t *payload, size_t len);
/* unmount.c: where UNMOUNT parks a mount that MOUNT (kind PARKED) brings back; /run is the agent's tmpfs. */
#define PARKED_DIR "/run/.microvm-parked"
void op_unmount(uint32_t stream, const uint8_t *payload, size_t len);
/* FILE_EVENTS (file_events.c): host changes of a share, raised through native/kmod. */
void op_file_events(uint32_t stream, const uint8_t *payload, size_t len);
bool file_events_available(void);

/* cgroup.c: one cgroup v2 per EXEC in the guest (ids are 0 when cgroups are off). */
void cgroup_init(void);
bool cgroup_enabled(void);
uint64_t cgroup_create(uint32_t pids_max);
int cgroup_join(uint64_t id);
int cgroup_kill(uint64_t id);
void cgroup_release(uint64_t id);
void cgroup_sweep(void);

/* net.c: lo, and eth0 when QEMU gave the guest a NIC. */
void init_network(void);

/* server.c: frame dispatch and the poll loop. */
struct server_config {
    enum transport_kind kind;
    const char *unix_path;
    const char *port_name;
    uint32_t vsock_port;
};
int serve(const struct server_config *cfg);
void server_reply_info(uint32_t stream, uint8_t type, const uint8_t *nonce);
void server_shutdown_requested(void) __attribute__((noreturn));
/* The host went away, or was replaced by a restore: end every stream it opened (exec, forward, ports). */
void server_end_session(void);
/* ops.c: one whole frame from the host (payload of h->length bytes). */
void dispatch_frame(const struct frame_header *h, const uint8_t *payload);

/* init.c: PID-1 duties in the guest. */
struct boot_config {
    char mode[32];
    char root[256];
    char rootfstype[32];
    char port[64];
    /* virtio-blk serial of the disk that keeps the root's changes (a workspace's container); empty = tmpfs */
    char upper[64];
    /* microvm.vsock=PORT: serve the host on this vsock port instead of the virtio-serial port; 0 = not given */
    uint32_t vsock_port;
};
int find_disk_by_serial(const char *serial, char *dev, size_t devlen);
void init_early(void);
void init_read_cmdline(struct boot_config *boot);
void init_probe_and_poweroff(void);
void init_load_modules(void);
void init_switch_root(const struct boot_config *boot);
void init_shutdown(void) __attribute__((noreturn));
void init_fatal(const char *what) __attribute__((noreturn));

#endif
