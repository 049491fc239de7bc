/*
 * microvm-netguard.so: preloaded into QEMU (LD_PRELOAD) when the guest has user-mode
 * networking. QEMU 7.2 does not expose libslirp's disable_host_loopback, and slirp makes
 * every outbound guest connection from the host itself, so without this the guest could
 * reach services on the host's loopback (through 10.0.2.2), on the host's own addresses, and
 * on everything attached to the host's bridges (containers, other VMs).
 *
 * connect(), sendto(), sendmsg() and sendmmsg() to an IPv4/IPv6 destination are judged by
 * guard_verdict() (verdict.c, route.c, links.c; the rules are in README.md): the host itself
 * and what lives inside it are refused, the world beyond its uplinks is allowed, and when the
 * kernel's answer cannot be had the call is refused. AF_UNIX and the other families pass
 * untouched (QEMU's own chardev and QMP sockets). Before any of that, service links
 * (services.c) take the guest's TCP connections to 198.18.0.0/24 to the engine's unix
 * sockets, and refuse everything else inside that block, whatever the mode.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netguard.h"

/* Built with -fvisibility=hidden: only the interposed libc functions are exported. */
#define EXPORT __attribute__((visibility("default")))

static int (*real_connect)(int, const struct sockaddr *, socklen_t);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static int (*real_sendmmsg)(int, struct mmsghdr *, unsigned int, int);
static pthread_once_t resolved = PTHREAD_ONCE_INIT;

