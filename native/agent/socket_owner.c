/*
 * SOCKET_OWNER: which process holds the guest's TCP connection from local port PORT (the egress
 * proxy's attribution, advisory: the guest answers). /proc/net/tcp gives the socket's inode,
 * /proc/PID/fd the process; the answer is PID and COMM, or E_NOT_FOUND.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
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

/* The pid whose file table holds socket `inode`, or 0. */
static uint32_t inode_owner(unsigned long inode)
{
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return 0;
    uint32_t owner = 0;
    struct dirent *p;
    while (owner == 0 && (p = readdir(proc)) != NULL) {
        if (!isdigit((unsigned char)p->d_name[0]))
            continue;
        char fddir[300];
        snprintf(fddir, sizeof fddir, "/proc/%s/fd", p->d_name);
        DIR *fds = opendir(fddir);
        if (fds == NULL)
            continue;
        struct dirent *d;
        while (owner == 0 && (d = readdir(fds)) != NULL) {
            char link[600], target[64];
            snprintf(link, sizeof link, "%s/%s", fddir, d->d_name);
            ssize_t len = readlink(link, target, sizeof target - 1);
            unsigned long held;
            if (len <= 0)
                continue;
            target[len] = '\0';
            if (sscanf(target, "socket:[%lu]", &held) == 1 && held == inode)
                owner = (uint32_t)strtoul(p->d_name, NULL, 10);
        }
        closedir(fds);
    }
    closedir(proc);
    return owner;
}

void op_socket_owner(uint32_t stream, uint32_t port)
{
    unsigned long inode = connection_inode(port);
    uint32_t pid = inode != 0 ? inode_owner(inode) : 0;
    if (pid == 0) {
        send_status(stream, ST_E_NOT_FOUND, 0, "no process holds a TCP connection from port %u", port);
        return;
    }
    char comm[32] = "";
    char path[64];
    snprintf(path, sizeof path, "/proc/%u/comm", pid);
    FILE *f = fopen(path, "re");
    if (f != NULL) {
        if (fgets(comm, sizeof comm, f) != NULL)
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
    }
    uint8_t payload[128];
    struct tlv_writer w = {.data = payload, .cap = sizeof payload};
    tlv_put_u32(&w, TAG_STATUS, ST_OK);
    tlv_put_u32(&w, TAG_PID, pid);
    tlv_put_str(&w, TAG_COMM, comm);
    send_frame(FT_RESPONSE, stream, w.data, w.len);
}
