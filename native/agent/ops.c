/* Frame dispatch and the REQUEST operations other than EXEC's process handling. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "agent.h"


static const char *const FEATURES[] = {"exec",    "spawn", "tty",   "files",    "workload",    "chain",
                                       "forward", "ports", "mount", "sessions", "socket-owner"};

/* HELLO answer or INFO response: the same fields (INFO adds STATUS). */
void server_reply_info(uint32_t stream, uint8_t type, const uint8_t *nonce)
{
    uint8_t payload[1024];
    struct tlv_writer w = {.data = payload, .cap = sizeof payload};
    struct utsname uts;
    if (uname(&uts) != 0) {
        log_msg("uname: %s", strerror(errno));
        strcpy(uts.release, "unknown");
    }
    if (type == FT_RESPONSE)
        tlv_put_u32(&w, TAG_STATUS, ST_OK);
    if (nonce != NULL)
        tlv_put(&w, TAG_NONCE, nonce, 8);
    tlv_put_u32(&w, TAG_PROTO_VERSION, PROTO_VERSION);
    tlv_put_str(&w, TAG_AGENT_VERSION, AGENT_VERSION);
    tlv_put_str(&w, TAG_KERNEL, uts.release);
    for (size_t i = 0; i < sizeof FEATURES / sizeof FEATURES[0]; i++)
        tlv_put_str(&w, TAG_FEATURE, FEATURES[i]);
    if (cgroup_enabled())
        tlv_put_str(&w, TAG_FEATURE, "cgroup");
    if (file_events_available())
        tlv_put_str(&w, TAG_FEATURE, "file-events");
    tlv_put_u32(&w, TAG_STREAM_FLOOR, streams_floor());
    send_frame(type, stream, w.data, w.len);
}

static void handle_hello(uint32_t stream, const uint8_t *payload, size_t len)
{
    struct tlv_reader r = {.pos = payload, .left = len};
    struct tlv_field f;
    const uint8_t *nonce = NULL;
    char err[256];
    int rc;
    while ((rc = tlv_next(&r, &f, err, sizeof err)) == 1)
        if (f.tag == TAG_NONCE)
            nonce = f.value;
    if (rc < 0) {
        send_error(stream, ST_E_BAD_REQUEST, "malformed HELLO: %s", err);
        return;
    }
    server_reply_info(stream, FT_HELLO, nonce);
}

/* The fields of a non-EXEC request; strings are NUL-terminated copies. */
struct simple_request {
    bool has_op, has_mode, has_data, has_signo, has_port;
    uint32_t op, mode, signo, port;
    char path[MAX_PATH_LEN];
    bool has_path;
    const uint8_t *data;
    size_t data_len;
};

static int parse_simple(const uint8_t *payload, size_t len, struct simple_request *req,
                        char *err, size_t errlen)
{
    memset(req, 0, sizeof *req);
    struct tlv_reader r = {.pos = payload, .left = len};
    struct tlv_field f;
    int rc;
    while ((rc = tlv_next(&r, &f, err, errlen)) == 1) {
        switch (f.tag) {
        case TAG_OP:
            req->has_op = true;
            req->op = get_u32(f.value);
            break;
        case TAG_PATH:
            if (f.len == 0 || f.len >= MAX_PATH_LEN) {
                snprintf(err, errlen, "PATH is empty or longer than %d bytes", MAX_PATH_LEN - 1);
                return -1;
            }
            memcpy(req->path, f.value, f.len);
            req->path[f.len] = '\0';
            req->has_path = true;
            break;
        case TAG_MODE:
            req->has_mode = true;
            req->mode = get_u32(f.value);
            break;
        case TAG_DATA:
            req->has_data = true;
            req->data = f.value;
            req->data_len = f.len;
            break;
        case TAG_SIGNO:
            req->has_signo = true;
            req->signo = get_u32(f.value);
            break;
        case TAG_PORT:
            req->has_port = true;
            req->port = get_u32(f.value);
            break;
        default:
            break;
        }
    }
    if (rc < 0)
        return -1;
    if (!req->has_op) {
        snprintf(err, errlen, "REQUEST without OP");
        return -1;
    }
    return 0;
}

