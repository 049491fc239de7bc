/*
 * SOCKET_OWNER: which process holds the guest's TCP connection from local port PORT (the egress
 * proxy's attribution, advisory: the guest answers). /proc/net/tcp gives the socket's inode,
 * /proc/PID/fd the process; the answer is PID and COMM, or E_NOT_FOUND.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

#define TCP_LISTEN 0x0A

/* The inode of a connected (not listening) IPv4 TCP socket whose local port is `port`, or 0. */
static unsigned long connection_inode(uint32_t port)
{
    FILE *f = fopen("/proc/net/tcp", "re");
    if (f == NULL)
        return 0;
    char line[512];
    unsigned long found = 0;
    if (fgets(line, sizeof line, f) != NULL) { /* the header line */
        while (found == 0 && fgets(line, sizeof line, f) != NULL) {
            unsigned local_port, state;
            unsigned long inode;
            if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*s %*s %lu", &local_port, &state,
                       &inode) == 3 &&
                local_port == port && state != TCP_LISTEN && inode != 0)
                found = inode;
        }
    }
    fclose(f);
    return found;
}

struct wanted_inode {
    unsigned long inode;
    uint32_t owner;
};

static bool match_owner(uint32_t pid, unsigned long inode, void *ctx)
{
    struct wanted_inode *w = ctx;
    if (inode != w->inode)
        return true;
    w->owner = pid;
    return false;
}

void op_socket_owner(uint32_t stream, uint32_t port)
{
    struct wanted_inode wanted = {.inode = connection_inode(port), .owner = 0};
    if (wanted.inode != 0)
        for_each_socket_fd(match_owner, &wanted);
    uint32_t pid = wanted.owner;
    if (pid == 0) {
        send_status(stream, ST_E_NOT_FOUND, 0, "no process holds a TCP connection from port %u", port);
        return;
    }
    char comm[32];
    read_comm(pid, comm, sizeof comm);
    uint8_t payload[128];
    struct tlv_writer w = {.data = payload, .cap = sizeof payload};
    tlv_put_u32(&w, TAG_STATUS, ST_OK);
    tlv_put_u32(&w, TAG_PID, pid);
    tlv_put_str(&w, TAG_COMM, comm);
    send_frame(FT_RESPONSE, stream, w.data, w.len);
}
