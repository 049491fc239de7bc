/*
 * microvm-netguard.so: preloaded into QEMU (LD_PRELOAD) when the guest has user-mode
 * networking. QEMU 7.2 does not expose libslirp's disable_host_loopback, and slirp makes
 * every outbound guest connection from the host itself, so without this the guest could
 * reach services on the host's loopback (through 10.0.2.2) or on the host's own addresses.
 *
 * connect(), sendto() and sendmsg() to an IPv4/IPv6 destination are refused when the
 * destination is loopback, unspecified, link-local (cloud metadata), or an address of one of
 * the host's interfaces. Port 53 of the nameservers in /etc/resolv.conf stays allowed: slirp
 * forwards the guest's DNS (10.0.2.3) there, and it is often 127.0.0.53.
 * AF_UNIX and the other families pass untouched (QEMU's own chardev and QMP sockets).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_ADDRS 64
#define REFRESH_SECONDS 5

struct addr {
    int family;
    uint8_t bytes[16];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct addr host_addrs[MAX_ADDRS];
static int nhost;
static struct addr nameservers[8];
static int nns;
static time_t refreshed;

static int to_addr(const struct sockaddr *sa, struct addr *out, uint16_t *port)
{
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        out->family = AF_INET;
        memcpy(out->bytes, &in->sin_addr, 4);
        *port = ntohs(in->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            out->family = AF_INET;
            memcpy(out->bytes, in6->sin6_addr.s6_addr + 12, 4);
        } else {
            out->family = AF_INET6;
            memcpy(out->bytes, &in6->sin6_addr, 16);
        }
        *port = ntohs(in6->sin6_port);
        return 0;
    }
    return -1;
}

static bool same(const struct addr *a, const struct addr *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, 16) == 0;
}

static void load_nameservers(void)
{
    FILE *f = fopen("/etc/resolv.conf", "re");
    char line[256], text[128];
    nns = 0;
    while (f != NULL && nns < 8 && fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, " nameserver %127s", text) != 1)
            continue;
        struct addr *a = &nameservers[nns];
        memset(a, 0, sizeof *a);
        if (inet_pton(AF_INET, text, a->bytes) == 1)
            a->family = AF_INET, nns++;
        else if (inet_pton(AF_INET6, text, a->bytes) == 1)
            a->family = AF_INET6, nns++;
    }
    if (f != NULL)
        fclose(f);
}

/* The host's addresses change rarely; they are re-read at most every REFRESH_SECONDS. */
static void refresh(void)
{
    time_t now = time(NULL);
    if (refreshed != 0 && now - refreshed < REFRESH_SECONDS)
        return;
    refreshed = now;
    load_nameservers();
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) != 0)
        return;
    nhost = 0;
    for (struct ifaddrs *i = list; i != NULL && nhost < MAX_ADDRS; i = i->ifa_next) {
        uint16_t port;
        if (i->ifa_addr != NULL && to_addr(i->ifa_addr, &host_addrs[nhost], &port) == 0)
            nhost++;
    }
    freeifaddrs(list);
}

static bool special(const struct addr *a)
{
    const uint8_t *b = a->bytes;
    if (a->family == AF_INET)
        return b[0] == 127 || b[0] == 0 || (b[0] == 169 && b[1] == 254);
    static const uint8_t zero[16];
    bool loopback = memcmp(b, zero, 15) == 0 && b[15] == 1;
    return loopback || memcmp(b, zero, 16) == 0 || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
}

static bool refused(const struct sockaddr *sa, socklen_t len)
{
    struct addr a;
    uint16_t port;
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t) || to_addr(sa, &a, &port) != 0)
        return false;
    pthread_mutex_lock(&lock);
    refresh();
    bool deny = special(&a);
    for (int i = 0; !deny && i < nhost; i++)
        deny = same(&a, &host_addrs[i]);
    for (int i = 0; deny && port == 53 && i < nns; i++)
        if (same(&a, &nameservers[i]))
            deny = false;
    pthread_mutex_unlock(&lock);
    return deny;
}

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (real == NULL)
        real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    if (refused(sa, len)) {
        errno = ECONNREFUSED;
        return -1;
    }
    return real(fd, sa, len);
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa,
               socklen_t len)
{
    static ssize_t (*real)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    if (real == NULL)
        real = (ssize_t (*)(int, const void *, size_t, int, const struct sockaddr *,
                            socklen_t))dlsym(RTLD_NEXT, "sendto");
    if (refused(sa, len)) {
        errno = EACCES;
        return -1;
    }
    return real(fd, buf, n, flags, sa, len);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    static ssize_t (*real)(int, const struct msghdr *, int);
    if (real == NULL)
        real = (ssize_t (*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT, "sendmsg");
    if (msg != NULL && refused((const struct sockaddr *)msg->msg_name, msg->msg_namelen)) {
        errno = EACCES;
        return -1;
    }
    return real(fd, msg, flags);
}
