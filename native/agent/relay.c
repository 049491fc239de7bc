/*
 * `microvm-agent --relay LISTEN_ADDR:PORT TARGET_ADDR:PORT ...`: TCP relays inside the guest,
 * for compose's `network_mode: service:db`, where the app reaches the db at localhost:5432.
 * Each VM has its own loopback, so the engine starts this (as /proc/1/exe, the agent binary
 * itself, which lies outside the image's root) to listen on the guest's 127.0.0.1:PORT and
 * connect each client to the db's service link address. It only moves bytes between two
 * sockets of the guest: the network guard on the host still decides where the target leads.
 *
 * One process per relay pair set: a child per listening socket, a child per connection
 * (fork, then a poll loop copying both ways with half-closes). It ends when its parent
 * (the agent's process for it) is killed: every child asks for SIGKILL at its parent's death.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define MAX_RELAYS 64
#define COPY_BUF 65536

static bool parse_endpoint(const char *text, struct sockaddr_in *out)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof host)
        return false;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
        return false;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &out->sin_addr) == 1;
}

/* Copies both ways until both directions ended; a write error or a reset ends both. */
static void pump(int a, int b)
{
    static char buf[COPY_BUF];
    const int sock[2] = {a, b};
    struct pollfd fds[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
    bool open_in[2] = {true, true};
    while (open_in[0] || open_in[1]) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        for (int i = 0; i < 2; i++) {
            if (!open_in[i] || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(sock[i], buf, sizeof buf);
            if (n <= 0) {
                open_in[i] = false;
                fds[i].fd = -1;
                shutdown(sock[1 - i], SHUT_WR);
                if (n < 0)
                    return;
                continue;
            }
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(sock[1 - i], buf + off, (size_t)(n - off));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    return;
                off += w;
            }
        }
    }
}

static void __attribute__((noreturn)) serve_connection(int client, const struct sockaddr_in *target)
{
    int upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (upstream >= 0 && connect(upstream, (const struct sockaddr *)target, sizeof *target) == 0)
        pump(client, upstream);
    _exit(0);
}

static void __attribute__((noreturn)) serve_listener(const struct sockaddr_in *listen_at, const struct sockaddr_in *target,
                                                     const char *name)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (const struct sockaddr *)listen_at, sizeof *listen_at) != 0 || listen(fd, 128) != 0) {
        fprintf(stderr, "relay %s: cannot listen: %s\n", name, strerror(errno));
        _exit(1);
    }
    fprintf(stderr, "relay %s: listening\n", name);
    for (;;) {
        int client = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (client < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
                continue;
            _exit(1);
        }
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            close(fd);
            serve_connection(client, target);
        }
        close(client);
    }
}

int run_relays(int count, char **pairs)
{
    if (count < 2 || count % 2 != 0 || count / 2 > MAX_RELAYS) {
        fprintf(stderr, "usage: microvm-agent --relay LISTEN_ADDR:PORT TARGET_ADDR:PORT ... (at most %d pairs)\n", MAX_RELAYS);
        return 2;
    }
    struct sockaddr_in listen_at[MAX_RELAYS], target[MAX_RELAYS];
    for (int i = 0; i < count / 2; i++) {
        if (!parse_endpoint(pairs[2 * i], &listen_at[i]) || !parse_endpoint(pairs[2 * i + 1], &target[i])) {
            fprintf(stderr, "relay: %s -> %s is not ADDR:PORT ADDR:PORT\n", pairs[2 * i], pairs[2 * i + 1]);
            return 2;
        }
    }
    /* Connections end on their own; their children are reaped as they go. */
    signal(SIGCHLD, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < count / 2; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            char name[160];
            snprintf(name, sizeof name, "%s -> %s", pairs[2 * i], pairs[2 * i + 1]);
            serve_listener(&listen_at[i], &target[i], name);
        }
        if (pid < 0) {
            perror("relay: fork");
            return 1;
        }
    }
    for (;;)
        pause();
}
