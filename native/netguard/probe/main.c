/*
 * netguard-probe: drives microvm-netguard.so from the host, for test/native/netguard.test.ts
 * and the netguard bench rows. Run it with LD_PRELOAD=microvm-netguard.so.
 *
 *   netguard-probe                          one question per stdin line, one answer per line:
 *       tcp ADDR PORT   -> "allowed IFNAME|-" (connect() started; the interface the guard
 *       udp ADDR PORT      bound the socket to) or "refused ERRNO" (e.g. ECONNREFUSED);
 *       msg ADDR PORT      udp sends with sendto(), msg with sendmsg(), mmsg with sendmmsg()
 *       mmsg ADDR PORT
 *       fill-fds        -> "filled": every free descriptor but one is taken, so the guard
 *                          cannot open its netlink socket on the next question
 *       listen PORT     -> "listening": a TCP listener on every address of the namespace
 *       hold ADDR PORT  -> like tcp, but the connecting socket is kept
 *       held MS         -> "connected", "pending" or "failed ERRNO": what became of it
 *       kind            -> the held socket: "unix PATH nonblock cloexec" (or "inet"/"inet6",
 *                          flags it lacks left out): what a service link made of it
 *       read MS         -> the first line the held socket reads within MS, or "nothing"
 *       drop            -> "dropped": the held socket is closed, the next hold keeps its own
 *   netguard-probe window IPV4 IFNAME SAMPLES
 *       per sample "window_us event_us ack_us": from sending RTM_NEWADDR for IPV4/32 on
 *       IFNAME to the first refused connect() (a thread connects in a loop), to the arrival
 *       of the kernel's RTM_NEWADDR event at a listener, and to the kernel's ack
 *   netguard-probe overhead IPV4 SAMPLES BATCH
 *       per sample "guarded_us raw_us": socket + connect + close of a UDP socket to IPV4,
 *       through the preloaded connect() and through the raw system call
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"

int64_t now_ns(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t) != 0)
        die("clock_gettime");
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

void die(const char *what)
{
    fprintf(stderr, "netguard-probe: %s: %s\n", what, strerror(errno));
    exit(1);
}

int parse_count(const char *text)
{
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || value < 1 || value > 1000000) {
        fprintf(stderr, "netguard-probe: not a count: %s\n", text);
        exit(2);
    }
    return (int)value;
}

static int parse_address(const char *text, const char *port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    int p = atoi(port);
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)p);
        return sizeof *in;
    }
    if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)p);
        return sizeof *in6;
    }
    return -1;
}

static void answer_refused(int err)
{
    printf("refused %s\n", strerrorname_np(err) ? strerrorname_np(err) : "?");
}

static void answer_allowed(int fd)
{
    char name[IF_NAMESIZE + 1] = "-";
    socklen_t len = sizeof name;
    if (getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, &len) != 0)
        die("getsockopt SO_BINDTODEVICE");
    printf("allowed %s\n", len > 0 && name[0] != '\0' ? name : "-");
}

static int held_fd = -1;

/* One datagram to ss through the send call the question names. */
static bool send_datagram(int fd, const char *proto, struct sockaddr_storage *ss, socklen_t len)
{
    char byte = '?';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct mmsghdr m = {.msg_hdr = {.msg_name = ss, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1}};
    if (strcmp(proto, "msg") == 0)
        return sendmsg(fd, &m.msg_hdr, 0) == 1;
    if (strcmp(proto, "mmsg") == 0)
        return sendmmsg(fd, &m, 1, 0) == 1;
    return sendto(fd, &byte, 1, 0, (struct sockaddr *)ss, len) == 1;
}

/* A non-blocking connect() that started, or a datagram sent, counts as allowed. */
static void ask(const char *proto, const char *addr, const char *port, bool hold)
{
    struct sockaddr_storage ss;
    int len = parse_address(addr, port, &ss);
    bool tcp = strcmp(proto, "tcp") == 0 || hold;
    bool udp = strcmp(proto, "udp") == 0 || strcmp(proto, "msg") == 0 || strcmp(proto, "mmsg") == 0;
    if (len < 0 || (!tcp && !udp)) {
        printf("bad question\n");
        return;
    }
    int fd = socket(ss.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    bool started = tcp ? connect(fd, (struct sockaddr *)&ss, (socklen_t)len) == 0 || errno == EINPROGRESS
                       : send_datagram(fd, proto, &ss, (socklen_t)len);
    if (started)
        answer_allowed(fd);
    else
        answer_refused(errno);
    if (hold && started && held_fd < 0)
        held_fd = fd;
    else if (close(fd) != 0)
        die("close");
}

static void listen_on(const char *port)
{
    struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(port))};
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), off = 0, on = 1;
    if (fd < 0 || setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        bind(fd, (struct sockaddr *)&any, sizeof any) != 0 || listen(fd, 16) != 0)
        die("listen");
    printf("listening\n");
}

