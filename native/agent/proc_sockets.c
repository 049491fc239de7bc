/*
 * The guest's processes and the sockets their file tables hold: one walk of /proc/PID/fd for
 * the two questions asked of it (which process listens on a port, PORTS_WATCH; which holds a
 * connection, SOCKET_OWNER), and a process's command name.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

void for_each_socket_fd(socket_visit visit, void *ctx)
{
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return;
    bool more = true;
    struct dirent *p;
    while (more && (p = readdir(proc)) != NULL) {
        if (!isdigit((unsigned char)p->d_name[0]))
            continue;
        char fddir[300];
        snprintf(fddir, sizeof fddir, "/proc/%s/fd", p->d_name);
        DIR *fds = opendir(fddir);
        if (fds == NULL)
            continue; /* gone meanwhile, or not ours to read */
        uint32_t pid = (uint32_t)strtoul(p->d_name, NULL, 10);
        struct dirent *d;
        while (more && (d = readdir(fds)) != NULL) {
            char link[600], target[64];
            snprintf(link, sizeof link, "%s/%s", fddir, d->d_name);
            ssize_t len = readlink(link, target, sizeof target - 1);
            unsigned long inode;
            if (len <= 0)
                continue;
            target[len] = '\0';
            if (sscanf(target, "socket:[%lu]", &inode) == 1)
                more = visit(pid, inode, ctx);
        }
        closedir(fds);
    }
    closedir(proc);
}

void read_comm(uint32_t pid, char *comm, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%u/comm", pid);
    FILE *f = fopen(path, "re");
    comm[0] = '\0';
    if (f == NULL)
        return;
    if (fgets(comm, (int)cap, f) != NULL)
        comm[strcspn(comm, "\n")] = '\0';
    fclose(f);
}
