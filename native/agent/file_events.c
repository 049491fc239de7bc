/*
 * FILE_EVENTS: changes the host saw in a shared folder, raised as inotify events in the guest.
 *
 * The host sends the guest mount point (PATH) and up to MAX_FILE_EVENTS events with paths
 * relative to it. Every path is checked here (relative, no "." or ".." component, no empty
 * component, no NUL) and again by the kernel module, which looks it up beneath the mount
 * without following symlinks or crossing into another mount (native/kmod/). The agent
 * packs the events into the module's batch format and writes them to
 * /dev/microvm-fsnotify; the module never writes to the file system, so nothing goes back to
 * the host.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

#define FSNOTIFY_DEVICE "/dev/microvm-fsnotify"
#define BATCH_MAGIC 0x4e46564dU /* "MVFN", native/kmod/README.md */
#define BATCH_VERSION 2 /* the module in the same initramfs takes only this one */
#define BATCH_HEADER 16
#define BATCH_RECORD 4
#define BATCH_MAX (512 * 1024) /* the module's limit per write */

struct file_event {
    uint32_t kind;
    const uint8_t *path;
    size_t path_len;
};

static int device_fd = -1;

bool file_events_available(void)
{
    return access(FSNOTIFY_DEVICE, W_OK) == 0;
}

/* Relative, every component non-empty and not "." or "..", no NUL. Empty only for kind 4. */
static bool relative_path_ok(const uint8_t *p, size_t len, uint32_t kind)
{
    if (len == 0)
        return kind == FILE_EVENT_DIR_CHANGED;
    if (len >= MAX_PATH_LEN || p[0] == '/' || p[len - 1] == '/' || memchr(p, 0, len) != NULL)
        return false;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && p[i] != '/')
            i++;
        size_t n = i - start;
        if (n == 0 || (n == 1 && p[start] == '.') || (n == 2 && p[start] == '.' && p[start + 1] == '.'))
            return false;
        i++;
    }
    return true;
}

static int parse_event(const struct tlv_field *outer, struct file_event *e, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    struct tlv_reader r = {.pos = outer->value, .left = outer->len};
    struct tlv_field f;
    bool has_path = false;
    int rc;
    while ((rc = tlv_next(&r, &f, err, errlen)) == 1) {
        if (f.tag == TAG_EVENT_KIND) {
            e->kind = get_u32(f.value);
        } else if (f.tag == TAG_EVENT_PATH) {
            e->path = f.value;
            e->path_len = f.len;
            has_path = true;
        }
    }
    if (rc < 0)
        return -1;
    if (e->kind < FILE_EVENT_MODIFY || e->kind > FILE_EVENT_DIR_CHANGED) {
        snprintf(err, errlen, "EVENT_KIND %u is not 1-4", e->kind);
        return -1;
    }
    if (!has_path || !relative_path_ok(e->path, e->path_len, e->kind)) {
        snprintf(err, errlen, "EVENT_PATH '%.*s' is missing or not a plain path relative to the mount", (int)(e->path_len > 200 ? 200 : e->path_len),
                 e->path ? (const char *)e->path : "");
        return -1;
    }
    return 0;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static size_t record_size(const struct file_event *e)
{
    return BATCH_RECORD + e->path_len;
}

/* Writes events [from, to) as one batch; returns 0 or an errno. */
static int write_batch(const char *mount, const struct file_event *ev, size_t from, size_t to)
{
    size_t mlen = strlen(mount), len = BATCH_HEADER + mlen;
    for (size_t i = from; i < to; i++)
        len += record_size(&ev[i]);
    uint8_t *buf = malloc(len);
    if (buf == NULL)
        return ENOMEM;
    memset(buf, 0, BATCH_HEADER);
    put_le(buf, BATCH_MAGIC, 4);
    put_le(buf + 4, BATCH_VERSION, 2);
    put_le(buf + 6, mlen, 2);
    put_le(buf + 8, to - from, 4);
    memcpy(buf + BATCH_HEADER, mount, mlen);
    size_t off = BATCH_HEADER + mlen;
    for (size_t i = from; i < to; i++) {
        const struct file_event *e = &ev[i];
        buf[off] = (uint8_t)e->kind;
        buf[off + 1] = 0;
        put_le(buf + off + 2, e->path_len, 2);
        memcpy(buf + off + BATCH_RECORD, e->path, e->path_len);
        off += record_size(e);
    }
    int rc = 0;
    if (write(device_fd, buf, len) != (ssize_t)len)
        rc = errno ? errno : EIO;
    free(buf);
    return rc;
}

void op_file_events(uint32_t stream, const uint8_t *payload, size_t len)
{
    char err[MAX_ERROR_TEXT] = "";
    char mount[MAX_PATH_LEN] = "";
    struct file_event *ev = calloc(MAX_FILE_EVENTS, sizeof *ev);
    if (ev == NULL) {
        send_status(stream, ST_E_IO, ENOMEM, "no memory for FILE_EVENTS");
        return;
    }
    size_t n = 0;
    struct tlv_reader r = {.pos = payload, .left = len};
    struct tlv_field f;
    int rc;
    while ((rc = tlv_next(&r, &f, err, sizeof err)) == 1) {
        if (f.tag == TAG_PATH && f.len > 1 && f.len < sizeof mount && f.value[0] == '/' && memchr(f.value, 0, f.len) == NULL) {
            memcpy(mount, f.value, f.len);
            mount[f.len] = '\0';
        } else if (f.tag == TAG_FILE_EVENT) {
            if (n == MAX_FILE_EVENTS) {
                send_status(stream, ST_E_TOO_LARGE, 0, "more than %d FILE_EVENT entries", MAX_FILE_EVENTS);
                goto out;
            }
            if (parse_event(&f, &ev[n], err, sizeof err) != 0) {
                send_status(stream, ST_E_BAD_REQUEST, 0, "malformed FILE_EVENT: %s", err);
                goto out;
            }
            n++;
        }
    }
    if (rc < 0 || mount[0] == '\0') {
        send_status(stream, ST_E_BAD_REQUEST, 0, "malformed FILE_EVENTS: %s", rc < 0 ? err : "no absolute PATH (the mount point)");
        goto out;
    }
    if (getpid() != 1) {
        send_status(stream, ST_E_IO, EPERM, "FILE_EVENTS is only served in the guest (PID 1)");
        goto out;
    }
    if (device_fd < 0)
        device_fd = open(FSNOTIFY_DEVICE, O_WRONLY | O_CLOEXEC);
    if (device_fd < 0) {
        send_status(stream, ST_E_IO, (uint32_t)errno, "cannot open %s: %s (the microvm_fsnotify module is not loaded)", FSNOTIFY_DEVICE, strerror(errno));
        goto out;
    }
    /* An empty request still writes one (empty) batch: it arms the module's record of guest
     * writes on that mount (native/kmod/README.md). */
    size_t from = 0;
    do {
        size_t to = from, bytes = BATCH_HEADER + strlen(mount);
        while (to < n && (to == from || bytes + record_size(&ev[to]) <= BATCH_MAX))
            bytes += record_size(&ev[to++]);
        int e = write_batch(mount, ev, from, to);
        if (e != 0) {
            send_status(stream, e == EINVAL || e == ENOENT || e == ENOTDIR ? ST_E_BAD_REQUEST : ST_E_IO, (uint32_t)e,
                        "%s refused the events for %s: %s", FSNOTIFY_DEVICE, mount, strerror(e));
            goto out;
        }
        from = to;
    } while (from < n);
    send_status(stream, ST_OK, 0, "%s", "");
out:
    free(ev);
}