static void report_held(const char *ms)
{
    struct pollfd p = {.fd = held_fd, .events = POLLOUT};
    int err = 0;
    socklen_t len = sizeof err;
    int r = held_fd < 0 ? -1 : poll(&p, 1, atoi(ms));
    if (r < 0 || getsockopt(held_fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        die("poll on the held connection");
    if (err != 0)
        answer_refused(err);
    else
        printf(r == 0 ? "pending\n" : "connected\n");
}

static void report_kind(void)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int status = fcntl(held_fd, F_GETFL), fdflags = fcntl(held_fd, F_GETFD);
    if (held_fd < 0 || status < 0 || fdflags < 0 || getpeername(held_fd, (struct sockaddr *)&peer, &len) != 0)
        die("the held socket");
    if (peer.ss_family == AF_UNIX)
        printf("unix %s", ((struct sockaddr_un *)&peer)->sun_path);
    else
        printf(peer.ss_family == AF_INET ? "inet" : "inet6");
    printf("%s%s\n", (status & O_NONBLOCK) ? " nonblock" : "", (fdflags & FD_CLOEXEC) ? " cloexec" : "");
}

static void report_read(const char *ms)
{
    char text[128];
    size_t got = 0;
    struct pollfd p = {.fd = held_fd, .events = POLLIN};
    while (got < sizeof text - 1 && held_fd >= 0 && poll(&p, 1, atoi(ms)) == 1) {
        ssize_t n = recv(held_fd, text + got, 1, 0);
        if (n <= 0 || text[got] == '\n')
            break;
        got++;
    }
    text[got] = '\0';
    printf("%s\n", got > 0 ? text : "nothing");
}

static void drop_held(void)
{
    if (held_fd >= 0 && close(held_fd) != 0)
        die("close");
    held_fd = -1;
    printf("dropped\n");
}

/* The descriptor limit is lowered first, so that filling the table is quick. */
static void fill_fds(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        die("getrlimit");
    limit.rlim_cur = limit.rlim_cur < 64 ? limit.rlim_cur : 64;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
        die("setrlimit");
    int last = -1;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0 && errno == EMFILE)
            break;
        if (fd < 0)
            die("open /dev/null");
        last = fd;
    }
    if (last < 0 || close(last) != 0)
        die("close");
    printf("filled\n");
}

static int serve(void)
{
    char line[256], word[8], addr[64], port[8];
    while (fgets(line, sizeof line, stdin) != NULL) {
        int words = sscanf(line, "%7s %63s %7s", word, addr, port);
        if (strcmp(line, "fill-fds\n") == 0)
            fill_fds();
        else if (strcmp(line, "kind\n") == 0)
            report_kind();
        else if (strcmp(line, "drop\n") == 0)
            drop_held();
        else if (words == 2 && strcmp(word, "read") == 0)
            report_read(addr);
        else if (words == 2 && strcmp(word, "listen") == 0)
            listen_on(addr);
        else if (words == 2 && strcmp(word, "held") == 0)
            report_held(addr);
        else if (words == 3)
            ask(word, addr, port, strcmp(word, "hold") == 0);
        else
            printf("bad question\n");
        if (fflush(stdout) != 0)
            die("stdout");
    }
    return 0;
}

static struct in_addr ipv4(const char *text)
{
    struct in_addr a;
    if (inet_pton(AF_INET, text, &a) != 1) {
        fprintf(stderr, "netguard-probe: not an IPv4 address: %s\n", text);
        exit(2);
    }
    return a;
}

int main(int argc, char **argv)
{
    if (argc == 1)
        return serve();
    if (argc == 5 && strcmp(argv[1], "window") == 0)
        return measure_window(ipv4(argv[2]), argv[3], parse_count(argv[4]));
    if (argc == 5 && strcmp(argv[1], "overhead") == 0)
        return measure_overhead(ipv4(argv[2]), parse_count(argv[3]), parse_count(argv[4]));
    fprintf(stderr, "usage: netguard-probe | netguard-probe window IPV4 IFNAME SAMPLES | netguard-probe overhead IPV4 SAMPLES BATCH\n");
    return 2;
}