static bool need_path(uint32_t stream, const struct simple_request *req)
{
    if (!req->has_path || req->path[0] != '/') {
        send_status(stream, ST_E_BAD_REQUEST, 0, "PATH is missing or not absolute");
        return false;
    }
    return true;
}

static void op_write_file(uint32_t stream, const struct simple_request *req)
{
    if (!need_path(stream, req))
        return;
    if (!req->has_data) {
        send_status(stream, ST_E_BAD_REQUEST, 0, "WRITE_FILE without DATA");
        return;
    }
    char err[MAX_ERROR_TEXT] = "";
    uint32_t err_no = 0;
    uint32_t mode = req->has_mode ? req->mode & 07777 : 0644;
    uint32_t st = write_file(req->path, mode, req->data, req->data_len, &err_no, err,
                             sizeof err);
    send_status(stream, st, err_no, "%s", err);
}

static void op_read_file(uint32_t stream, const struct simple_request *req)
{
    if (!need_path(stream, req))
        return;
    char err[MAX_ERROR_TEXT] = "";
    uint32_t err_no = 0;
    uint8_t *data = NULL;
    size_t len = 0;
    uint32_t st = read_file(req->path, &data, &len, &err_no, err, sizeof err);
    if (st != ST_OK) {
        send_status(stream, st, err_no, "%s", err);
        return;
    }
    struct tlv_writer w = {.cap = len + 64};
    w.data = malloc(w.cap);
    if (w.data == NULL) {
        send_status(stream, ST_E_IO, ENOMEM, "no memory for the contents of '%s'", req->path);
        free(data);
        return;
    }
    tlv_put_u32(&w, TAG_STATUS, ST_OK);
    tlv_put(&w, TAG_DATA, data, len);
    send_frame(FT_RESPONSE, stream, w.data, w.len);
    free(w.data);
    free(data);
}

static void op_signal_workload(uint32_t stream, const struct simple_request *req)
{
    if (!req->has_signo || req->signo == 0 || req->signo >= NSIG) {
        send_status(stream, ST_E_BAD_REQUEST, 0, "SIGNO missing or not a signal number");
        return;
    }
    if (exec_signal_workload((int)req->signo) != 0) {
        send_status(stream, ST_E_NO_WORKLOAD, 0, "no workload is running");
        return;
    }
    send_status(stream, ST_OK, 0, "%s", "");
}

static void op_exec(uint32_t stream, const uint8_t *payload, size_t len)
{
    char err[MAX_ERROR_TEXT] = "";
    struct exec_spec *spec = calloc(1, sizeof *spec);
    if (spec == NULL) {
        send_status(stream, ST_E_IO, ENOMEM, "no memory for the EXEC request");
        return;
    }
    uint32_t st = exec_spec_parse(payload, len, spec, err, sizeof err);
    if (st != ST_OK) {
        send_status(stream, st, 0, "%s", err);
        exec_spec_free(spec);
        free(spec);
        return;
    }
    exec_start(stream, spec);
}

static void handle_request(uint32_t stream, const uint8_t *payload, size_t len)
{
    if (stream == 0 || stream_lookup(stream) >= 0) {
        send_error(stream, ST_E_BAD_STREAM, "REQUEST on %s",
                   stream == 0 ? "stream 0" : "a stream already in use");
        return;
    }
    char err[MAX_ERROR_TEXT];
    struct simple_request *req = malloc(sizeof *req);
    if (req == NULL) {
        send_status(stream, ST_E_IO, ENOMEM, "no memory for the request");
        return;
    }
    if (parse_simple(payload, len, req, err, sizeof err) != 0) {
        send_status(stream, ST_E_BAD_REQUEST, 0, "malformed REQUEST: %s", err);
        goto out;
    }
    switch (req->op) {
    case OP_EXEC:
        op_exec(stream, payload, len);
        break;
    case OP_WRITE_FILE:
        op_write_file(stream, req);
        break;
    case OP_READ_FILE:
        op_read_file(stream, req);
        break;
    case OP_SIGNAL_WORKLOAD:
        op_signal_workload(stream, req);
        break;
    case OP_INFO:
        server_reply_info(stream, FT_RESPONSE, NULL);
        break;
    case OP_SHUTDOWN:
        send_status(stream, ST_OK, 0, "%s", "");
        free(req);
        server_shutdown_requested();
        return;
    case OP_PING:
        send_status(stream, ST_OK, 0, "%s", "");
        break;
    case OP_TCP_CONNECT:
        if (req->has_port)
            forward_start(stream, req->port);
        else
            send_status(stream, ST_E_BAD_REQUEST, 0, "TCP_CONNECT without PORT");
        break;
    case OP_WATCH_PORTS:
        ports_start(stream);
        break;
    case OP_RESTORED:
        op_restored(stream, payload, len);
        break;
    case OP_MOUNT:
        op_mount(stream, payload, len);
        break;
    case OP_UNMOUNT:
        op_unmount(stream, payload, len);
        break;
    case OP_FILE_EVENTS:
        op_file_events(stream, payload, len);
        break;
    case OP_SOCKET_OWNER:
        if (req->has_port)
            op_socket_owner(stream, req->port);
        else
            send_status(stream, ST_E_BAD_REQUEST, 0, "SOCKET_OWNER without PORT");
        break;
    default:
        send_status(stream, ST_E_UNKNOWN_OP, 0, "unknown OP %u", req->op);
        break;
    }
out:
    free(req);
}

