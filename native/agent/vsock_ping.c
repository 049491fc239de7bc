/*
 * `--vsock-ping PORT`: one PING REQUEST to the agent at vsock CID 1 (this guest, through the
 * kernel's vsock loopback) and its RESPONSE checked, so a test in the guest can prove that
 * the protocol is served on vsock. Every wait is bounded by PING_TIMEOUT_S.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "agent.h"

#define PING_TIMEOUT_S 10
#define PING_STREAM 1
#define MAX_ANSWER 1024

static int read_exactly(int fd, uint8_t *buf, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t n = read(fd, buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

/* 0 when the answer is RESPONSE on PING_STREAM with STATUS OK. */
static int check_answer(int fd, uint32_t port)
{
    uint8_t header[HEADER_SIZE], payload[MAX_ANSWER];
    struct frame_header h;
    errno = 0;
    if (read_exactly(fd, header, sizeof header) != 0) {
        fprintf(stderr, "vsock port %u: no answer: %s\n", port, errno ? strerror(errno) : "closed");
        return -1;
    }
    frame_header_decode(header, &h);
    if (h.magic != FRAME_MAGIC || h.type != FT_RESPONSE || h.stream != PING_STREAM || h.length > MAX_ANSWER ||
        read_exactly(fd, payload, h.length) != 0) {
        fprintf(stderr, "vsock port %u: unexpected frame (magic 0x%04x, type %u, stream %u, %u bytes)\n", port,
                h.magic, h.type, h.stream, h.length);
        return -1;
    }
    struct tlv_reader r = {.pos = payload, .left = h.length};
    struct tlv_field f;
    char err[128];
    while (tlv_next(&r, &f, err, sizeof err) == 1)
        if (f.tag == TAG_STATUS && f.len == 4 && get_u32(f.value) == ST_OK)
            return 0;
    fprintf(stderr, "vsock port %u: the PING was not answered with STATUS OK\n", port);
    return -1;
}

int run_vsock_ping(uint32_t port)
{
    struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_LOCAL, .svm_port = port};
    struct timeval timeout = {.tv_sec = PING_TIMEOUT_S};
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) != 0 ||
        connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fprintf(stderr, "vsock port %u: connect: %s\n", port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    uint8_t frame[HEADER_SIZE + 16];
    struct tlv_writer w = {.data = frame + HEADER_SIZE, .cap = sizeof frame - HEADER_SIZE};
    tlv_put_u32(&w, TAG_OP, OP_PING);
    frame_header_encode(frame, FT_REQUEST, PING_STREAM, (uint32_t)w.len);
    size_t len = HEADER_SIZE + w.len;
    int rc = -1;
    if (write(fd, frame, len) != (ssize_t)len)
        fprintf(stderr, "vsock port %u: write: %s\n", port, strerror(errno));
    else
        rc = check_answer(fd, port);
    close(fd);
    if (rc == 0)
        printf("pong from vsock port %u\n", port);
    return rc == 0 ? 0 : 1;
}
