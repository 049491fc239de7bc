/*
 * Service links. The block 198.18.0.0/24 is the guest's view of other VMs: the engine gives
 * MICROVM_NETGUARD_SERVICES="198.18.0.2:5432=/run/x/link-0.sock,198.18.0.3:80=/run/x/link-1.sock"
 * (address:port=PATH), and the guest's TCP connection to 198.18.0.2:5432 becomes a connection
 * to the unix socket PATH (netguard.c, connect_service), where the engine relays it into the
 * other VM over that VM's agent channel. No TCP port on the host carries it, so no other host
 * process can reach the service. Every other destination inside the block is refused, in
 * every mode, so it is never routed out; so is every IPv6 form that carries such an address.
 * The map is read once, when the library loads; a malformed one refuses every link (fail
 * closed) and says so on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "netguard.h"

#define MAX_SERVICES 256

struct link {
    uint8_t addr[4];
    uint16_t port;                 /* the guest's destination port */
    struct sockaddr_un relay;      /* the engine's unix socket for it */
};

static struct link links[MAX_SERVICES];
static int link_count; /* -1: the map was malformed, every link is refused */

static bool in_block(const uint8_t *a)
{
    return a[0] == 198 && a[1] == 18 && a[2] == 0;
}

/* A decimal port 1..65535 spelled out exactly (no sign, no spaces) from s to end. */
static bool parse_port(const char *s, const char *end, uint16_t *port)
{
    long value = 0;
    if (end <= s || end - s > 5)
        return false;
    for (const char *c = s; c < end; c++) {
        if (*c < '0' || *c > '9')
            return false;
        value = value * 10 + (*c - '0');
    }
    if (value < 1 || value > 65535)
        return false;
    *port = (uint16_t)value;
    return true;
}

/* An absolute path that fits sun_path with its NUL, with no ',' or '=' (the map's separators). */
static bool parse_path(const char *s, const char *end, struct sockaddr_un *out)
{
    size_t n = (size_t)(end - s);
    if (n < 2 || n >= sizeof out->sun_path || *s != '/' || memchr(s, '=', n) != NULL)
        return false;
    memset(out, 0, sizeof *out);
    out->sun_family = AF_UNIX;
    memcpy(out->sun_path, s, n);
    return true;
}

/* One "a.b.c.d:port=PATH" from s to end: a host address of the block, a port, a socket path. */
static bool parse_link(const char *s, const char *end, struct link *out)
{
    const char *colon = memchr(s, ':', (size_t)(end - s));
    const char *equals = colon ? memchr(colon, '=', (size_t)(end - colon)) : NULL;
    char text[INET_ADDRSTRLEN];
    if (equals == NULL || colon == s || (size_t)(colon - s) >= sizeof text)
        return false;
    memcpy(text, s, (size_t)(colon - s));
    text[colon - s] = '\0';
    if (inet_pton(AF_INET, text, out->addr) != 1 || !in_block(out->addr) || out->addr[3] == 0 || out->addr[3] == 255)
        return false;
    return parse_port(colon + 1, equals, &out->port) && parse_path(equals + 1, end, &out->relay);
}

static bool listed(const struct link *l, int count)
{
    for (int i = 0; i < count; i++)
        if (memcmp(links[i].addr, l->addr, 4) == 0 && links[i].port == l->port)
            return true;
    return false;
}

void services_read(void)
{
    const char *text = getenv("MICROVM_NETGUARD_SERVICES");
    if (text == NULL || *text == '\0')
        return;
    int count = 0;
    for (const char *s = text;;) {
        const char *end = strchrnul(s, ',');
        if (count == MAX_SERVICES || !parse_link(s, end, &links[count]) || listed(&links[count], count)) {
            link_count = -1;
            guard_warn("MICROVM_NETGUARD_SERVICES is malformed (address:port=PATH, comma-separated, "
                       "at most 256, inside 198.18.0.0/24, PATH absolute and under 108 bytes), refusing every service link", EINVAL);
            return;
        }
        count++;
        if (*end == '\0')
            break;
        s = end + 1;
    }
    link_count = count;
}

enum service service_target(const struct sockaddr *sa, socklen_t len, const struct sockaddr_un **relay)
{
    struct dest d, carried;
    if (parse_dest(sa, len, &d) != PARSED)
        return NOT_SERVICE;
    if (d.family == AF_INET6)
        return embedded_v4(d.addr, &carried) && in_block(carried.addr) ? SERVICE_REFUSED : NOT_SERVICE;
    if (!in_block(d.addr))
        return NOT_SERVICE;
    /* A v4-mapped IPv6 address is refused too: slirp connects to a service over IPv4. */
    if (sa->sa_family != AF_INET)
        return SERVICE_REFUSED;
    for (int i = 0; i < link_count; i++) {
        if (memcmp(links[i].addr, d.addr, 4) == 0 && links[i].port == d.port) {
            *relay = &links[i].relay;
            return SERVICE_LINKED;
        }
    }
    return SERVICE_REFUSED;
}