static void resolve(void)
{
    real_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    real_sendto = (ssize_t (*)(int, const void *, size_t, int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "sendto");
    real_sendmsg = (ssize_t (*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT, "sendmsg");
    real_sendmmsg = (int (*)(int, struct mmsghdr *, unsigned int, int))dlsym(RTLD_NEXT, "sendmmsg");
    real_recvfrom = (ssize_t (*)(int, void *, size_t, int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "recvfrom");
    if (!real_connect || !real_sendto || !real_sendmsg || !real_sendmmsg || !real_recvfrom)
        guard_warn("dlsym found no libc socket functions, refusing all traffic", ENOSYS);
}

/*
 * Proxy mode (MICROVM_NETGUARD_PROXY=PORT, the VM's network is `allowlist` or `learn`): the
 * guest's only way out is the engine's egress proxy. The guest sends to 10.0.2.2:3128, which
 * slirp turns into a connection to 127.0.0.1:3128; the guard points it at 127.0.0.1:PORT and
 * refuses every other IPv4/IPv6 connection and datagram (DNS, UDP, ICMP, direct addresses).
 * `none` refuses everything but service links: a VM with network 'none' that has links. Any
 * other value that is not a port refuses everything too (fail closed), with a warning.
 */
#define GUEST_PROXY_PORT 3128
static int proxy_port = -1; /* -1: not proxy mode; 0: proxy mode, refuse all */

static void read_proxy_mode(void)
{
    const char *text = getenv("MICROVM_NETGUARD_PROXY");
    if (text == NULL)
        return;
    char *end = NULL;
    long port = strtol(text, &end, 10);
    proxy_port = (end != text && *end == '\0' && port > 0 && port < 65536) ? (int)port : 0;
    if (proxy_port == 0 && strcmp(text, "none") != 0)
        guard_warn("MICROVM_NETGUARD_PROXY is not a port, refusing all traffic", EINVAL);
}

/*
 * DNS in proxy mode (MICROVM_NETGUARD_DNS=PORT): slirp's datagrams to port 53 of the host's
 * resolvers (where it sends what the guest asks 10.0.2.3) go to the engine's answerer on 127.0.0.1:PORT instead, which answers only the
 * names the VM may reach; recvfrom() makes its replies look like the resolver's, as slirp
 * matches them to the guest's query by address and port. Without it, DNS is refused too.
 */
#define MAX_DNS_FDS 4096
static int dns_port = 0;
static bool dns_redirected[MAX_DNS_FDS];
static struct sockaddr_in dns_resolver[MAX_DNS_FDS];

static void read_dns_mode(void)
{
    const char *text = getenv("MICROVM_NETGUARD_DNS");
    if (text == NULL || proxy_port < 0)
        return;
    char *end = NULL;
    long port = strtol(text, &end, 10);
    dns_port = (end != text && *end == '\0' && port > 0 && port < 65536) ? (int)port : 0;
}

/* A datagram to port 53 of an IPv4 address, sent instead to the answerer; false: not DNS. */
static bool redirect_dns(int fd, const struct sockaddr *sa, socklen_t len, struct sockaddr_in *out)
{
    if (dns_port <= 0 || fd < 0 || fd >= MAX_DNS_FDS || sa == NULL || len < sizeof(struct sockaddr_in) || sa->sa_family != AF_INET)
        return false;
    struct sockaddr_in in;
    memcpy(&in, sa, sizeof in);
    struct dest d = { .family = AF_INET, .port = ntohs(in.sin_port) };
    memcpy(d.addr, &in.sin_addr, 4);
    /* Only where slirp sends the guest's 10.0.2.3 (the host's resolvers): another resolver is refused. */
    if (d.port != 53 || !is_nameserver(&d))
        return false;
    dns_resolver[fd] = in;
    dns_redirected[fd] = true;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    in.sin_port = htons((uint16_t)dns_port);
    *out = in;
    return true;
}

static bool is_inet(const struct sockaddr *sa, socklen_t len)
{
    return sa != NULL && len >= sizeof(sa_family_t) && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
}

/* The proxy's own address, when sa is what slirp makes of the guest's 10.0.2.2:3128. */
static bool proxy_target(const struct sockaddr *sa, socklen_t len, struct sockaddr_in *out)
{
    if (proxy_port <= 0 || sa == NULL || len < sizeof(struct sockaddr_in) || sa->sa_family != AF_INET)
        return false;
    struct sockaddr_in in;
    memcpy(&in, sa, sizeof in);
    if (in.sin_addr.s_addr != htonl(INADDR_LOOPBACK) || ntohs(in.sin_port) != GUEST_PROXY_PORT)
        return false;
    in.sin_port = htons((uint16_t)proxy_port);
    *out = in;
    return true;
}

__attribute__((constructor)) static void start(void)
{
    pthread_once(&resolved, resolve);
    services_read();
    read_proxy_mode();
    read_dns_mode();
    if (proxy_port < 0)
        links_follow_events();
}

static bool in_service_net(const struct sockaddr *sa, socklen_t len)
{
    const struct sockaddr_un *unused;
    return service_target(sa, len, &unused) != NOT_SERVICE;
}

/* A datagram: never to the service links' block (links are TCP), in proxy mode never to any
 * IP destination (DNS is redirected before this), otherwise the guard's verdict. */
static enum verdict datagram_verdict(const struct sockaddr *sa, socklen_t len, int *pin)
{
    *pin = 0;
    if (in_service_net(sa, len) || (proxy_port >= 0 && is_inet(sa, len)))
        return REFUSE;
    return guard_verdict(sa, len, pin);
}

/* The errno a refused call returns: connect gets ECONNREFUSED (slirp answers the guest's SYN
 * with a reset), datagrams get EACCES, and where the kernel has no route, its own ENETUNREACH. */
static int refusal(enum verdict v, int refused)
{
    return v == NO_ROUTE ? ENETUNREACH : refused;
}

/*
 * A connecting socket is bound to the interface the kernel chose when the guard asked. If a
 * route changes afterwards (a bridge comes up for a subnet that used to go out through the
 * default route), the connection cannot follow it inside the host: a bound socket's packets
 * only use routes through its interface. Kernels before 5.7 let only privileged processes
 * bind; the guard then goes on without (the verdict itself is already given). A socket that
 * something bound to another interface before is refused: the route judged is not its route.
 */
static bool pin_socket(int fd, int ifindex)
{
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &ifindex, sizeof ifindex) == 0)
        return true;
    int err = errno, bound = 0;
    socklen_t len = sizeof bound;
    if (err == EPERM && getsockopt(fd, SOL_SOCKET, SO_BINDTOIFINDEX, &bound, &len) == 0 && bound != 0)
        return bound == ifindex;
    guard_warn("cannot bind a connection to its interface (SO_BINDTOIFINDEX), going on unbound", err);
    return true;
}

static bool is_stream(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

/*
 * A linked TCP destination goes to the engine's unix socket for it: slirp's TCP socket is
 * replaced, under the same descriptor number, by a unix stream socket with the same flags
 * (O_NONBLOCK, FD_CLOEXEC), which then connects to the relay's path. slirp only sends,
 * receives, shuts down, asks SO_ERROR and getpeername of a connected socket, which a unix
 * stream socket answers as a TCP one would (its TCP_NODELAY and SO_OOBINLINE were set
 * before connect, on the socket replaced). A unix connect is never in progress: it is made
 * or refused at once. A full backlog (EAGAIN) would look to slirp like a TCP connect still
 * in progress on a socket that never connects, so it is refused like a missing or closed
 * relay (ENOENT, ECONNREFUSED): the guest gets a reset. A datagram socket connecting to
 * the block is refused.
 */
static int connect_service(int fd, enum service s, const struct sockaddr_un *relay)
{
    if (real_connect == NULL || s != SERVICE_LINKED || !is_stream(fd)) {
        errno = real_connect == NULL ? ENOSYS : ECONNREFUSED;
        return -1;
    }
    int status = fcntl(fd, F_GETFL), fdflags = fcntl(fd, F_GETFD);
    if (status < 0 || fdflags < 0)
        return -1;
    int type = SOCK_STREAM | ((status & O_NONBLOCK) ? SOCK_NONBLOCK : 0) | ((fdflags & FD_CLOEXEC) ? SOCK_CLOEXEC : 0);
    int unix_fd = socket(AF_UNIX, type, 0);
    if (unix_fd < 0)
        return -1;
    if (dup3(unix_fd, fd, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
        int err = errno;
        close(unix_fd);
        errno = err;
        return -1;
    }
    close(unix_fd);
    int r = real_connect(fd, (const struct sockaddr *)relay, sizeof *relay);
    if (r < 0)
        errno = ECONNREFUSED;
    return r;
}

EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    pthread_once(&resolved, resolve);
    const struct sockaddr_un *relay = NULL;
    enum service s = service_target(sa, len, &relay);
    if (s != NOT_SERVICE)
        return connect_service(fd, s, relay);
    if (proxy_port >= 0 && is_inet(sa, len)) {
        struct sockaddr_in proxy;
        if (real_connect == NULL || !proxy_target(sa, len, &proxy)) {
            errno = real_connect == NULL ? ENOSYS : ECONNREFUSED;
            return -1;
        }
        return real_connect(fd, (const struct sockaddr *)&proxy, sizeof proxy);
    }
    int pin = 0;
    enum verdict v = guard_verdict(sa, len, &pin);
    if (v == ALLOW && pin != 0 && !pin_socket(fd, pin))
        v = REFUSE;
    if (v != ALLOW || real_connect == NULL) {
        errno = real_connect == NULL ? ENOSYS : refusal(v, ECONNREFUSED);
        return -1;
    }
    return real_connect(fd, sa, len);
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa, socklen_t len)
{
    pthread_once(&resolved, resolve);
    int pin;
    struct sockaddr_in answerer;
    if (proxy_port >= 0 && real_sendto != NULL && !in_service_net(sa, len) && redirect_dns(fd, sa, len, &answerer))
        return real_sendto(fd, buf, n, flags, (const struct sockaddr *)&answerer, sizeof answerer);
    enum verdict v = datagram_verdict(sa, len, &pin);
    if (v != ALLOW || real_sendto == NULL) {
        errno = real_sendto == NULL ? ENOSYS : refusal(v, EACCES);
        return -1;
    }
    return real_sendto(fd, buf, n, flags, sa, len);
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    pthread_once(&resolved, resolve);
    int pin;
    enum verdict v = msg == NULL ? ALLOW : datagram_verdict((const struct sockaddr *)msg->msg_name, msg->msg_namelen, &pin);
    if (v != ALLOW || real_sendmsg == NULL) {
        errno = real_sendmsg == NULL ? ENOSYS : refusal(v, EACCES);
        return -1;
    }
    return real_sendmsg(fd, msg, flags);
}

/* One refused destination fails the whole batch, before anything is sent. */
EXPORT int sendmmsg(int fd, struct mmsghdr *msgs, unsigned int count, int flags)
{
    pthread_once(&resolved, resolve);
    int pin;
    enum verdict v = ALLOW;
    for (unsigned int i = 0; msgs != NULL && i < count && v == ALLOW; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)msgs[i].msg_hdr.msg_name;
        socklen_t len = msgs[i].msg_hdr.msg_namelen;
        v = datagram_verdict(sa, len, &pin);
    }
    if (v != ALLOW || real_sendmmsg == NULL) {
        errno = real_sendmmsg == NULL ? ENOSYS : refusal(v, EACCES);
        return -1;
    }
    return real_sendmmsg(fd, msgs, count, flags);
}

/* Proxy mode with DNS: a reply from the answerer carries the resolver's address the query was sent to. */
EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *src, socklen_t *srclen)
{
    pthread_once(&resolved, resolve);
    if (real_recvfrom == NULL) {
        errno = ENOSYS;
        return -1;
    }
    ssize_t got = real_recvfrom(fd, buf, n, flags, src, srclen);
    if (got >= 0 && dns_port > 0 && fd >= 0 && fd < MAX_DNS_FDS && dns_redirected[fd] && src != NULL && srclen != NULL
        && *srclen >= sizeof(struct sockaddr_in) && src->sa_family == AF_INET) {
        struct sockaddr_in from;
        memcpy(&from, src, sizeof from);
        if (from.sin_addr.s_addr == htonl(INADDR_LOOPBACK) && ntohs(from.sin_port) == dns_port)
            memcpy(src, &dns_resolver[fd], sizeof dns_resolver[fd]);
    }
    return got;
}
