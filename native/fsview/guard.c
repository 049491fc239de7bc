/*
 * Before the first lookup is answered, the share is scanned once for symlinks that carry a
 * protected name (`.vscode -> shared-config`, or a link inside `.vscode/`): host tools follow
 * them, so their targets inside the share are made read-only too (by inode). The scan skips
 * git's object store and covered paths, and runs beside the VM's boot.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsview.h"

#define MAX_SCAN_DEPTH 64
#define MAX_SCAN_ENTRIES 2000000
#define MAX_HOPS 40

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static bool done;
static int root;

struct frame {
    DIR *dp;
    enum kind kind;
    struct place place;
    size_t path_len; /* this directory's share-relative path is path[0..path_len) */
};

struct resolver {
    int fds[PATH_MAX / 2];
    int n; /* fds[0] is the root (not ours to close) */
    char queue[PATH_MAX * 2];
};

static void resolver_reset(struct resolver *r)
{
    while (r->n > 1)
        close(r->fds[--r->n]);
    r->fds[0] = root;
    r->n = 1;
}

/* Prepends `path` to what is left to resolve. */
static int push_front(struct resolver *r, const char *path, const char *rest)
{
    char joined[sizeof r->queue];
    int len = snprintf(joined, sizeof joined, "%s/%s", path, rest);
    if (len < 0 || (size_t)len >= sizeof joined)
        return -1;
    memcpy(r->queue, joined, (size_t)len + 1);
    return 0;
}

/* An absolute target as the guest resolves it: inside the share only under its mount point. */
static const char *guest_relative(const char *target)
{
    size_t len = cfg.guest_path ? strlen(cfg.guest_path) : 0;
    if (len == 0 || strncmp(target, cfg.guest_path, len) != 0 || (target[len] != '/' && target[len] != '\0'))
        return NULL;
    return target + len;
}

/*
 * Resolves `start` (share-relative) the way the guest would, one component at a time with
 * no host symlink followed, and marks what it reaches read-only. Targets that leave the
 * share reach nothing on the host and are ignored.
 */
static void protect_target(const char *start)
{
    struct resolver r = {.n = 0};
    r.fds[0] = root;
    r.n = 1;
    snprintf(r.queue, sizeof r.queue, "%s", start);
    int hops = 0;
    char *cursor = r.queue;
    while (*cursor != '\0') {
        char *slash = strchr(cursor, '/');
        char component[NAME_MAX + 1];
        size_t len = slash ? (size_t)(slash - cursor) : strlen(cursor);
        if (len > NAME_MAX)
            goto out;
        memcpy(component, cursor, len);
        component[len] = '\0';
        cursor = slash ? slash + 1 : cursor + len;
        if (len == 0 || strcmp(component, ".") == 0)
            continue;
        if (strcmp(component, "..") == 0) {
            if (r.n == 1)
                goto out; /* above the share: the guest's own files */
            close(r.fds[--r.n]);
            continue;
        }
        int fd = openat(r.fds[r.n - 1], component, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 || r.n >= (int)(sizeof r.fds / sizeof r.fds[0])) {
            if (fd >= 0)
                close(fd);
            goto out;
        }
        if (!S_ISLNK(st.st_mode)) {
            r.fds[r.n++] = fd;
            continue;
        }
        char target[PATH_MAX];
        ssize_t n = readlinkat(fd, "", target, sizeof target - 1);
        close(fd);
        if (n <= 0 || ++hops > MAX_HOPS)
            goto out;
        target[n] = '\0';
        char rest[sizeof r.queue];
        snprintf(rest, sizeof rest, "%s", cursor);
        const char *next = target;
        if (target[0] == '/') {
            next = guest_relative(target);
            if (next == NULL)
                goto out;
            resolver_reset(&r);
        }
        if (push_front(&r, next, rest) != 0)
            goto out;
        cursor = r.queue;
    }
    struct stat st;
    if (fstatat(r.fds[r.n - 1], "", &st, AT_EMPTY_PATH) == 0 && r.n > 1)
        node_mark_readonly(st.st_dev, st.st_ino);
out:
    resolver_reset(&r);
}

