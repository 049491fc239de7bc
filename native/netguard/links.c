/*
 * Which interfaces lead off the host. A link with no kind is a NIC (Ethernet, Wi-Fi); VLANs,
 * bonds and VPN tunnels over NICs count as uplinks too. Every other kind is a virtual device
 * that lives inside the host: bridges (docker0, virbr0, cni0, podman0), veth, tap (other VMs),
 * dummy, macvlan, ipvlan, vxlan, Open vSwitch, VRF, ... and unknown kinds, so a new kind is
 * refused until someone decides otherwise. Loopback is internal.
 *
 * Classes are cached per ifindex in a direct-mapped table of atomic words (no lock). Any link
 * event from the kernel (RTNLGRP_LINK) bumps the generation and so empties the cache; when the
 * events cannot be followed, nothing is cached and every judgement asks the kernel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "netguard.h"

#define LINK_SLOTS 256               /* a collision costs one more question, never a wrong answer */
#define LINK_REPLY_MAX (16 * 1024)   /* an RTM_NEWLINK answer is 1-3 KiB */

static const char *const uplink_kinds[] = {
    "vlan", "bond", "team", "macsec",                                   /* a NIC, tagged or bundled */
    "wireguard", "ppp", "wwan", "ipip", "gre", "sit", "ip6tnl", "ip6gre", /* VPNs, tunnels, modems */
    "vti", "vti6", "xfrm",
};

static _Atomic uint64_t slots[LINK_SLOTS];
static _Atomic uint32_t generation = 1;
static atomic_bool following;

/* gen (31 bits) | ifindex (31 bits) | class (2 bits): one word, so readers never see half. */
static uint64_t pack(uint32_t gen, int ifindex, enum link_class c)
{
    return (uint64_t)(gen & 0x7fffffffu) << 33 | (uint64_t)(uint32_t)ifindex << 2 | (uint64_t)c;
}

static const struct rtattr *nested(const struct rtattr *a, int type)
{
    int len = (int)RTA_PAYLOAD(a);
    for (const struct rtattr *n = RTA_DATA(a); RTA_OK(n, len); n = RTA_NEXT(n, len))
        if ((n->rta_type & NLA_TYPE_MASK) == type)
            return n;
    return NULL;
}

/* tun is a VPN's layer-3 device; its tap mode is a virtual NIC of another VM. */
static enum link_class class_of_kind(const char *kind, const struct rtattr *data)
{
    if (strcmp(kind, "tun") == 0) {
        const struct rtattr *type = data != NULL ? nested(data, IFLA_TUN_TYPE) : NULL;
        bool tun = type != NULL && RTA_PAYLOAD(type) >= 1 && *(const uint8_t *)RTA_DATA(type) == IFF_TUN;
        return tun ? LINK_UPLINK : LINK_INTERNAL;
    }
    for (size_t i = 0; i < sizeof uplink_kinds / sizeof *uplink_kinds; i++)
        if (strcmp(kind, uplink_kinds[i]) == 0)
            return LINK_UPLINK;
    return LINK_INTERNAL;
}

static enum link_class class_of_answer(const struct nlmsghdr *h)
{
    if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg))) {
        guard_warn("unexpected answer to RTM_GETLINK, refusing guest traffic", EBADMSG);
        return LINK_FAILED;
    }
    const struct ifinfomsg *ifi = NLMSG_DATA(h);
    if (ifi->ifi_flags & IFF_LOOPBACK)
        return LINK_INTERNAL;
    int len = (int)IFLA_PAYLOAD(h);
    for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if ((a->rta_type & NLA_TYPE_MASK) != IFLA_LINKINFO)
            continue;
        const struct rtattr *kind = nested(a, IFLA_INFO_KIND);
        if (kind == NULL)
            break;
        char name[32] = "";
        memcpy(name, RTA_DATA(kind), RTA_PAYLOAD(kind) < sizeof name - 1 ? RTA_PAYLOAD(kind) : sizeof name - 1);
        return class_of_kind(name, nested(a, IFLA_INFO_DATA));
    }
    return LINK_UPLINK;
}

static enum link_class ask_kernel(int ifindex)
{
    struct {
        struct nlmsghdr h;
        struct ifinfomsg ifi;
    } req = {
        .h = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)), .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST},
        .ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex},
    };
    _Alignas(struct nlmsghdr) char reply[LINK_REPLY_MAX];
    ssize_t n = netlink_ask(&req.h, reply, sizeof reply);
    if (n < 0)
        guard_warn("RTM_GETLINK for a route's interface failed, refusing guest traffic", (int)-n);
    return n > 0 ? class_of_answer((const struct nlmsghdr *)reply) : LINK_FAILED;
}

enum link_class link_class(int ifindex)
{
    bool cache = atomic_load(&following);
    uint32_t gen = atomic_load(&generation);
    _Atomic uint64_t *slot = &slots[(uint32_t)ifindex % LINK_SLOTS];
    uint64_t seen = atomic_load(slot);
    if (cache && seen >> 2 == pack(gen, ifindex, LINK_FAILED) >> 2)
        return (enum link_class)(seen & 3);
    enum link_class c = ask_kernel(ifindex);
    if (cache && c != LINK_FAILED)
        atomic_store(slot, pack(gen, ifindex, c));
    return c;
}

/* What an event says does not matter: any event (or lost events, ENOBUFS) empties the cache. */
static void *follow(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char event[64];
    for (;;) {
        ssize_t n = recv(fd, event, sizeof event, 0);
        if (n >= 0 || errno == ENOBUFS)
            atomic_fetch_add(&generation, 1);
        else if (errno != EINTR)
            break;
    }
    atomic_store(&following, false);
    guard_warn("stopped following link events (interface classes are no longer cached)", errno);
    close(fd);
    return NULL;
}

static void forget_in_child(void)
{
    atomic_store(&following, false);
}

static int subscribe(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) {
        guard_warn("cannot open a netlink socket for link events", errno);
        return -1;
    }
    struct sockaddr_nl groups = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
    if (bind(fd, (const struct sockaddr *)&groups, sizeof groups) != 0) {
        guard_warn("cannot subscribe to link events", errno);
        close(fd);
        return -1;
    }
    return fd;
}

static void start_thread(int fd)
{
    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);
    if (err == 0)
        err = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    if (err == 0)
        err = pthread_create(&thread, &attr, follow, (void *)(intptr_t)fd);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        atomic_store(&following, false);
        close(fd);
        guard_warn("cannot start the link event thread (interface classes are not cached)", err);
    }
}

/* The follower blocks every signal: QEMU expects its own threads alone to take them. */
void links_follow_events(void)
{
    int err = pthread_atfork(NULL, NULL, forget_in_child);
    if (err != 0) {
        guard_warn("pthread_atfork (interface classes are not cached)", err);
        return;
    }
    int fd = subscribe();
    if (fd < 0)
        return;
    sigset_t all, old;
    sigfillset(&all);
    err = pthread_sigmask(SIG_SETMASK, &all, &old);
    if (err != 0) {
        guard_warn("pthread_sigmask (interface classes are not cached)", err);
        close(fd);
        return;
    }
    atomic_store(&following, true);
    start_thread(fd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
