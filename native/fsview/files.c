/*
 * Operations on open files and directories. Writability is decided once, at open: a node
 * the policy keeps read-only cannot be opened for writing, so reads and writes on an open
 * handle go straight to the host file.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fsview.h"

static bool opens_for_write(int flags)
{
    return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct node *n = node_of(ino);
    if (n->cover >= 0) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if (opens_for_write(fi->flags) && (cfg.read_only || !kind_writable(n->kind))) {
        refuse(req, cfg.read_only ? EROFS : EACCES, n, NULL, "open for writing",
               cfg.read_only ? "the share is read-only" : "protected (host tools run or trust it)");
        return;
    }
    char path[64];
    proc_path(n->fd, path, sizeof path);
    int fd = openat(AT_FDCWD, path, (fi->flags | O_CLOEXEC) & ~(O_NOFOLLOW | O_CREAT | O_EXCL));
    if (fd < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    fi->fh = (uint64_t)fd;
    fi->keep_cache = 0; /* host edits must reach the guest: no stale pages across opens */
    fi->noflush = 1;    /* writes are synchronous and locks are the kernel's: a flush adds nothing */
    fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    buf.buf[0].fd = (int)fi->fh;
    buf.buf[0].pos = off;
    fuse_reply_data(req, &buf, FUSE_BUF_NO_SPLICE);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
    out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    out.buf[0].fd = (int)fi->fh;
    out.buf[0].pos = off;
    ssize_t written = fuse_buf_copy(&out, in, 0);
    if (written < 0)
        fuse_reply_err(req, (int)-written);
    else
        fuse_reply_write(req, (size_t)written);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    /* close() of a duplicate releases POSIX locks and reports delayed write errors. */
    int dup_fd = dup((int)fi->fh);
    fuse_reply_err(req, dup_fd < 0 || close(dup_fd) != 0 ? errno : 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    close((int)fi->fh);
    fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    int fd = (int)fi->fh;
    fuse_reply_err(req, (datasync ? fdatasync(fd) : fsync(fd)) == 0 ? 0 : errno);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
    (void)ino;
    fuse_reply_err(req, fallocate((int)fi->fh, mode, off, len) == 0 ? 0 : errno);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
    (void)ino;
    off_t res = lseek((int)fi->fh, off, whence);
    if (res < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_lseek(req, res);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t in, off_t off_in, struct fuse_file_info *fi_in,
                               fuse_ino_t out, off_t off_out, struct fuse_file_info *fi_out, size_t len, int flags)
{
    (void)in;
    (void)out;
    ssize_t res = copy_file_range((int)fi_in->fh, &off_in, (int)fi_out->fh, &off_out, len, (unsigned)flags);
    if (res < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_write(req, (size_t)res);
}

/*
 * An open directory. Offsets handed to the kernel are entry numbers (1, 2, ...), not the
 * host's cookies, so that paths a volume covers can be listed after the real entries even
 * when the host has no such directory. A covered path's stand-in has no stream at all.
 */
struct dir_handle {
    DIR *dp;
    long *cookies;   /* telldir() before real entry i */
    size_t ncookies, cap;
    size_t index;    /* the entry the stream is at */
    bool real_done;
    size_t nreal;
    const char *extra[MAX_PATHS]; /* covered names missing on the host, listed after the real ones */
    size_t nextra;
};

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct node *n = node_of(ino);
    struct dir_handle *d = calloc(1, sizeof *d);
    if (d == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (n->cover < 0) {
        int fd = openat(n->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        d->dp = fd < 0 ? NULL : fdopendir(fd);
        if (d->dp == NULL) {
            int err = errno;
            if (fd >= 0)
                close(fd);
            free(d);
            fuse_reply_err(req, err);
            return;
        }
        for (int i = 0; i < cfg.npaths; i++) {
            const struct config_path *c = &cfg.paths[i];
            struct stat st;
            if (c->cover && (n->place.mask & (1ULL << i)) && c->nparts == n->place.depth + 1 &&
                fstatat(n->fd, c->parts[n->place.depth], &st, AT_SYMLINK_NOFOLLOW) != 0)
                d->extra[d->nextra++] = c->parts[n->place.depth];
        }
    }
    fi->fh = (uint64_t)(uintptr_t)d;
    fuse_reply_open(req, fi);
}

static bool is_dot(const char *name)
{
    return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/* One entry into the reply buffer; its size, or more than `room` when it did not fit. */
static size_t add_entry(fuse_req_t req, struct node *dir, char *p, size_t room, const char *name, struct stat st,
                        off_t next, bool plus, int *err)
{
    if (!plus)
        return fuse_add_direntry(req, p, room, name, &st, next);
    struct fuse_entry_param e = {.attr = st};
    if (!is_dot(name)) {
        *err = lookup_entry(dir, name, &e);
        if (*err != 0)
            return 0;
    }
    size_t size = fuse_add_direntry_plus(req, p, room, name, &e, next);
    if (size > room && e.ino != 0)
        node_forget(node_of(e.ino), 1); /* not sent: the kernel did not get this reference */
    return size;
}

/* Puts the stream at entry `index` (an offset the kernel got from us). */
static int seek_to(struct dir_handle *d, size_t index)
{
    if (index == d->index)
        return 0;
    if (index < d->ncookies) {
        seekdir(d->dp, d->cookies[index]);
        d->index = index;
        d->real_done = false;
        return 0;
    }
    if (d->real_done && index >= d->nreal) {
        d->index = index;
        return 0;
    }
    return EINVAL;
}

/* The next entry (real ones, then covered stand-ins), or NULL at the end or on error. */
static const char *next_entry(struct dir_handle *d, struct stat *st, int *err)
{
    memset(st, 0, sizeof *st);
    if (!d->real_done) {
        if (d->index == d->ncookies) {
            if (d->ncookies == d->cap) {
                size_t cap = d->cap ? d->cap * 2 : 64;
                long *grown = realloc(d->cookies, cap * sizeof *grown);
                if (grown == NULL)
                    return *err = ENOMEM, NULL;
                d->cookies = grown;
                d->cap = cap;
            }
            d->cookies[d->ncookies++] = telldir(d->dp);
        }
        errno = 0;
        struct dirent *e = readdir(d->dp);
        if (e != NULL) {
            st->st_ino = e->d_ino;
            st->st_mode = (mode_t)DTTOIF(e->d_type);
            return e->d_name;
        }
        if (errno != 0)
            return *err = errno, NULL;
        d->real_done = true;
        d->nreal = d->index;
        d->ncookies = d->index; /* the last cookie pointed past the end */
    }
    size_t extra = d->index - d->nreal;
    if (extra >= d->nextra)
        return NULL;
    st->st_ino = (ino_t)((1ULL << 62) | extra);
    st->st_mode = S_IFDIR;
    return d->extra[extra];
}

static void read_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, struct fuse_file_info *fi, bool plus)
{
    struct node *n = node_of(ino);
    struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
    char *buf = calloc(1, size);
    if (buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t used = 0;
    int err = 0;
    if (d->dp == NULL) {
        static const char *const dots[] = {".", ".."};
        for (off_t i = offset; i < 2; i++) {
            struct stat st = {.st_ino = n->ino, .st_mode = S_IFDIR};
            size_t s = fuse_add_direntry(req, buf + used, size - used, dots[i], &st, i + 1);
            if (s > size - used)
                break;
            used += s;
        }
        fuse_reply_buf(req, buf, used);
        free(buf);
        return;
    }
    err = offset < 0 ? EINVAL : seek_to(d, (size_t)offset);
    while (err == 0) {
        struct stat st;
        const char *name = next_entry(d, &st, &err);
        if (name == NULL)
            break;
        size_t s = add_entry(req, n, buf + used, size - used, name, st, (off_t)d->index + 1, plus, &err);
        if (err == ENOENT) {
            err = 0; /* removed since it was read: skip it */
        } else if (err != 0 || s > size - used) {
            /* did not fit: the next call starts at this entry again */
            if (err == 0 && !d->real_done && d->index < d->ncookies)
                seekdir(d->dp, d->cookies[d->index]);
            break;
        } else {
            used += s;
        }
        d->index++;
    }
    if (err != 0 && used == 0)
        fuse_reply_err(req, err);
    else
        fuse_reply_buf(req, buf, used);
    free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    read_dir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    read_dir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
    if (d->dp != NULL)
        closedir(d->dp);
    free(d->cookies);
    free(d);
    fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
    int fd = d->dp != NULL ? dirfd(d->dp) : -1;
    fuse_reply_err(req, fd < 0 ? 0 : (datasync ? fdatasync(fd) : fsync(fd)) == 0 ? 0 : errno);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct statvfs st;
    if (fstatvfs(node_root()->fd, &st) != 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_statfs(req, &st);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    /* Splicing costs extra system calls per request; shared folders mostly see small files. */
    conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    conn->want |= conn->capable & FUSE_CAP_PARALLEL_DIROPS;
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE; /* the host's own edits must not race a cached copy */
}

void file_ops(struct fuse_lowlevel_ops *ops)
{
    ops->init = op_init;
    ops->open = op_open;
    ops->read = op_read;
    ops->write_buf = op_write_buf;
    ops->flush = op_flush;
    ops->release = op_release;
    ops->fsync = op_fsync;
    ops->fallocate = op_fallocate;
    ops->lseek = op_lseek;
    ops->copy_file_range = op_copy_file_range;
    ops->opendir = op_opendir;
    ops->readdir = op_readdir;
    ops->readdirplus = op_readdirplus;
    ops->releasedir = op_releasedir;
    ops->fsyncdir = op_fsyncdir;
    ops->statfs = op_statfs;
}
