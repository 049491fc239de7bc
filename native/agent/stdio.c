/*
 * A stream's stdio: stdin buffered up to STDIN_WINDOW and granted back with CREDIT as it is
 * written, output read only while the host has granted OUTPUT_WINDOW credit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream.h"

#define MAX_CREDIT ((uint64_t)1 << 40)
#define VEOF_CHAR 0x04

enum role { ROLE_STDIN, ROLE_STDOUT, ROLE_STDERR, ROLE_MASTER };

static struct {
    struct stream *s;
    enum role role;
} owners[MAX_SLOTS * 3];

static void send_credit(struct stream *s, size_t amount)
{
    if (amount == 0 || s->detached)
        return;
    uint8_t bytes[4] = {(uint8_t)amount, (uint8_t)(amount >> 8), (uint8_t)(amount >> 16),
                        (uint8_t)(amount >> 24)};
    send_frame(FT_CREDIT, s->id, bytes, sizeof bytes);
}

static int stdin_fd(const struct stream *s)
{
    return s->tty ? s->master : s->in_fd;
}

/* All input was written after CLOSE_STDIN: a pipe is closed, a pty gets an EOF character. */
static void finish_stdin(struct stream *s)
{
    if (s->tty) {
        if (s->master >= 0 && write(s->master, (char[]){VEOF_CHAR}, 1) < 0 && errno != EAGAIN)
            log_msg("write EOF to pty: %s", strerror(errno));
    } else if (s->in_fd >= 0) {
        close(s->in_fd);
        s->in_fd = -1;
    }
    s->in_broken = true;
}

void stdio_close_stdin_now(struct stream *s)
{
    if (!s->tty && s->in_fd >= 0) {
        close(s->in_fd);
        s->in_fd = -1;
    }
    free(s->in_buf);
    s->in_buf = NULL;
    s->in_head = s->in_len = 0;
    s->in_broken = true;
}

static void write_stdin(struct stream *s)
{
    int fd = stdin_fd(s);
    size_t granted = 0;
    while (s->in_len > 0 && fd >= 0) {
        size_t chunk = s->in_len;
        if (chunk > STDIN_WINDOW - s->in_head)
            chunk = STDIN_WINDOW - s->in_head;
        ssize_t n = write(fd, s->in_buf + s->in_head, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            /* The process closed its stdin (EPIPE) or the pty hung up (EIO): drop the rest. */
            granted += s->in_len;
            stdio_close_stdin_now(s);
            break;
        }
        s->in_head = (s->in_head + (size_t)n) % STDIN_WINDOW;
        s->in_len -= (size_t)n;
        granted += (size_t)n;
    }
    send_credit(s, granted);
    if (s->in_len == 0 && s->in_eof && !s->in_broken)
        finish_stdin(s);
}

void exec_stdin(uint32_t id, const uint8_t *data, size_t len)
{
    struct stream *s = stream_find(id);
    if (s == NULL)
        return;
    if (s->in_broken || s->in_eof || s->exited) {
        send_credit(s, len);
        return;
    }
    if (len > STDIN_WINDOW - s->in_len) {
        send_error(id, ST_E_TOO_LARGE, "STDIN beyond the %d-byte window: %zu bytes buffered, "
                   "%zu more sent", STDIN_WINDOW, s->in_len, len);
        return;
    }
    if (s->in_buf == NULL && (s->in_buf = malloc(STDIN_WINDOW)) == NULL) {
        log_msg("stdin buffer: %s", strerror(errno));
        send_credit(s, len);
        return;
    }
    size_t tail = (s->in_head + s->in_len) % STDIN_WINDOW;
    size_t first = len < STDIN_WINDOW - tail ? len : STDIN_WINDOW - tail;
    memcpy(s->in_buf + tail, data, first);
    memcpy(s->in_buf, data + first, len - first);
    s->in_len += len;
    write_stdin(s);
}

void exec_close_stdin(uint32_t id)
{
    struct stream *s = stream_find(id);
    if (s == NULL || s->in_eof)
        return;
    s->in_eof = true;
    if (s->in_len == 0 && !s->in_broken)
        finish_stdin(s);
}

