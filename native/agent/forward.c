/*
 * TCP_CONNECT streams: a TCP connection to a guest port carried as a stream. STDIN frames are
 * written to the socket (granted back with CREDIT as written), CLOSE_STDIN half-closes it;
 * socket data goes out as STDOUT under OUTPUT_WINDOW credit, and the socket's EOF as
 * CLOSE_STDOUT. The RESPONSE comes when both directions are closed, or on a reset.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

struct forward {
    int fd;
    uint16_t port;
    int attempt;      /* 0: 127.0.0.1, 1: ::1 (servers that bind only "localhost" as IPv6) */
    bool connecting;
    uint8_t *in_buf;  /* ring of at most STDIN_WINDOW bytes not yet written to the socket */
    size_t in_head, in_len;
    bool in_eof;      /* CLOSE_STDIN received */
    bool wr_shut;     /* shutdown(SHUT_WR) done */
    bool rd_eof;      /* the socket's EOF was sent as CLOSE_STDOUT */
};

/* Indexed by stream slot (streams.c holds the id and the output credit). */
static struct forward forwards[MAX_SLOTS];

static int slot_of(const struct forward *f)
{
    return (int)(f - forwards);
}

static uint32_t id_of(const struct forward *f)
{
    return stream_id(slot_of(f));
}

static bool live(const struct forward *f)
{
    return stream_kind(slot_of(f)) == STREAM_FORWARD;
}

static void forward_free(struct forward *f)
{
    if (f->fd >= 0)
        close(f->fd);
    free(f->in_buf);
    stream_close(slot_of(f));
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

/* Ends the stream: a reset closes the socket with RST (SO_LINGER 0) so the peer sees it. */
static void forward_end(struct forward *f, uint32_t status, int err_no, bool reset)
{
    if (reset && f->fd >= 0) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        if (setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0)
            log_msg("SO_LINGER: %s", strerror(errno));
    }
    if (status == ST_OK)
        send_status(id_of(f), ST_OK, 0, "%s", "");
    else
        send_status(id_of(f), status, (uint32_t)err_no, "guest port %u: %s", f->port,
                    strerror(err_no));
    forward_free(f);
}

/* Starts a non-blocking connect for the current attempt; returns 0 or an errno. */
static int start_connect(struct forward *f)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (f->attempt == 0) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(f->port);
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(f->port);
        in6->sin6_addr = in6addr_loopback;
        len = sizeof *in6;
    }
    if (f->fd >= 0)
        close(f->fd);
    f->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f->fd < 0)
        return errno;
    if (connect(f->fd, (struct sockaddr *)&ss, len) == 0) {
        f->connecting = false;
        return 0;
    }
    if (errno == EINPROGRESS) {
        f->connecting = true;
        return 0;
    }
    return errno;
}

/* A failed attempt moves on to ::1; when that fails too the stream ends with E_CONNECT. */
static void connect_failed(struct forward *f, int err_no)
{
    while (f->attempt == 0) {
        f->attempt = 1;
        int err6 = start_connect(f);
        if (err6 == 0)
            return;
        if (err6 == EAFNOSUPPORT)
            break;
        err_no = err_no == ECONNREFUSED ? err6 : err_no;
    }
    forward_end(f, ST_E_CONNECT, err_no, false);
}

void forward_start(uint32_t id, uint32_t port)
{
    if (port == 0 || port > 65535) {
        send_status(id, ST_E_BAD_REQUEST, 0, "PORT %u is not a TCP port", port);
        return;
    }
    int slot = stream_open(id, STREAM_FORWARD);
    if (slot < 0)
        return;
    struct forward *f = &forwards[slot];
    *f = (struct forward){.fd = -1, .port = (uint16_t)port};
    int err = start_connect(f);
    if (err != 0)
        connect_failed(f, err);
}

static void maybe_finish(struct forward *f)
{
    if (f->wr_shut && f->rd_eof)
        forward_end(f, ST_OK, 0, false);
}

static void write_pending(struct forward *f)
{
    size_t granted = 0;
    while (f->in_len > 0) {
        size_t chunk = f->in_len;
        if (chunk > STDIN_WINDOW - f->in_head)
            chunk = STDIN_WINDOW - f->in_head;
        ssize_t n = send(f->fd, f->in_buf + f->in_head, chunk, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            stream_grant_stdin(id_of(f), granted);
            forward_end(f, ST_E_IO, errno, true);
            return;
        }
        f->in_head = (f->in_head + (size_t)n) % STDIN_WINDOW;
        f->in_len -= (size_t)n;
        granted += (size_t)n;
    }
    stream_grant_stdin(id_of(f), granted);
    if (f->in_len == 0 && f->in_eof && !f->wr_shut) {
        if (shutdown(f->fd, SHUT_WR) != 0 && errno != ENOTCONN)
            log_msg("shutdown(SHUT_WR): %s", strerror(errno));
        f->wr_shut = true;
        maybe_finish(f);
    }
}

