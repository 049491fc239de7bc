/*
 * The nameservers of /etc/resolv.conf. slirp forwards the guest's DNS (10.0.2.3) to them, and
 * they are often on the host itself (127.0.0.53) or on a bridge, so their port 53 stays open.
 * The list is read again whenever the file changes (another inode, size or mtime), checked on
 * each use: only refused port-53 traffic asks, so the cost stays off everything else.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "netguard.h"

#define RESOLV_CONF "/etc/resolv.conf"
#define MAX_NAMESERVERS 8 /* glibc reads 3; libslirp uses the first that parses */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct dest servers[MAX_NAMESERVERS];
static int nservers;
static struct stat loaded;

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* "nameserver ADDR[%SCOPE]": the scope names an interface, which the guard does not need. */
static bool parse_line(const char *line, struct dest *d)
{
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    if (sscanf(line, " nameserver %63s", text) != 1)
        return false;
    text[strcspn(text, "%")] = '\0';
    memset(d, 0, sizeof *d);
    if (inet_pton(AF_INET, text, d->addr) == 1)
        d->family = AF_INET;
    else if (inet_pton(AF_INET6, text, d->addr) == 1)
        d->family = AF_INET6;
    return d->family != 0;
}

static void load(void)
{
    nservers = 0;
    FILE *f = fopen(RESOLV_CONF, "re");
    if (f == NULL) {
        if (errno != ENOENT)
            guard_warn("cannot read " RESOLV_CONF ", DNS to host-local resolvers is refused", errno);
        return;
    }
    char line[512];
    while (nservers < MAX_NAMESERVERS && fgets(line, sizeof line, f) != NULL)
        if (parse_line(line, &servers[nservers]))
            nservers++;
    if (fclose(f) != 0)
        guard_warn("closing " RESOLV_CONF, errno);
}

bool is_nameserver(const struct dest *d)
{
    struct stat now;
    bool found = false;
    pthread_mutex_lock(&lock);
    if (stat(RESOLV_CONF, &now) != 0) {
        if (errno != ENOENT)
            guard_warn("cannot stat " RESOLV_CONF ", DNS to host-local resolvers is refused", errno);
        memset(&now, 0, sizeof now);
    }
    if (!same_file(&now, &loaded)) {
        load();
        loaded = now;
    }
    for (int i = 0; i < nservers && !found; i++)
        found = servers[i].family == d->family && memcmp(servers[i].addr, d->addr, sizeof d->addr) == 0;
    pthread_mutex_unlock(&lock);
    return found;
}