/* Under `follow` the host resolves links itself: mark whatever it reaches. */
static void protect_followed(int dir_fd, const char *name)
{
    int fd = openat(dir_fd, name, O_PATH | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstatat(fd, "", &st, AT_EMPTY_PATH) == 0)
        node_mark_readonly(st.st_dev, st.st_ino);
    if (fd >= 0)
        close(fd);
}

static bool open_frame(struct frame *f, int parent_fd, const char *name, enum kind kind, struct place place, size_t path_len)
{
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    f->dp = fd < 0 ? NULL : fdopendir(fd);
    if (f->dp == NULL && fd >= 0)
        close(fd);
    *f = (struct frame){.dp = f->dp, .kind = kind, .place = place, .path_len = path_len};
    return f->dp != NULL;
}

static void scan(void)
{
    static struct frame stack[MAX_SCAN_DEPTH];
    static char path[PATH_MAX * 2];
    int top = 0;
    long entries = 0;
    if (!open_frame(&stack[0], root, ".", K_NORMAL, node_root()->place, 0))
        return;
    while (top >= 0) {
        struct frame *f = &stack[top];
        struct dirent *e = readdir(f->dp);
        if (e == NULL) {
            closedir(f->dp);
            top--;
            continue;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (++entries > MAX_SCAN_ENTRIES) {
            fprintf(stderr, "microvm-fsview: the share has more than %d entries; links to protected names below the first %d were not checked\n",
                    MAX_SCAN_ENTRIES, MAX_SCAN_ENTRIES);
            break;
        }
        int dir_fd = dirfd(f->dp);
        unsigned char type = e->d_type;
        struct stat st;
        if (type == DT_UNKNOWN && fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            type = IFTODT(st.st_mode);
        struct place place = child_place(f->place, e->d_name);
        int hit = place_hit(place);
        if (hit >= 0 && cfg.paths[hit].cover)
            continue;
        mode_t mode = DTTOIF(type);
        bool head = false;
        if (needs_head_check(f->kind, mode)) {
            char head_path[NAME_MAX + 8];
            snprintf(head_path, sizeof head_path, "%s/HEAD", e->d_name);
            head = fstatat(dir_fd, head_path, &st, AT_SYMLINK_NOFOLLOW) == 0;
        }
        enum kind kind = hit >= 0 ? K_READONLY : child_kind(f->kind, e->d_name, mode, head);
        size_t len = f->path_len;
        int n = snprintf(path + len, sizeof path - len, "%s%s", len ? "/" : "", e->d_name);
        if (n < 0 || (size_t)n >= sizeof path - len)
            continue;
        if (type == DT_LNK && kind == K_READONLY) {
            if (cfg.links == LINKS_FOLLOW) {
                protect_followed(dir_fd, e->d_name);
            } else {
                protect_target(path);
            }
        } else if (type == DT_DIR && kind != K_GITDATA && top + 1 < MAX_SCAN_DEPTH) {
            if (open_frame(&stack[top + 1], dir_fd, e->d_name, kind, place, len + (size_t)n))
                top++;
        }
        path[stack[top].path_len] = '\0';
    }
    while (top >= 0)
        closedir(stack[top--].dp);
}

static void *scan_thread(void *arg)
{
    (void)arg;
    scan();
    pthread_mutex_lock(&lock);
    done = true;
    pthread_cond_broadcast(&done_cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

void guard_start(int root_fd)
{
    root = root_fd;
    pthread_t thread;
    if (pthread_create(&thread, NULL, scan_thread, NULL) != 0) {
        scan_thread(NULL);
        return;
    }
    pthread_detach(thread);
}

void guard_wait(void)
{
    if (__atomic_load_n(&done, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&lock);
    while (!done)
        pthread_cond_wait(&done_cond, &lock);
    pthread_mutex_unlock(&lock);
}
