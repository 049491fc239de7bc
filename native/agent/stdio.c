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

#include "process.h"

#define VEOF_CHAR 0x04

enum role { ROLE_STDIN, ROLE_STDOUT, ROLE_STDERR, ROLE_MASTER };

static struct {
    struct process *p;
    enum role role;
} owners[MAX_SLOTS * 3];

static void send_credit(struct process *p, size_t amount)
{
    int slot = process_slot(p);
    if (!stream_detached(slot))
        stream_grant_stdin(stream_id(slot), amount);
}

static int stdin_fd(const struct process *p)
{
    return p->tty ? p->master : p->in_fd;
}

/* All input was written after CLOSE_STDIN: a pipe is closed, a pty gets an EOF character. */
static void finish_stdin(struct process *p)
{
    if (p->tty) {
        if (p->master >= 0 && write(p->master, (char[]){VEOF_CHAR}, 1) < 0 && errno != EAGAIN)
            log_msg("write EOF to pty: %s", strerror(errno));
    } else if (p->in_fd >= 0) {
        close(p->in_fd);
        p->in_fd = -1;
    }
    p->in_broken = true;
}

void stdio_close_stdin_now(struct process *p)
{
    if (!p->tty && p->in_fd >= 0) {
        close(p->in_fd);
        p->in_fd = -1;
    }
    free(p->in_buf);
    p->in_buf = NULL;
    p->in_head = p->in_len = 0;
    p->in_broken = true;
}

static void write_stdin(struct process *p)
{
    int fd = stdin_fd(p);
    size_t granted = 0;
    while (p->in_len > 0 && fd >= 0) {
        size_t chunk = p->in_len;
        if (chunk > STDIN_WINDOW - p->in_head)
            chunk = STDIN_WINDOW - p->in_head;
        ssize_t n = write(fd, p->in_buf + p->in_head, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            /* The process closed its stdin (EPIPE) or the pty hung up (EIO): drop the rest. */
            granted += p->in_len;
            stdio_close_stdin_now(p);
            break;
        }
        p->in_head = (p->in_head + (size_t)n) % STDIN_WINDOW;
        p->in_len -= (size_t)n;
        granted += (size_t)n;
    }
    send_credit(p, granted);
    if (p->in_len == 0 && p->in_eof && !p->in_broken)
        finish_stdin(p);
}

void exec_stdin(int slot, const uint8_t *data, size_t len)
{
    struct process *p = &procs[slot];
    if (p->in_broken || p->in_eof || p->exited) {
        send_credit(p, len);
        return;
    }
    if (len > STDIN_WINDOW - p->in_len) {
        send_error(stream_id(slot), ST_E_TOO_LARGE, "STDIN beyond the %d-byte window: %zu bytes "
                   "buffered, %zu more sent", STDIN_WINDOW, p->in_len, len);
        return;
    }
    if (p->in_buf == NULL && (p->in_buf = malloc(STDIN_WINDOW)) == NULL) {
        log_msg("stdin buffer: %s", strerror(errno));
        send_credit(p, len);
        return;
    }
    size_t tail = (p->in_head + p->in_len) % STDIN_WINDOW;
    size_t first = len < STDIN_WINDOW - tail ? len : STDIN_WINDOW - tail;
    memcpy(p->in_buf + tail, data, first);
    memcpy(p->in_buf, data + first, len - first);
    p->in_len += len;
    write_stdin(p);
}

void exec_close_stdin(int slot)
{
    struct process *p = &procs[slot];
    if (p->in_eof)
        return;
    p->in_eof = true;
    if (p->in_len == 0 && !p->in_broken)
        finish_stdin(p);
}

static bool wants_output(const struct process *p, int i)
{
    if (!stream_detached(process_slot(p)) && stream_credit(process_slot(p)) == 0)
        return false;
    if (p->tty)
        return p->master >= 0 && !p->tty_done;
    return p->out_fd[i] >= 0 && (!p->exited || p->pending[i] > 0);
}

static void read_output(struct process *p, int i)
{
    static uint8_t buf[MAX_CHUNK];
    int fd = p->tty ? p->master : p->out_fd[i];
    int slot = process_slot(p);
    bool detached = stream_detached(slot);
    size_t max = MAX_CHUNK;
    if (!detached && stream_credit(slot) < max)
        max = (size_t)stream_credit(slot);
    if (!p->tty && p->exited && p->pending[i] < max)
        max = p->pending[i];
    ssize_t n = read(fd, buf, max);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        /* EOF on a pipe, or EIO on a pty master once every slave is closed. */
        if (n < 0 && errno != EIO)
            log_msg("read child output: %s", strerror(errno));
        if (p->tty) {
            p->tty_done = true;
        } else {
            close(p->out_fd[i]);
            p->out_fd[i] = -1;
            p->pending[i] = 0;
        }
        process_try_finish(p);
        return;
    }
    if (!p->tty && p->exited)
        p->pending[i] -= (size_t)n;
    if (!detached) {
        send_frame(p->tty || i == 0 ? FT_STDOUT : FT_STDERR, stream_id(slot), buf, (size_t)n);
        stream_take_credit(slot, (size_t)n);
    }
    process_try_finish(p);
}

static int add_fd(struct pollfd *fds, int n, int max, int fd, short events, struct process *p,
                  enum role role)
{
    if (events == 0 || fd < 0 || n >= max)
        return n;
    fds[n] = (struct pollfd){.fd = fd, .events = events};
    owners[n].p = p;
    owners[n].role = role;
    return n + 1;
}

int exec_pollfds(struct pollfd *fds, int max)
{
    if (max > MAX_SLOTS * 3)
        max = MAX_SLOTS * 3;
    int n = 0;
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct process *p = &procs[i];
        if (!process_live(p))
            continue;
        short in_events = p->in_len > 0 ? POLLOUT : 0;
        if (p->tty) {
            short out_events = wants_output(p, 0) ? POLLIN : 0;
            n = add_fd(fds, n, max, p->master, in_events | out_events, p, ROLE_MASTER);
            continue;
        }
        n = add_fd(fds, n, max, p->in_fd, in_events, p, ROLE_STDIN);
        n = add_fd(fds, n, max, p->out_fd[0], wants_output(p, 0) ? POLLIN : 0, p, ROLE_STDOUT);
        n = add_fd(fds, n, max, p->out_fd[1], wants_output(p, 1) ? POLLIN : 0, p, ROLE_STDERR);
    }
    return n;
}

void exec_handle_events(const struct pollfd *fds, int n)
{
    for (int k = 0; k < n; k++) {
        struct process *p = owners[k].p;
        short ev = fds[k].revents;
        if (ev == 0 || !process_live(p))
            continue;
        /* An earlier event may have ended the stream or closed this descriptor. */
        switch (owners[k].role) {
        case ROLE_STDIN:
            if (p->in_fd == fds[k].fd)
                write_stdin(p);
            break;
        case ROLE_STDOUT:
        case ROLE_STDERR: {
            int i = owners[k].role == ROLE_STDOUT ? 0 : 1;
            if (p->out_fd[i] == fds[k].fd && wants_output(p, i))
                read_output(p, i);
            break;
        }
        case ROLE_MASTER:
            if (p->master != fds[k].fd)
                break;
            if ((ev & POLLOUT) && p->in_len > 0)
                write_stdin(p);
            if (process_live(p) && p->master == fds[k].fd && (ev & (POLLIN | POLLHUP | POLLERR)) &&
                wants_output(p, 0))
                read_output(p, 0);
            break;
        }
    }
}