void exec_credit(uint32_t id, uint32_t amount)
{
    struct stream *s = stream_find(id);
    if (s == NULL)
        return;
    s->out_credit += amount;
    if (s->out_credit > MAX_CREDIT)
        s->out_credit = MAX_CREDIT;
}

static bool wants_output(const struct stream *s, int i)
{
    if (!s->detached && s->out_credit == 0)
        return false;
    if (s->tty)
        return s->master >= 0 && !s->tty_done;
    return s->out_fd[i] >= 0 && (!s->exited || s->pending[i] > 0);
}

static void read_output(struct stream *s, int i)
{
    static uint8_t buf[MAX_CHUNK];
    int fd = s->tty ? s->master : s->out_fd[i];
    size_t max = MAX_CHUNK;
    if (!s->detached && s->out_credit < max)
        max = (size_t)s->out_credit;
    if (!s->tty && s->exited && s->pending[i] < max)
        max = s->pending[i];
    ssize_t n = read(fd, buf, max);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        /* EOF on a pipe, or EIO on a pty master once every slave is closed. */
        if (n < 0 && errno != EIO)
            log_msg("read child output: %s", strerror(errno));
        if (s->tty) {
            s->tty_done = true;
        } else {
            close(s->out_fd[i]);
            s->out_fd[i] = -1;
            s->pending[i] = 0;
        }
        stream_try_finish(s);
        return;
    }
    if (!s->tty && s->exited)
        s->pending[i] -= (size_t)n;
    if (!s->detached) {
        send_frame(s->tty || i == 0 ? FT_STDOUT : FT_STDERR, s->id, buf, (size_t)n);
        s->out_credit -= (uint64_t)n;
    }
    stream_try_finish(s);
}

static int add_fd(struct pollfd *fds, int n, int max, int fd, short events, struct stream *s,
                  enum role role)
{
    if (events == 0 || fd < 0 || n >= max)
        return n;
    fds[n] = (struct pollfd){.fd = fd, .events = events};
    owners[n].s = s;
    owners[n].role = role;
    return n + 1;
}

int exec_pollfds(struct pollfd *fds, int max)
{
    if (max > MAX_SLOTS * 3)
        max = MAX_SLOTS * 3;
    int n = 0;
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct stream *s = &streams[i];
        if (!s->used)
            continue;
        short in_events = s->in_len > 0 ? POLLOUT : 0;
        if (s->tty) {
            short out_events = wants_output(s, 0) ? POLLIN : 0;
            n = add_fd(fds, n, max, s->master, in_events | out_events, s, ROLE_MASTER);
            continue;
        }
        n = add_fd(fds, n, max, s->in_fd, in_events, s, ROLE_STDIN);
        n = add_fd(fds, n, max, s->out_fd[0], wants_output(s, 0) ? POLLIN : 0, s, ROLE_STDOUT);
        n = add_fd(fds, n, max, s->out_fd[1], wants_output(s, 1) ? POLLIN : 0, s, ROLE_STDERR);
    }
    return n;
}

void exec_handle_events(const struct pollfd *fds, int n)
{
    for (int k = 0; k < n; k++) {
        struct stream *s = owners[k].s;
        short ev = fds[k].revents;
        if (ev == 0 || !s->used)
            continue;
        /* An earlier event may have ended the stream or closed this descriptor. */
        switch (owners[k].role) {
        case ROLE_STDIN:
            if (s->in_fd == fds[k].fd)
                write_stdin(s);
            break;
        case ROLE_STDOUT:
        case ROLE_STDERR: {
            int i = owners[k].role == ROLE_STDOUT ? 0 : 1;
            if (s->out_fd[i] == fds[k].fd && wants_output(s, i))
                read_output(s, i);
            break;
        }
        case ROLE_MASTER:
            if (s->master != fds[k].fd)
                break;
            if ((ev & POLLOUT) && s->in_len > 0)
                write_stdin(s);
            if (s->used && s->master == fds[k].fd && (ev & (POLLIN | POLLHUP | POLLERR)) &&
                wants_output(s, 0))
                read_output(s, 0);
            break;
        }
    }
}
