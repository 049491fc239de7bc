/*
 * The byte stream to the host: a Unix socket in test mode, the virtio-serial port in the
 * guest, or a vsock connection (microvm.vsock=PORT: vfkit on macOS). Frames are written whole
 * with blocking writes.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "agent.h"

static int conn_fd = -1;
static bool conn_lost;

void transport_set_fd(int fd)
{
    if (fd >= 0 && fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
        log_msg("fcntl O_NONBLOCK on the host connection: %s", strerror(errno));
    conn_fd = fd;
    conn_lost = false;
}

int transport_fd(void)
{
    return conn_fd;
}

bool transport_lost(void)
{
    return conn_lost;
}

int send_frame(uint8_t type, uint32_t stream, const void *payload, size_t len)
{
    if (conn_fd < 0 || conn_lost)
        return -1;
    uint8_t header[HEADER_SIZE];
    frame_header_encode(header, type, stream, (uint32_t)len);
    struct iovec iov[2] = {
        {.iov_base = header, .iov_len = sizeof header},
        {.iov_base = (void *)payload, .iov_len = len},
    };
    int iovcnt = len > 0 ? 2 : 1;
    struct iovec *cur = iov;
    while (iovcnt > 0) {
        ssize_t n = writev(conn_fd, cur, iovcnt);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                /* A virtio port whose host went away reports POLLHUP: never wait on it. */
                struct pollfd p = {.fd = conn_fd, .events = POLLOUT};
                if (poll(&p, 1, -1) < 0 && errno != EINTR)
                    log_msg("poll for writing to host: %s", strerror(errno));
                if (!(p.revents & (POLLHUP | POLLERR | POLLNVAL)))
                    continue;
                errno = EPIPE;
            }
            log_msg("write to host: %s", strerror(errno));
            conn_lost = true;
            return -1;
        }
        while (iovcnt > 0 && (size_t)n >= cur->iov_len) {
            n -= (ssize_t)cur->iov_len;
            cur++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            cur->iov_base = (uint8_t *)cur->iov_base + n;
            cur->iov_len -= (size_t)n;
        }
    }
    return 0;
}

void send_error(uint32_t stream, uint32_t status, const char *fmt, ...)
{
    char text[MAX_ERROR_TEXT];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    uint8_t payload[MAX_ERROR_TEXT + 32];
    struct tlv_writer w = {.data = payload, .cap = sizeof payload};
    tlv_put_u32(&w, TAG_STATUS, status);
    tlv_put_str(&w, TAG_ERROR, text);
    send_frame(FT_ERROR, stream, w.data, w.len);
}

void send_status(uint32_t stream, uint32_t status, uint32_t err_no, const char *fmt, ...)
{
    char text[MAX_ERROR_TEXT];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    uint8_t payload[MAX_ERROR_TEXT + 48];
    struct tlv_writer w = {.data = payload, .cap = sizeof payload};
    tlv_put_u32(&w, TAG_STATUS, status);
    if (text[0] != '\0')
        tlv_put_str(&w, TAG_ERROR, text);
    if (err_no != 0)
        tlv_put_u32(&w, TAG_ERRNO, err_no);
    send_frame(FT_RESPONSE, stream, w.data, w.len);
}

int transport_listen_unix(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        log_msg("socket path too long: %s", path);
        return -1;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_msg("socket: %s", strerror(errno));
        return -1;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        log_msg("unlink stale socket %s: %s", path, strerror(errno));
        goto fail;
    }
    /* The umask makes the socket 0600 from the start; chmod makes sure of it. */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (rc != 0) {
        log_msg("bind %s: %s", path, strerror(errno));
        goto fail;
    }
    if (chmod(path, 0600) != 0) {
        log_msg("chmod %s: %s", path, strerror(errno));
        goto fail;
    }
    if (listen(fd, 4) != 0) {
        log_msg("listen %s: %s", path, strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

uint32_t transport_parse_vsock_port(const char *text)
{
    if (text[0] < '0' || text[0] > '9')
        return 0;
    errno = 0;
    char *end;
    unsigned long long port = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || port == 0 || port >= VMADDR_PORT_ANY)
        return 0;
    return (uint32_t)port;
}

/*
 * Like the Unix listener: one host at a time, the next one accepted when it goes (vfkit makes
 * a new vsock connection for each host connection to its socket).
 */
int transport_listen_vsock(uint32_t port)
{
    struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_msg("vsock socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 4) != 0) {
        log_msg("listen on vsock port %u: %s", port, strerror(errno));
        close(fd);
        return -1;
    }
    log_msg("serving the host on vsock port %u", port);
    return fd;
}

/* Finds /sys/class/virtio-ports/X/name == name and opens /dev/X; -1 when not there yet. */
int transport_open_port(const char *name)
{
    static const char base[] = "/sys/class/virtio-ports";
    DIR *dir = opendir(base);
    if (dir == NULL)
        return -1;
    int fd = -1;
    struct dirent *ent;
    while ((ent = readdir(dir)) != NULL) {
        if (ent->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s/name", base, ent->d_name);
        int nfd = open(path, O_RDONLY | O_CLOEXEC);
        if (nfd < 0)
            continue;
        char text[128];
        ssize_t n = read(nfd, text, sizeof text - 1);
        close(nfd);
        if (n <= 0)
            continue;
        text[n] = '\0';
        text[strcspn(text, "\n")] = '\0';
        if (strcmp(text, name) != 0)
            continue;
        snprintf(path, sizeof path, "/dev/%s", ent->d_name);
        fd = open(path, O_RDWR | O_CLOEXEC);
        /* Retried every 50 ms: log each distinct failure once. */
        static int last_errno;
        if (fd < 0 && errno != last_errno)
            log_msg("open %s: %s", path, strerror(errno));
        last_errno = fd < 0 ? errno : 0;
        break;
    }
    closedir(dir);
    return fd;
}

/* Opens the port once a host is connected to it (no POLLHUP). */
static int open_connected_port(const char *name)
{
    for (;;) {
        int fd = transport_open_port(name);
        if (fd >= 0) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP))
                return fd;
            close(fd);
        }
        usleep(RETRY_MS * 1000);
    }
}

/* Benchmark baseline: echo every byte back, no protocol. Never returns. */
void run_echo(const char *port_name)
{
    static uint8_t buf[65536];
    for (;;) {
        int fd = open_connected_port(port_name);
        for (;;) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            ssize_t off = 0;
            while (off < n) {
                ssize_t w = write(fd, buf + off, (size_t)(n - off));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    break;
                off += w;
            }
            if (off < n)
                break;
        }
        close(fd);
    }
}
