/*
 * The bench's two measurements. Both run in a network namespace of their own, set up by the
 * caller, so adding and removing addresses never touches the host's networking.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"

/* Only bounds a failure: a sample normally takes well under a millisecond; at 5 s one timed out in a CI run on a heavily loaded 2-core host. */
#define SAMPLE_DEADLINE_NS 30000000000LL
#define DISCARD_PORT 9

struct window {
    struct sockaddr_in target;
    atomic_bool stop;
    atomic_bool armed;          /* the address is being added: the next refusal counts */
    atomic_bool allowed_seen;   /* a connect() was allowed since the last reset */
    _Atomic int64_t refused_at; /* first refusal while armed */
    _Atomic int64_t event_at;   /* the kernel's RTM_NEWADDR for the target reached the listener */
};

static void pause_briefly(void)
{
    struct timespec t = {.tv_nsec = 50000};
    nanosleep(&t, NULL);
}

/* What slirp does for each guest connection: a new socket, connect(), close(). */
static void *prober(void *arg)
{
    struct window *w = arg;
    while (!atomic_load(&w->stop)) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket");
        bool armed = atomic_load(&w->armed);
        int r = connect(fd, (struct sockaddr *)&w->target, sizeof w->target);
        int err = errno;
        int64_t at = now_ns();
        if (close(fd) != 0)
            die("close");
        int64_t none = 0;
        if (r == 0)
            atomic_store(&w->allowed_seen, true);
        else if (err == ECONNREFUSED && armed)
            atomic_compare_exchange_strong(&w->refused_at, &none, at);
        else if (err != ECONNREFUSED)
            errno = err, die("connect to the window target");
    }
    return NULL;
}

static bool announces_target(const struct nlmsghdr *h, const struct in_addr *target)
{
    if (h->nlmsg_type != RTM_NEWADDR)
        return false;
    const struct ifaddrmsg *ifa = NLMSG_DATA(h);
    int len = (int)IFA_PAYLOAD(h);
    for (const struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len))
        if (a->rta_type == IFA_LOCAL && RTA_PAYLOAD(a) == 4 && memcmp(RTA_DATA(a), target, 4) == 0)
            return true;
    return false;
}

static int listen_for_addresses(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct sockaddr_nl groups = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_IPV4_IFADDR};
    if (fd < 0 || bind(fd, (struct sockaddr *)&groups, sizeof groups) != 0)
        die("netlink listener");
    struct timeval tick = {.tv_usec = 100000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick) != 0)
        die("SO_RCVTIMEO");
    return fd;
}

/* The baseline: how long the kernel's own event takes to reach a listening thread. */
static void *listener(void *arg)
{
    struct window *w = arg;
    int fd = listen_for_addresses();
    _Alignas(struct nlmsghdr) char buf[8192];
    while (!atomic_load(&w->stop)) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        int64_t at = now_ns(), none = 0;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0)
            die("recv on the netlink listener");
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n))
            if (atomic_load(&w->armed) && announces_target(h, &w->target.sin_addr))
                atomic_compare_exchange_strong(&w->event_at, &none, at);
    }
    close(fd);
    return NULL;
}

/* RTM_NEWADDR / RTM_DELADDR of target/32 on ifindex, waiting for the kernel's ack. */
static void change_address(int fd, int type, int ifindex, struct in_addr target)
{
    struct {
        struct nlmsghdr h;
        struct ifaddrmsg ifa;
        char attrs[2 * RTA_SPACE(4)];
    } req = {
        .h = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)) + 2 * RTA_SPACE(4), .nlmsg_type = (uint16_t)type,
              .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_EXCL : 0)},
        .ifa = {.ifa_family = AF_INET, .ifa_prefixlen = 32, .ifa_index = (unsigned)ifindex},
    };
    struct rtattr *local = (struct rtattr *)req.attrs;
    struct rtattr *address = (struct rtattr *)(req.attrs + RTA_SPACE(4));
    *local = (struct rtattr){.rta_len = RTA_LENGTH(4), .rta_type = IFA_LOCAL};
    *address = (struct rtattr){.rta_len = RTA_LENGTH(4), .rta_type = IFA_ADDRESS};
    memcpy(RTA_DATA(local), &target, 4);
    memcpy(RTA_DATA(address), &target, 4);
    if (send(fd, &req, req.h.nlmsg_len, 0) < 0)
        die("send RTM_NEWADDR/RTM_DELADDR");
    _Alignas(struct nlmsghdr) char ack[1024];
    ssize_t n = recv(fd, ack, sizeof ack, 0);
    const struct nlmsghdr *h = (const struct nlmsghdr *)ack;
    if (n < 0)
        die("recv ack");
    const struct nlmsgerr *e = NLMSG_DATA(h);
    if (!NLMSG_OK(h, (size_t)n) || h->nlmsg_type != NLMSG_ERROR || e->error != 0) {
        errno = NLMSG_OK(h, (size_t)n) && h->nlmsg_type == NLMSG_ERROR ? -e->error : EBADMSG;
        die("changing the window target address");
    }
}

