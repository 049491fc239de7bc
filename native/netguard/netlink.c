/*
 * Questions to the kernel's routing code (rtnetlink). Each thread that asks gets its own
 * socket, so asking takes no lock; it is closed when the thread exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netguard.h"

#define THREAD_LOCAL __thread __attribute__((tls_model("initial-exec")))

static THREAD_LOCAL int thread_socket = -1;
static THREAD_LOCAL uint32_t thread_seq;
static pthread_key_t socket_closer;
static pthread_once_t closer_once = PTHREAD_ONCE_INIT;

static void close_socket(void *value)
{
    close((int)(intptr_t)value - 1);
}

static void make_closer(void)
{
    int err = pthread_key_create(&socket_closer, close_socket);
    if (err != 0)
        guard_warn("pthread_key_create for the netlink socket", err);
}

/* Connected to the kernel (port id 0): the kernel then drops unicasts from anyone else. */
static int open_socket(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) {
        guard_warn("cannot open a netlink socket, refusing guest traffic", errno);
        return -1;
    }
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (connect(fd, (const struct sockaddr *)&kernel, sizeof kernel) != 0) {
        guard_warn("cannot connect the netlink socket, refusing guest traffic", errno);
        close(fd);
        return -1;
    }
    pthread_once(&closer_once, make_closer);
    int err = pthread_setspecific(socket_closer, (void *)(intptr_t)(fd + 1));
    if (err != 0)
        guard_warn("pthread_setspecific for the netlink socket", err);
    return fd;
}

/* The kernel answers a request before send() returns, so the answer is read without waiting;
 * answers to earlier requests that a failure abandoned are skipped by sequence number. */
static ssize_t read_answer(int fd, uint32_t seq, void *reply, size_t capacity)
{
    for (;;) {
        ssize_t n = recv(fd, reply, capacity, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            guard_warn("no answer from the kernel on the netlink socket, refusing guest traffic", errno);
            return 0;
        }
        struct nlmsghdr *h = reply;
        if ((size_t)n > capacity || !NLMSG_OK(h, (size_t)n)) {
            guard_warn("a netlink answer was truncated or malformed, refusing guest traffic", EMSGSIZE);
            return 0;
        }
        if (h->nlmsg_seq != seq)
            continue;
        if (h->nlmsg_type != NLMSG_ERROR)
            return n;
        const struct nlmsgerr *e = NLMSG_DATA(h);
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof *e) || e->error >= 0) {
            guard_warn("a netlink error answer was malformed, refusing guest traffic", EBADMSG);
            return 0;
        }
        return e->error;
    }
}

ssize_t netlink_ask(struct nlmsghdr *request, void *reply, size_t capacity)
{
    if (thread_socket < 0)
        thread_socket = open_socket();
    if (thread_socket < 0)
        return 0;
    request->nlmsg_seq = ++thread_seq;
    if (send(thread_socket, request, request->nlmsg_len, 0) < 0) {
        guard_warn("cannot send on the netlink socket, refusing guest traffic", errno);
        return 0;
    }
    return read_answer(thread_socket, request->nlmsg_seq, reply, capacity);
}
