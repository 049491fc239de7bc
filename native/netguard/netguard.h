#ifndef NETGUARD_H
#define NETGUARD_H

#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* A destination as the guard judges it. A v4-mapped IPv6 address becomes IPv4. */
struct dest {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* 4 bytes used for AF_INET */
    uint16_t port;    /* host byte order */
};

enum verdict {
    ALLOW,    /* a destination beyond the host, or a resolver's port 53 */
    REFUSE,   /* the host itself, or something inside it (README.md has the rules) */
    NO_ROUTE, /* the kernel has no route there: it would refuse too */
    FAILED,   /* the guard could not get the kernel's answer: refused (fail closed) */
};

enum link_class {
    LINK_FAILED,   /* the kernel did not describe the link */
    LINK_UPLINK,   /* leaves the host: a NIC, its VLANs and bonds, a VPN tunnel */
    LINK_INTERNAL, /* lives inside the host: bridges, veth, tap, dummy, loopback, ... */
};

/* verdict.c: a sockaddr as a dest (a v4-mapped address becomes IPv4); the IPv4 address an
 * IPv6 one carries for a translator or tunnel (IPv4-compatible, NAT64, 6to4), if any. */
enum parsed { NOT_IP, TOO_SHORT, PARSED };
enum parsed parse_dest(const struct sockaddr *sa, socklen_t len, struct dest *d);
bool embedded_v4(const uint8_t *addr, struct dest *v4);

/* verdict.c: the whole decision for one sockaddr. *pin is the interface to bind a connecting
 * socket to (0: none). Families other than IPv4/IPv6 are allowed untouched. */
enum verdict guard_verdict(const struct sockaddr *sa, socklen_t len, int *pin);

/* route.c: the kernel's route to d, judged by its type and the class of its links. */
enum verdict route_verdict(const struct dest *d, int *pin);

/* links.c: the class of one interface, cached until the next link event. */
enum link_class link_class(int ifindex);
void links_follow_events(void);

/* netlink.c: one request to the kernel on this thread's rtnetlink socket. Returns the length
 * of the answer in reply, the kernel's error answer as -errno, or 0 when there was no answer
 * (already reported on stderr). */
ssize_t netlink_ask(struct nlmsghdr *request, void *reply, size_t capacity);

/* resolv.c: d is a nameserver of /etc/resolv.conf (re-read when the file changes). */
bool is_nameserver(const struct dest *d);

/* services.c: service links (MICROVM_NETGUARD_SERVICES), read once at load. A destination
 * inside 198.18.0.0/24 is LINKED (*relay is the engine's unix socket for it) or REFUSED;
 * anything else is NOT_SERVICE and judged as usual. */
enum service { NOT_SERVICE, SERVICE_LINKED, SERVICE_REFUSED };
void services_read(void);
enum service service_target(const struct sockaddr *sa, socklen_t len, const struct sockaddr_un **relay);

/* warn.c: one line on stderr, at most once every few seconds. */
void guard_warn(const char *what, int err);

#endif
