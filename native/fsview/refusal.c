/*
 * Every refusal is a line on stderr, which the engine relays to the user's log:
 *
 *   microvm-fsview: refused create "sub/.git" (EACCES): a protected name (...)
 *
 * The path is relative to the share and JSON-quoted (guest-chosen names can hold anything).
 * At most BURST lines, then RATE per second; what was held back is counted in the next line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsview.h"

#define BURST 20.0
#define RATE 5.0

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char root_path[PATH_MAX];
static size_t root_len;
static double tokens = BURST;
static struct timespec last;
static unsigned long held_back;

void refusal_init(int root_fd)
{
    char path[64];
    proc_path(root_fd, path, sizeof path);
    ssize_t n = readlink(path, root_path, sizeof root_path - 1);
    root_len = n > 0 ? (size_t)n : 0;
    root_path[root_len] = '\0';
    clock_gettime(CLOCK_MONOTONIC, &last);
}

static bool allowed(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    tokens += RATE * ((double)(now.tv_sec - last.tv_sec) + (double)(now.tv_nsec - last.tv_nsec) / 1e9);
    if (tokens > BURST)
        tokens = BURST;
    last = now;
    if (tokens < 1.0)
        return false;
    tokens -= 1.0;
    return true;
}

/* `text` as a JSON string: quotes, backslashes, control and non-ASCII bytes escaped. */
static void quote(FILE *out, const char *text)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* The share-relative path of `parent` (or of a node itself), then `name`. */
static void relative(const struct node *parent, const char *name, char *out, size_t size)
{
    char link[64], full[PATH_MAX] = "";
    if (parent->cover >= 0) {
        const struct config_path *c = &cfg.paths[parent->cover];
        size_t used = 0;
        for (int i = 0; i < c->nparts && used < size; i++)
            used += (size_t)snprintf(out + used, size - used, "%s%s", i ? "/" : "", c->parts[i]);
        if (name && used < size)
            snprintf(out + used, size - used, "/%s", name);
        return;
    }
    proc_path(parent->fd, link, sizeof link);
    ssize_t n = readlink(link, full, sizeof full - 1);
    full[n > 0 ? n : 0] = '\0';
    const char *rel = strncmp(full, root_path, root_len) == 0 ? full + root_len : full;
    while (*rel == '/')
        rel++;
    snprintf(out, size, "%s%s%s", rel, *rel && name ? "/" : "", name ? name : "");
}

int refuse(fuse_req_t req, int err, const struct node *parent, const char *name, const char *op, const char *why)
{
    fuse_reply_err(req, err);
    pthread_mutex_lock(&lock);
    if (!allowed()) {
        held_back++;
        pthread_mutex_unlock(&lock);
        return err;
    }
    char path[PATH_MAX + 256];
    relative(parent, name, path, sizeof path);
    fprintf(stderr, "microvm-fsview: refused %s ", op);
    quote(stderr, path);
    fprintf(stderr, " (%s): %s", strerrorname_np(err) ? strerrorname_np(err) : "error", why);
    if (held_back > 0)
        fprintf(stderr, " (and %lu more refusals not shown)", held_back);
    fputc('\n', stderr);
    fflush(stderr);
    held_back = 0;
    pthread_mutex_unlock(&lock);
    return err;
}