static void wait_until(const char *what, int64_t deadline, bool (*done)(struct window *), struct window *w)
{
    while (!done(w)) {
        if (now_ns() > deadline) {
            /* Which half never came says where to look: the guard (no refusal) or the kernel's event. */
            fprintf(stderr, "netguard-probe: timed out waiting for %s (refusal %s, event %s, allowed connect %s)\n",
                    what, atomic_load(&w->refused_at) ? "seen" : "missing",
                    atomic_load(&w->event_at) ? "seen" : "missing", atomic_load(&w->allowed_seen) ? "seen" : "missing");
            _exit(1);
        }
        pause_briefly();
    }
}

static bool seen_allowed(struct window *w) { return atomic_load(&w->allowed_seen); }
static bool seen_both(struct window *w) { return atomic_load(&w->refused_at) != 0 && atomic_load(&w->event_at) != 0; }

static void sample_window(struct window *w, int rtnl, int ifindex)
{
    atomic_store(&w->allowed_seen, false);
    wait_until("an allowed connect() before the address exists", now_ns() + SAMPLE_DEADLINE_NS, seen_allowed, w);
    atomic_store(&w->refused_at, 0);
    atomic_store(&w->event_at, 0);
    atomic_store(&w->armed, true);
    int64_t start = now_ns();
    change_address(rtnl, RTM_NEWADDR, ifindex, w->target.sin_addr);
    int64_t acked = now_ns();
    wait_until("a refused connect() and the kernel's event", start + SAMPLE_DEADLINE_NS, seen_both, w);
    atomic_store(&w->armed, false);
    printf("%.3f %.3f %.3f\n", (double)(atomic_load(&w->refused_at) - start) / 1000,
           (double)(atomic_load(&w->event_at) - start) / 1000, (double)(acked - start) / 1000);
    change_address(rtnl, RTM_DELADDR, ifindex, w->target.sin_addr);
}

int measure_window(struct in_addr target, const char *ifname, int samples)
{
    int ifindex = (int)if_nametoindex(ifname);
    if (ifindex == 0)
        die(ifname);
    int rtnl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (rtnl < 0)
        die("netlink socket");
    static struct window w;
    w.target = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(DISCARD_PORT), .sin_addr = target};
    pthread_t threads[2];
    if (pthread_create(&threads[0], NULL, prober, &w) != 0 || pthread_create(&threads[1], NULL, listener, &w) != 0)
        die("pthread_create");
    for (int i = 0; i < samples; i++)
        sample_window(&w, rtnl, ifindex);
    atomic_store(&w.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    return fflush(stdout) == 0 ? 0 : 1;
}

static double per_call_us(const struct sockaddr_in *target, int batch, bool raw)
{
    int64_t start = now_ns();
    for (int i = 0; i < batch; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket");
        long r = raw ? syscall(SYS_connect, fd, target, sizeof *target) : connect(fd, (const struct sockaddr *)target, sizeof *target);
        if (r != 0)
            die("connect to the overhead target");
        if (close(fd) != 0)
            die("close");
    }
    return (double)(now_ns() - start) / 1000 / batch;
}

int measure_overhead(struct in_addr target, int samples, int batch)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(DISCARD_PORT), .sin_addr = target};
    for (int i = 0; i < samples; i++) {
        double guarded = per_call_us(&to, batch, false);
        double raw = per_call_us(&to, batch, true);
        printf("%.3f %.3f\n", guarded, raw);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