static bool need_u32(const struct frame_header *h, const char *name)
{
    if (h->length == 4)
        return true;
    send_error(h->stream, ST_E_BAD_FRAME, "%s payload is %u bytes, expected 4", name, h->length);
    return false;
}

/* Data and control frames for an open stream go to the module of its kind; frames for a
 * stream that is not open are ignored (its process may just have ended). */
static void dispatch_stdin(int slot, const uint8_t *payload, uint32_t len)
{
    if (stream_kind(slot) == STREAM_EXEC)
        exec_stdin(slot, payload, len);
    else if (stream_kind(slot) == STREAM_FORWARD)
        forward_stdin(slot, payload, len);
}

static void dispatch_close_stdin(int slot)
{
    switch (stream_kind(slot)) {
    case STREAM_EXEC:
        exec_close_stdin(slot);
        break;
    case STREAM_FORWARD:
        forward_close_stdin(slot);
        break;
    case STREAM_WATCH:
        ports_stop(slot);
        break;
    case STREAM_FREE:
        break;
    }
}

static void dispatch_credit(int slot, uint32_t amount)
{
    stream_add_credit(slot, amount);
    if (stream_kind(slot) == STREAM_WATCH)
        ports_credit(slot);
}

void dispatch_frame(const struct frame_header *h, const uint8_t *payload)
{
    int slot = h->type == FT_HELLO || h->type == FT_REQUEST ? -1 : stream_lookup(h->stream);
    switch (h->type) {
    case FT_HELLO:
        handle_hello(h->stream, payload, h->length);
        break;
    case FT_REQUEST:
        handle_request(h->stream, payload, h->length);
        break;
    case FT_STDIN:
        if (h->length > MAX_CHUNK)
            send_error(h->stream, ST_E_TOO_LARGE, "STDIN frame of %u bytes is over %d",
                       h->length, MAX_CHUNK);
        else if (slot >= 0)
            dispatch_stdin(slot, payload, h->length);
        break;
    case FT_CLOSE_STDIN:
        if (slot >= 0)
            dispatch_close_stdin(slot);
        break;
    case FT_CREDIT:
        if (need_u32(h, "CREDIT") && slot >= 0)
            dispatch_credit(slot, get_u32(payload));
        break;
    case FT_RESET:
        if (slot >= 0 && stream_kind(slot) == STREAM_FORWARD)
            forward_reset(slot);
        break;
    case FT_SIGNAL:
        if (!need_u32(h, "SIGNAL"))
            break;
        if (get_u32(payload) == 0 || get_u32(payload) >= NSIG)
            send_error(h->stream, ST_E_BAD_REQUEST, "SIGNAL %u is not a signal number",
                       get_u32(payload));
        else if (slot >= 0 && stream_kind(slot) == STREAM_EXEC)
            exec_signal(slot, (int)get_u32(payload));
        break;
    case FT_RESIZE:
        if (need_u32(h, "RESIZE") && slot >= 0 && stream_kind(slot) == STREAM_EXEC)
            exec_resize(slot, get_u16(payload), get_u16(payload + 2));
        break;
    default:
        send_error(h->stream, ST_E_BAD_FRAME, "frame type %u is not accepted by the agent",
                   h->type);
        break;
    }
}
