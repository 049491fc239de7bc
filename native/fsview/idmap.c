/*
 * The view is mounted by real root in the host's user namespace, so the kernel speaks host
 * ids to it (a request's caller, the attributes it caches), while the daemon itself runs in
 * virtiofsd's user namespace (guest root = the folder's owner), where it creates and stats
 * files. Ids are translated between the two with the daemon's own uid_map and gid_map.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "fsview.h"

#define MAX_LINES 340 /* the kernel's limit for one map */

struct map {
    uint32_t inside[MAX_LINES], outside[MAX_LINES], count[MAX_LINES];
    int n;
};

static struct map uids, gids;

static int load(struct map *m, const char *file)
{
    FILE *f = fopen(file, "re");
    if (f == NULL)
        return -1;
    m->n = 0;
    while (m->n < MAX_LINES && fscanf(f, "%u %u %u", &m->inside[m->n], &m->outside[m->n], &m->count[m->n]) == 3)
        m->n++;
    fclose(f);
    return m->n > 0 ? 0 : -1;
}

int idmap_init(void)
{
    return load(&uids, "/proc/self/uid_map") == 0 && load(&gids, "/proc/self/gid_map") == 0 ? 0 : -1;
}

static uint32_t translate(const struct map *m, uint32_t id, bool to_host)
{
    for (int i = 0; i < m->n; i++) {
        uint32_t from = to_host ? m->inside[i] : m->outside[i];
        uint32_t to = to_host ? m->outside[i] : m->inside[i];
        if (id >= from && id - from < m->count[i])
            return to + (id - from);
    }
    return (uint32_t)-1;
}

uid_t uid_to_host(uid_t id) { return translate(&uids, id, true); }
gid_t gid_to_host(gid_t id) { return translate(&gids, id, true); }
uid_t uid_from_host(uid_t id) { return translate(&uids, id, false); }
gid_t gid_from_host(gid_t id) { return translate(&gids, id, false); }

/* Attributes as the kernel (host ids) must see them. */
void attr_to_host(struct stat *st)
{
    st->st_uid = uid_to_host(st->st_uid);
    st->st_gid = gid_to_host(st->st_gid);
}
