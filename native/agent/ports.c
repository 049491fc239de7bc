/*
 * WATCH_PORTS streams: the TCP listeners of the guest, pushed to the host as a full list
 * (one STDOUT frame of LISTENER fields) whenever it changes. /proc/net/tcp and tcp6 are read
 * every PORTS_SCAN_MS while someone watches; inodes are mapped to pid and comm through
 * /proc/PID/fd only when a new listener appears. CLOSE_STDIN ends the watch.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

#define PORTS_SCAN_MS 250
#define TCP_LISTEN 0x0A

struct listener {
    uint32_t family; /* 4 or 6 */
    uint8_t addr[16];
    uint16_t port;
    unsigned long inode;
    uint32_t pid;
    char comm[32];
};

/* Per stream slot (streams.c holds the id and the credit): the list is not sent there yet. */
static bool dirty[MAX_SLOTS];
static struct listener current[MAX_LISTENERS];
static int ncurrent;
static int64_t next_scan;

static bool is_watch(int slot)
{
    return stream_kind(slot) == STREAM_WATCH;
}

static int watchers(void)
{
    int n = 0;
    for (int i = 0; i < MAX_SLOTS; i++)
        n += is_watch(i);
    return n;
}

/* /proc/net/tcp6 prints an address as four 32-bit words, each in host byte order. */
static bool parse_addr(const char *hex, uint32_t family, uint8_t *out)
{
    size_t words = family == 4 ? 1 : 4;
    if (strlen(hex) != words * 8)
        return false;
    for (size_t w = 0; w < words; w++) {
        char part[9];
        memcpy(part, hex + w * 8, 8);
        part[8] = '\0';
        uint32_t v = (uint32_t)strtoul(part, NULL, 16);
        memcpy(out + w * 4, &v, 4);
    }
    return true;
}

static void scan_file(const char *path, uint32_t family, struct listener *list, int *n)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno != ENOENT)
            log_msg("open %s: %s", path, strerror(errno));
        return;
    }
    char line[512];
    if (fgets(line, sizeof line, f) == NULL) { /* the header line */
        fclose(f);
        return;
    }
    while (*n < MAX_LISTENERS && fgets(line, sizeof line, f) != NULL) {
        char local[64];
        unsigned port, state;
        unsigned long inode;
        if (sscanf(line, " %*d: %63[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*s %*s %lu", local, &port,
                   &state, &inode) != 4 || state != TCP_LISTEN)
            continue;
        struct listener *l = &list[*n];
        memset(l, 0, sizeof *l);
        if (!parse_addr(local, family, l->addr))
            continue;
        l->family = family;
        l->port = (uint16_t)port;
        l->inode = inode;
        (*n)++;
    }
    fclose(f);
}

static bool same_socket(const struct listener *a, const struct listener *b)
{
    return a->family == b->family && a->port == b->port && a->inode == b->inode &&
           memcmp(a->addr, b->addr, sizeof a->addr) == 0;
}

struct owners_wanted {
    struct listener *list;
    int n;
    int missing;
};

static bool match_listeners(uint32_t pid, unsigned long inode, void *ctx)
{
    struct owners_wanted *w = ctx;
    for (int i = 0; i < w->n; i++) {
        if (w->list[i].pid != 0 || w->list[i].inode != inode)
            continue;
        w->list[i].pid = pid;
        read_comm(pid, w->list[i].comm, sizeof w->list[i].comm);
        w->missing--;
    }
    return w->missing > 0;
}

/* Finds the processes holding the listeners that have no pid yet. */
static void find_owners(struct listener *list, int n)
{
    struct owners_wanted wanted = {.list = list, .n = n, .missing = 0};
    for (int i = 0; i < n; i++)
        wanted.missing += list[i].pid == 0;
    if (wanted.missing > 0)
        for_each_socket_fd(match_listeners, &wanted);
}

/* Returns true when the set of listeners changed since the last scan. */
static bool scan(void)
{
    static struct listener next[MAX_LISTENERS];
    int n = 0;
    scan_file("/proc/net/tcp", 4, next, &n);
    scan_file("/proc/net/tcp6", 6, next, &n);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < ncurrent; j++) {
            if (same_socket(&next[i], &current[j])) {
                next[i].pid = current[j].pid;
                memcpy(next[i].comm, current[j].comm, sizeof next[i].comm);
                kept++;
                break;
            }
        }
    }
    if (kept == n && n == ncurrent)
        return false;
    find_owners(next, n);
    memcpy(current, next, sizeof next[0] * (size_t)n);
    ncurrent = n;
    return true;
}

static void send_list(int slot)
{
    static uint8_t payload[MAX_CHUNK];
    struct tlv_writer tw = {.data = payload, .cap = sizeof payload};
    for (int i = 0; i < ncurrent; i++) {
        const struct listener *l = &current[i];
        uint8_t item[128];
        char addr[INET6_ADDRSTRLEN] = "";
        struct tlv_writer iw = {.data = item, .cap = sizeof item};
        inet_ntop(l->family == 4 ? AF_INET : AF_INET6, l->addr, addr, sizeof addr);
        tlv_put_u32(&iw, TAG_FAMILY, l->family);
        tlv_put_str(&iw, TAG_ADDR, addr);
        tlv_put_u32(&iw, TAG_PORT, l->port);
        tlv_put_u32(&iw, TAG_PID, l->pid);
        tlv_put_str(&iw, TAG_COMM, l->comm);
        tlv_put(&tw, TAG_LISTENER, iw.data, iw.len);
    }
    if (tw.overflow) {
        log_msg("listener list over %d bytes: not sent", MAX_CHUNK);
        dirty[slot] = false;
        return;
    }
    if (stream_credit(slot) < tw.len)
        return; /* sent when the host grants credit; by then it may have changed again */
    send_frame(FT_STDOUT, stream_id(slot), tw.data, tw.len);
    stream_take_credit(slot, tw.len);
    dirty[slot] = false;
}

static void flush(void)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (is_watch(i) && dirty[i])
            send_list(i);
}

void ports_start(uint32_t id)
{
    int slot = stream_open(id, STREAM_WATCH);
    if (slot < 0)
        return;
    dirty[slot] = true;
    if (watchers() == 1)
        scan();
    next_scan = now_ms() + PORTS_SCAN_MS;
    send_list(slot);
}

void ports_credit(int slot)
{
    if (dirty[slot])
        send_list(slot);
}

void ports_stop(int slot)
{
    send_status(stream_id(slot), ST_OK, 0, "%s", "");
    stream_close(slot);
    dirty[slot] = false;
}

void ports_disconnect(void)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (is_watch(i))
            stream_close(i);
        dirty[i] = false;
    }
}

int64_t ports_next_deadline(void)
{
    return watchers() > 0 ? next_scan : 0;
}

void ports_timers(int64_t now)
{
    if (watchers() == 0 || now < next_scan)
        return;
    next_scan = now + PORTS_SCAN_MS;
    if (scan())
        for (int i = 0; i < MAX_SLOTS; i++)
            dirty[i] = is_watch(i);
    flush();
}
