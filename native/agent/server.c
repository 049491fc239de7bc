/* The single-threaded poll loop: the host connection, signals, and every child's stdio. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

#define INBUF_SIZE (HEADER_SIZE + MAX_PAYLOAD)
#define MAX_POLLFDS (2 + MAX_SLOTS * 3 + MAX_FORWARD_STREAMS)

static const struct server_config *config;
static uint8_t *inbuf;
static size_t inlen;
static uint64_t skip_left; /* payload bytes of an oversized frame still to drop */
static int listen_fd = -1;
static int64_t reopen_at;


static void __attribute__((noreturn)) shutdown_agent(void)
{
    exec_kill_all();
    if (config->kind != TRANSPORT_UNIX && getpid() == 1)
        init_shutdown();
    if (config->kind == TRANSPORT_UNIX && unlink(config->unix_path) != 0)
        log_msg("unlink %s: %s", config->unix_path, strerror(errno));
    exit(0);
}

void server_shutdown_requested(void)
{
    shutdown_agent();
}

void server_end_session(void)
{
    exec_disconnect();
    forward_disconnect();
    ports_disconnect();
}

static void connection_lost(void)
{
    server_end_session();
    inlen = 0;
    skip_left = 0;
    if (transport_fd() >= 0)
        close(transport_fd());
    transport_set_fd(-1);
    reopen_at = now_ms() + RETRY_MS;
}

/* Guest: reopen the port once a host is connected (no POLLHUP) again. */
static void try_reopen_port(void)
{
    reopen_at = now_ms() + RETRY_MS;
    int fd = transport_open_port(config->port_name);
    if (fd < 0)
        return;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) < 0 || (p.revents & POLLHUP)) {
        close(fd);
        return;
    }
    transport_set_fd(fd);
}

static void accept_connection(void)
{
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
            log_msg("accept: %s", strerror(errno));
        return;
    }
    transport_set_fd(fd);
}

/* Parses every whole frame in inbuf; keeps a partial one for the next read. */
static void process_input(void)
{
    size_t off = 0;
    while (!transport_lost()) {
        size_t avail = inlen - off;
        if (skip_left > 0) {
            size_t drop = avail < skip_left ? avail : (size_t)skip_left;
            off += drop;
            skip_left -= drop;
            if (skip_left > 0)
                break;
            continue;
        }
        if (avail < HEADER_SIZE)
            break;
        struct frame_header h;
        frame_header_decode(inbuf + off, &h);
        if (h.magic != FRAME_MAGIC || h.flags != 0) {
            send_error(0, ST_E_BAD_FRAME, "bad frame header (magic 0x%04x, flags 0x%02x): "
                       "dropped %zu buffered bytes", h.magic, h.flags, avail);
            off = inlen;
            break;
        }
        if (h.length > MAX_PAYLOAD) {
            send_error(h.stream, ST_E_TOO_LARGE, "frame of %u bytes is over the %d-byte limit",
                       h.length, MAX_PAYLOAD);
            skip_left = h.length;
            off += HEADER_SIZE;
            continue;
        }
        if (avail - HEADER_SIZE < h.length)
            break;
        dispatch_frame(&h, inbuf + off + HEADER_SIZE);
        off += HEADER_SIZE + h.length;
    }
    if (off > 0 && off < inlen)
        memmove(inbuf, inbuf + off, inlen - off);
    inlen = off <= inlen ? inlen - off : 0;
}

static void read_connection(short revents)
{
    if (!(revents & POLLIN)) {
        connection_lost(); /* POLLHUP or POLLERR with nothing left to read */
        return;
    }
    ssize_t n = read(transport_fd(), inbuf + inlen, INBUF_SIZE - inlen);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        if (n < 0)
            log_msg("read from host: %s", strerror(errno));
        connection_lost();
        return;
    }
    inlen += (size_t)n;
    process_input();
    if (transport_lost())
        connection_lost();
}

static void read_signals(int sig_fd)
{
    struct signalfd_siginfo info;
    bool child = false;
    for (;;) {
        ssize_t n = read(sig_fd, &info, sizeof info);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof info)
            break;
        if (info.ssi_signo == SIGCHLD)
            child = true;
        else if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT)
            shutdown_agent();
    }
    if (child)
        exec_reap();
}

static int setup_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        log_msg("sigprocmask: %s", strerror(errno));
        return -1;
    }
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        log_msg("ignore SIGPIPE: %s", strerror(errno));
        return -1;
    }
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        log_msg("signalfd: %s", strerror(errno));
    return fd;
}

static int poll_timeout(void)
{
    int64_t next = exec_next_deadline();
    int64_t ports = ports_next_deadline();
    if (ports != 0 && (next == 0 || ports < next))
        next = ports;
    if (config->kind == TRANSPORT_PORT && transport_fd() < 0 &&
        (next == 0 || reopen_at < next))
        next = reopen_at;
    if (next == 0)
        return -1;
    int64_t wait = next - now_ms();
    return wait < 0 ? 0 : wait > 60000 ? 60000 : (int)wait;
}

static void serve_once(int sig_fd)
{
    struct pollfd fds[MAX_POLLFDS];
    fds[0] = (struct pollfd){.fd = sig_fd, .events = POLLIN};
    int conn = transport_fd() >= 0 ? transport_fd() : listen_fd;
    fds[1] = (struct pollfd){.fd = conn, .events = POLLIN};
    int base = 2;
    int n = exec_pollfds(fds + base, MAX_POLLFDS - base);
    int forward_slots[MAX_FORWARD_STREAMS];
    int nf = forward_pollfds(fds + base + n, forward_slots, MAX_FORWARD_STREAMS);
    if (poll(fds, (nfds_t)(base + n + nf), poll_timeout()) < 0) {
        if (errno != EINTR)
            log_msg("poll: %s", strerror(errno));
        return;
    }
    exec_handle_events(fds + base, n);
    forward_handle_events(fds + base + n, forward_slots, nf);
    if (fds[0].revents & POLLIN)
        read_signals(sig_fd);
    if (fds[1].revents != 0 && conn >= 0) {
        if (conn == listen_fd)
            accept_connection();
        else if (conn == transport_fd())
            read_connection(fds[1].revents);
    }
    exec_timers(now_ms());
    ports_timers(now_ms());
    if (transport_lost())
        connection_lost();
    if (config->kind == TRANSPORT_PORT && transport_fd() < 0 && now_ms() >= reopen_at)
        try_reopen_port();
}

int serve(const struct server_config *cfg)
{
    config = cfg;
    int sig_fd = setup_signals();
    if (sig_fd < 0)
        return 1;
    inbuf = malloc(INBUF_SIZE);
    if (inbuf == NULL) {
        log_msg("input buffer: %s", strerror(errno));
        return 1;
    }
    if (cfg->kind != TRANSPORT_PORT) {
        listen_fd = cfg->kind == TRANSPORT_UNIX ? transport_listen_unix(cfg->unix_path)
                                                 : transport_listen_vsock(cfg->vsock_port);
        if (listen_fd < 0)
            return 1;
    }
    reopen_at = now_ms();
    for (;;)
        serve_once(sig_fd);
}
