/*
 * The kernel's own answer for one destination: RTM_GETROUTE with RTM_F_FIB_MATCH returns the
 * routing entry an outgoing connection from this process would use (policy rules, the local
 * table and the socket owner's uid included), with its type, prefix length and nexthops, and
 * with RTM_F_LOOKUP_TABLE the table it came from (else IPv4 reports "main" for every entry).
 * Nothing is copied or cached, so an address or route is judged as the kernel sees it at the
 * moment of the call.
 *
 *   local, broadcast, anycast, multicast    -> REFUSE (the host itself)
 *   unicast through a host-internal link    -> REFUSE, unless it is the main table's default route
 *   unicast through uplinks only            -> ALLOW
 *   no route, blackhole, prohibit, ...      -> NO_ROUTE (the kernel would refuse as well)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <unistd.h>

#include "netguard.h"

#define ROUTE_REPLY_MAX (8 * 1024) /* a route with ~250 nexthops still fits */

struct route_request {
    struct nlmsghdr h;
    struct rtmsg rt;
    char attrs[RTA_SPACE(16) + RTA_SPACE(sizeof(uint32_t))];
};

static void add_attr(struct route_request *req, unsigned short type, const void *data, size_t len)
{
    struct rtattr *a = (struct rtattr *)((char *)&req->h + NLMSG_ALIGN(req->h.nlmsg_len));
    a->rta_type = type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(a), data, len);
    req->h.nlmsg_len = NLMSG_ALIGN(req->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* How the kernel says "no route" (unreachable, blackhole, prohibit); anything else is a failure. */
static bool means_no_route(int err)
{
    return err == ENETUNREACH || err == EHOSTUNREACH || err == ENETDOWN || err == EINVAL || err == EACCES;
}

/* The main table's default route is the way out of the host even when it leaves through a
 * bridge or veth (a host whose uplink is bridged, a container); any other route through one
 * stays inside, also a default route in a table that a policy rule picked for some subnet. */
static enum verdict judge_hop(const struct rtmsg *rt, int ifindex)
{
    switch (link_class(ifindex)) {
    case LINK_UPLINK:
        return ALLOW;
    case LINK_INTERNAL:
        return rt->rtm_dst_len == 0 && rt->rtm_table == RT_TABLE_MAIN ? ALLOW : REFUSE;
    default:
        return FAILED;
    }
}

static enum verdict judge_multipath(const struct rtmsg *rt, const struct rtattr *mp, int *hops, int *last)
{
    int len = (int)RTA_PAYLOAD(mp);
    enum verdict v = ALLOW;
    for (const struct rtnexthop *nh = RTA_DATA(mp); v == ALLOW && RTNH_OK(nh, len); len -= RTNH_ALIGN(nh->rtnh_len), nh = RTNH_NEXT(nh)) {
        *last = nh->rtnh_ifindex;
        (*hops)++;
        v = judge_hop(rt, nh->rtnh_ifindex);
    }
    return v;
}

/* Every nexthop must pass: an ECMP route with one leg on a bridge is refused. */
static enum verdict judge_unicast(const struct rtmsg *rt, int len, int *pin)
{
    int hops = 0, last = 0;
    enum verdict v = ALLOW;
    for (const struct rtattr *a = RTM_RTA(rt); v == ALLOW && RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= sizeof(int)) {
            memcpy(&last, RTA_DATA(a), sizeof last);
            hops++;
            v = judge_hop(rt, last);
        } else if (a->rta_type == RTA_MULTIPATH) {
            v = judge_multipath(rt, a, &hops, &last);
        }
    }
    if (v == ALLOW && hops == 0) {
        guard_warn("the kernel's route names no interface (nexthop objects without compat mode?), refusing guest traffic", EBADMSG);
        return FAILED;
    }
    *pin = hops == 1 ? last : 0;
    return v;
}

static enum verdict judge(const struct nlmsghdr *h, int *pin)
{
    if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg))) {
        guard_warn("unexpected answer to RTM_GETROUTE, refusing guest traffic", EBADMSG);
        return FAILED;
    }
    const struct rtmsg *rt = NLMSG_DATA(h);
    switch (rt->rtm_type) {
    case RTN_UNICAST:
        return judge_unicast(rt, (int)RTM_PAYLOAD(h), pin);
    case RTN_LOCAL:
    case RTN_BROADCAST:
    case RTN_ANYCAST:
    case RTN_MULTICAST:
        return REFUSE;
    default:
        return NO_ROUTE;
    }
}

enum verdict route_verdict(const struct dest *d, int *pin)
{
    size_t alen = d->family == AF_INET ? 4 : 16;
    struct route_request req = {
        .h = {.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg)), .nlmsg_type = RTM_GETROUTE, .nlmsg_flags = NLM_F_REQUEST},
        .rt = {.rtm_family = (unsigned char)d->family, .rtm_dst_len = (unsigned char)(alen * 8), .rtm_flags = RTM_F_FIB_MATCH | RTM_F_LOOKUP_TABLE},
    };
    uint32_t uid = geteuid();
    add_attr(&req, RTA_DST, d->addr, alen);
    add_attr(&req, RTA_UID, &uid, sizeof uid);
    _Alignas(struct nlmsghdr) char reply[ROUTE_REPLY_MAX];
    ssize_t n = netlink_ask(&req.h, reply, sizeof reply);
    if (n < 0 && means_no_route((int)-n))
        return NO_ROUTE;
    if (n < 0)
        guard_warn("RTM_GETROUTE failed, refusing guest traffic", (int)-n);
    return n > 0 ? judge((const struct nlmsghdr *)reply, pin) : FAILED;
}
