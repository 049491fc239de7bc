/*
 * The decision for one sockaddr, before any kernel question where the address alone says it:
 * loopback, unspecified, link-local (cloud metadata at 169.254.169.254), multicast, IPv4
 * class E and limited broadcast are refused outright; everything else goes to the kernel's
 * routing answer (route.c). IPv6 addresses that carry an IPv4 address for a translator or
 * tunnel (v4-mapped, IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged as that
 * IPv4 address as well. Port 53 of the resolvers in /etc/resolv.conf stays open.
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>

#include "netguard.h"

static const uint8_t nat64_prefix[12] = {0x00, 0x64, 0xff, 0x9b};
static const uint8_t compat_prefix[12];

static enum verdict static_v4(const uint8_t *a)
{
    bool special = a[0] == 0 || a[0] == 127 || (a[0] == 169 && a[1] == 254) || a[0] >= 224;
    return special ? REFUSE : ALLOW;
}

static enum verdict static_v6(const struct in6_addr *a)
{
    bool special = IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
                   IN6_IS_ADDR_MULTICAST(a);
    return special ? REFUSE : ALLOW;
}

/* The IPv4 address inside an IPv6 one, where a translator or tunnel on this host could take
 * it out again: ::a.b.c.d (IPv4-compatible), 64:ff9b::a.b.c.d (NAT64), 2002:AABB:CCDD::/48. */
bool embedded_v4(const uint8_t *a, struct dest *v4)
{
    const uint8_t *from = NULL;
    if (memcmp(a, compat_prefix, 12) == 0 || memcmp(a, nat64_prefix, 12) == 0)
        from = a + 12;
    else if (a[0] == 0x20 && a[1] == 0x02)
        from = a + 2;
    if (from == NULL)
        return false;
    memset(v4, 0, sizeof *v4);
    v4->family = AF_INET;
    memcpy(v4->addr, from, 4);
    return true;
}

static enum verdict judge(const struct dest *d, int *pin)
{
    enum verdict v = d->family == AF_INET ? static_v4(d->addr) : static_v6((const struct in6_addr *)d->addr);
    if (v != ALLOW)
        return v;
    struct dest v4;
    if (d->family == AF_INET6 && embedded_v4(d->addr, &v4)) {
        int unused;
        v = static_v4(v4.addr);
        if (v == ALLOW)
            v = route_verdict(&v4, &unused);
        if (v != ALLOW)
            return v;
    }
    return route_verdict(d, pin);
}

/* A short address is refused here; the kernel would refuse it too (EINVAL). */
enum parsed parse_dest(const struct sockaddr *sa, socklen_t len, struct dest *d)
{
    memset(d, 0, sizeof *d);
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
        return NOT_IP;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        if (len < (socklen_t)sizeof *in)
            return TOO_SHORT;
        d->family = AF_INET;
        memcpy(d->addr, &in->sin_addr, 4);
        d->port = ntohs(in->sin_port);
        return PARSED;
    }
    if (sa->sa_family != AF_INET6)
        return NOT_IP;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    if (len < (socklen_t)offsetof(struct sockaddr_in6, sin6_scope_id))
        return TOO_SHORT;
    d->port = ntohs(in6->sin6_port);
    d->family = IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) ? AF_INET : AF_INET6;
    if (d->family == AF_INET)
        memcpy(d->addr, in6->sin6_addr.s6_addr + 12, 4);
    else
        memcpy(d->addr, &in6->sin6_addr, 16);
    return PARSED;
}

enum verdict guard_verdict(const struct sockaddr *sa, socklen_t len, int *pin)
{
    struct dest d;
    *pin = 0;
    switch (parse_dest(sa, len, &d)) {
    case NOT_IP:
        return ALLOW;
    case TOO_SHORT:
        return REFUSE;
    case PARSED:
        break;
    }
    enum verdict v = judge(&d, pin);
    if ((v == REFUSE || v == FAILED) && d.port == 53 && is_nameserver(&d)) {
        *pin = 0;
        return ALLOW;
    }
    return v;
}