void forward_stdin(int slot, const uint8_t *data, size_t len)
{
    struct forward *f = &forwards[slot];
    if (f->in_eof) {
        stream_grant_stdin(id_of(f), len);
        return;
    }
    if (len > STDIN_WINDOW - f->in_len) {
        send_error(id_of(f), ST_E_TOO_LARGE, "STDIN beyond the %d-byte window: %zu bytes buffered, "
                   "%zu more sent", STDIN_WINDOW, f->in_len, len);
        return;
    }
    if (f->in_buf == NULL && (f->in_buf = malloc(STDIN_WINDOW)) == NULL) {
        log_msg("forward buffer: %s", strerror(errno));
        forward_end(f, ST_E_IO, ENOMEM, true);
        return;
    }
    size_t tail = (f->in_head + f->in_len) % STDIN_WINDOW;
    size_t first = len < STDIN_WINDOW - tail ? len : STDIN_WINDOW - tail;
    memcpy(f->in_buf + tail, data, first);
    memcpy(f->in_buf, data + first, len - first);
    f->in_len += len;
    if (!f->connecting)
        write_pending(f);
}

void forward_close_stdin(int slot)
{
    struct forward *f = &forwards[slot];
    if (f->in_eof)
        return;
    f->in_eof = true;
    if (!f->connecting)
        write_pending(f);
}

void forward_reset(int slot)
{
    forward_end(&forwards[slot], ST_OK, 0, true);
}

static void read_socket(struct forward *f)
{
    static uint8_t buf[MAX_CHUNK];
    uint64_t credit = stream_credit(slot_of(f));
    size_t max = credit < MAX_CHUNK ? (size_t)credit : MAX_CHUNK;
    ssize_t n = recv(f->fd, buf, max, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n < 0) {
        forward_end(f, ST_E_IO, errno, true);
        return;
    }
    if (n == 0) {
        f->rd_eof = true;
        send_frame(FT_CLOSE_STDOUT, id_of(f), NULL, 0);
        maybe_finish(f);
        return;
    }
    send_frame(FT_STDOUT, id_of(f), buf, (size_t)n);
    stream_take_credit(slot_of(f), (size_t)n);
}

static void on_connected(struct forward *f)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        connect_failed(f, err);
        return;
    }
    f->connecting = false;
    if (f->in_len > 0 || f->in_eof)
        write_pending(f);
}

static short wanted_events(const struct forward *f)
{
    if (f->connecting)
        return POLLOUT;
    short ev = 0;
    if (!f->rd_eof && stream_credit(slot_of(f)) > 0)
        ev |= POLLIN;
    if (f->in_len > 0)
        ev |= POLLOUT;
    return ev;
}

int forward_pollfds(struct pollfd *fds, int *slots, int max)
{
    int n = 0;
    for (int i = 0; i < MAX_SLOTS && n < max; i++) {
        struct forward *f = &forwards[i];
        if (!live(f) || f->fd < 0 || wanted_events(f) == 0)
            continue;
        fds[n] = (struct pollfd){.fd = f->fd, .events = wanted_events(f)};
        slots[n++] = i;
    }
    return n;
}

void forward_handle_events(const struct pollfd *fds, const int *slots, int n)
{
    for (int k = 0; k < n; k++) {
        short ev = fds[k].revents;
        struct forward *f = &forwards[slots[k]];
        /* An earlier event may have ended this stream or replaced its socket. */
        if (ev == 0 || !live(f) || f->fd != fds[k].fd)
            continue;
        if (f->connecting) {
            on_connected(f);
            continue;
        }
        if ((ev & POLLOUT) && f->in_len > 0)
            write_pending(f);
        if (live(f) && f->fd == fds[k].fd && (ev & (POLLIN | POLLHUP | POLLERR)) && !f->rd_eof &&
            stream_credit(slots[k]) > 0)
            read_socket(f);
    }
}

/* The host went away: every forwarded connection is reset. */
void forward_disconnect(void)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct forward *f = &forwards[i];
        if (!live(f))
            continue;
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        if (f->fd >= 0)
            setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        forward_free(f);
    }
}
