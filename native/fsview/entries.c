/*
 * Operations on names: lookup, create, remove, rename, link, and attributes. Every name is
 * checked against the policy before it reaches the host; every *at call is relative to an
 * O_PATH fd of the parent and never follows a symlink at the last component (only lookups
 * of the `follow` policy do, for host links).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsview.h"

static bool bad_name(const char *name)
{
    return name[0] == '\0' || strchr(name, '/') != NULL || strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

void proc_path(int fd, char *out, size_t size)
{
    snprintf(out, size, "/proc/self/fd/%d", fd);
}

static void cover_attr(const struct node *n, struct stat *st)
{
    static struct timespec started;
    if (started.tv_sec == 0)
        clock_gettime(CLOCK_REALTIME, &started);
    memset(st, 0, sizeof *st);
    st->st_atim = st->st_mtim = st->st_ctim = started;
    st->st_ino = n->ino;
    st->st_mode = S_IFDIR | 0555;
    st->st_nlink = 2;
    st->st_uid = 0;
    st->st_gid = 0;
}

/* The node's attributes in the daemon's own ids. */
int node_stat(const struct node *n, struct stat *st)
{
    if (n->cover >= 0) {
        cover_attr(n, st);
        return 0;
    }
    return fstatat(n->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}

static bool has_head(int dir_fd)
{
    struct stat st;
    return fstatat(dir_fd, "HEAD", &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* What an existing entry is: its kind and place, from its parent and its own name. */
static enum kind entry_kind(const struct node *parent, const char *name, const struct stat *st, int fd, struct place *place)
{
    *place = child_place(parent->place, name);
    bool head = needs_head_check(parent->kind, st->st_mode) && has_head(fd);
    enum kind kind = child_kind(parent->kind, name, st->st_mode, head);
    int hit = place_hit(*place);
    if (hit >= 0)
        kind = cfg.paths[hit].cover ? K_COVERED : K_READONLY;
    return kind;
}

/* Looks `name` up in `parent` and takes a reference on its node (host ids in e->attr). */
int lookup_entry(struct node *parent, const char *name, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof *e);
    e->attr_timeout = e->entry_timeout = cfg.timeout;
    if (bad_name(name))
        return EINVAL;
    if (parent->cover >= 0)
        return ENOENT;
    guard_wait();
    struct place place = child_place(parent->place, name);
    int hit = place_hit(place);
    if (hit >= 0 && cfg.paths[hit].cover) {
        struct node *n = node_cover(hit);
        cover_attr(n, &e->attr);
        attr_to_host(&e->attr);
        e->ino = node_ino(n);
        return 0;
    }
    int fd = -1;
    if (cfg.links == LINKS_FOLLOW)
        fd = openat(parent->fd, name, O_PATH | O_CLOEXEC);
    if (fd < 0)
        fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
        int err = errno;
        close(fd);
        return err;
    }
    enum kind kind = entry_kind(parent, name, &st, fd, &place);
    struct node *n = node_get(fd, &st, kind, place);
    if (n == NULL)
        return ENOMEM;
    e->ino = node_ino(n);
    e->attr = st;
    attr_to_host(&e->attr);
    return 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;
    int err = lookup_entry(node_of(parent), name, &e);
    if (err == ENOENT) {
        e.ino = 0; /* a negative entry, cached like a positive one */
        fuse_reply_entry(req, &e);
    } else if (err != 0) {
        fuse_reply_err(req, err);
    } else {
        fuse_reply_entry(req, &e);
    }
}

/* 0 when `name` may be created in `parent`; else the refusal was logged and replied. */
static int check_create(fuse_req_t req, struct node *parent, const char *name, mode_t type, const char *op)
{
    if (bad_name(name))
        return fuse_reply_err(req, EINVAL), EINVAL;
    const char *why = NULL;
    int err = may_create(parent->kind, parent->place, name, type, &why);
    return err == 0 ? 0 : refuse(req, err, parent, name, op, why);
}

/* New entries belong to the caller (the guest user virtiofsd acts for), as a local create would. */
static void own(struct node *n, fuse_req_t req, struct node *parent)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    struct stat dir;
    uid_t uid = uid_from_host(ctx->uid);
    gid_t gid = gid_from_host(ctx->gid);
    if (uid == geteuid())
        uid = (uid_t)-1; /* made by this process: already the caller's */
    if (gid == getegid() || (fstat(parent->fd, &dir) == 0 && (dir.st_mode & S_ISGID)))
        gid = (gid_t)-1; /* ours already, or a setgid directory gives its own group */
    if (uid == (uid_t)-1 && gid == (gid_t)-1)
        return;
    if (fchownat(n->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
        fprintf(stderr, "microvm-fsview: chown of a new entry to %d:%d failed: %s\n", (int)uid, (int)gid, strerror(errno));
}

/* Replies with the entry just made by the caller; err is the creating call's errno. */
static void reply_created(fuse_req_t req, struct node *parent, const char *name, int err)
{
    struct fuse_entry_param e;
    if (err == 0)
        err = lookup_entry(parent, name, &e);
    if (err != 0) {
        fuse_reply_err(req, err);
        return;
    }
    struct node *n = node_of(e.ino);
    own(n, req, parent);
    if (node_stat(n, &e.attr) == 0)
        attr_to_host(&e.attr);
    fuse_reply_entry(req, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    struct node *p = node_of(parent);
    if (check_create(req, p, name, mode & S_IFMT, "mknod") != 0)
        return;
    reply_created(req, p, name, mknodat(p->fd, name, mode, rdev) == 0 ? 0 : errno);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct node *p = node_of(parent);
    if (check_create(req, p, name, S_IFDIR, "mkdir") != 0)
        return;
    reply_created(req, p, name, mkdirat(p->fd, name, mode) == 0 ? 0 : errno);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    struct node *p = node_of(parent);
    if (check_create(req, p, name, S_IFLNK, "symlink") != 0)
        return;
    reply_created(req, p, name, symlinkat(link, p->fd, name) == 0 ? 0 : errno);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
    struct node *p = node_of(parent);
    if (check_create(req, p, name, S_IFREG, "create") != 0)
        return;
    int fd = openat(p->fd, name, (fi->flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC) & ~O_DIRECTORY, mode);
    if (fd < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    struct fuse_entry_param e;
    int err = lookup_entry(p, name, &e);
    if (err == 0 && !kind_writable(node_of(e.ino)->kind)) {
        /* an existing file that is another name of a protected one (a host hard link) */
        node_forget(node_of(e.ino), 1);
        close(fd);
        refuse(req, EACCES, p, name, "create", "another name of a protected file");
        return;
    }
    if (err != 0) {
        close(fd);
        fuse_reply_err(req, err);
        return;
    }
    own(node_of(e.ino), req, p);
    if (node_stat(node_of(e.ino), &e.attr) == 0)
        attr_to_host(&e.attr);
    fi->fh = (uint64_t)fd;
    fi->noflush = 1;
    fuse_reply_create(req, &e, fi);
}

/* The kind `name` has in `parent` now (ENOENT and friends as errno). */
static int existing_kind(struct node *parent, const char *name, enum kind *kind, struct place *place, struct stat *st)
{
    if (fstatat(parent->fd, name, st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno;
    int fd = -1;
    if (S_ISDIR(st->st_mode))
        fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    *kind = entry_kind(parent, name, st, fd >= 0 ? fd : parent->fd, place);
    if (fd >= 0)
        close(fd);
    return 0;
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name, int flags, const char *op)
{
    struct node *p = node_of(parent);
    if (bad_name(name) || p->cover >= 0) {
        fuse_reply_err(req, p->cover >= 0 ? ENOENT : EINVAL);
        return;
    }
    if (cfg.read_only) {
        refuse(req, EROFS, p, name, op, "the share is read-only");
        return;
    }
    guard_wait();
    enum kind kind;
    struct place place;
    struct stat st;
    int err = existing_kind(p, name, &kind, &place, &st);
    if (err != 0) {
        fuse_reply_err(req, err);
        return;
    }
    if (place.mask != 0) {
        refuse(req, EBUSY, p, name, op, "a protected or covered path is at or below it");
        return;
    }
    if (!kind_writable(kind)) {
        refuse(req, EACCES, p, name, op, "protected (host tools run or trust it)");
        return;
    }
    fuse_reply_err(req, unlinkat(p->fd, name, flags) == 0 ? 0 : errno);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_entry(req, parent, name, 0, "unlink");
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_entry(req, parent, name, AT_REMOVEDIR, "rmdir");
}

/*
 * A node may move only where it stays what it is: the same kind, and no configured path at
 * or below it. Otherwise EXDEV, on which mv and friends copy, and the copy is checked name
 * by name.
 */
static int check_move(fuse_req_t req, struct node *from, const char *name, struct node *to, const char *newname,
                      const struct stat *st, enum kind kind, struct place place, const char *op)
{
    if (!kind_writable(kind))
        return refuse(req, EACCES, from, name, op, "protected (host tools run or trust it)");
    if (place.mask != 0)
        return refuse(req, EBUSY, from, name, op, "a protected or covered path is at or below it");
    const char *why = NULL;
    int err = may_create(to->kind, to->place, newname, st->st_mode & S_IFMT, &why);
    if (err != 0)
        return refuse(req, err, to, newname, op, why);
    bool head = false;
    if (needs_head_check(to->kind, st->st_mode) && S_ISDIR(st->st_mode)) {
        int fd = openat(from->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        head = fd >= 0 && fstatat(fd, "HEAD", &(struct stat){0}, AT_SYMLINK_NOFOLLOW) == 0;
        if (fd >= 0)
            close(fd);
    }
    if (child_kind(to->kind, newname, st->st_mode, head) != kind)
        return refuse(req, EXDEV, to, newname, op, "it would cross a protection boundary (copy it instead)");
    return 0;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
                      unsigned int flags)
{
    struct node *p = node_of(parent), *np = node_of(newparent);
    if (bad_name(name) || bad_name(newname) || (flags & RENAME_WHITEOUT)) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (p->cover >= 0 || np->cover >= 0) {
        refuse(req, EACCES, p->cover >= 0 ? p : np, p->cover >= 0 ? name : newname, "rename", "a volume covers this path");
        return;
    }
    if (cfg.read_only) {
        refuse(req, EROFS, p, name, "rename", "the share is read-only");
        return;
    }
    guard_wait();
    enum kind kind, dkind;
    struct place place, dplace;
    struct stat st, dst;
    int err = existing_kind(p, name, &kind, &place, &st);
    if (err != 0) {
        fuse_reply_err(req, err);
        return;
    }
    if (check_move(req, p, name, np, newname, &st, kind, place, "rename") != 0)
        return;
    err = existing_kind(np, newname, &dkind, &dplace, &dst);
    if (err == 0 && (flags & RENAME_EXCHANGE)) {
        if (check_move(req, np, newname, p, name, &dst, dkind, dplace, "rename") != 0)
            return;
    } else if (err == 0 && (!kind_writable(dkind) || dplace.mask != 0)) {
        refuse(req, EACCES, np, newname, "rename", "it would replace a protected entry");
        return;
    }
    fuse_reply_err(req, renameat2(p->fd, name, np->fd, newname, flags) == 0 ? 0 : errno);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    struct node *n = node_of(ino), *np = node_of(newparent);
    if (n->cover >= 0) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if (S_ISLNK(n->type) && cfg.links != LINKS_OPAQUE) {
        refuse(req, EPERM, np, newname, "link", "a hard link of a symlink (symlinks are denied on this share)");
        return;
    }
    if (check_create(req, np, newname, n->type, "link") != 0)
        return;
    if (!kind_writable(n->kind)) {
        refuse(req, EACCES, np, newname, "link", "a new name for a protected file");
        return;
    }
    if (child_kind(np->kind, newname, n->type, false) != n->kind || child_place(np->place, newname).mask != 0) {
        refuse(req, EXDEV, np, newname, "link", "it would cross a protection boundary");
        return;
    }
    char path[64];
    proc_path(n->fd, path, sizeof path);
    int err = linkat(AT_FDCWD, path, np->fd, newname, AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
    struct fuse_entry_param e;
    if (err == 0)
        err = lookup_entry(np, newname, &e);
    if (err != 0)
        fuse_reply_err(req, err);
    else
        fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    node_forget(node_of(ino), nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++)
        node_forget(node_of(forgets[i].ino), forgets[i].nlookup);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct stat st;
    int err = node_stat(node_of(ino), &st);
    if (err != 0) {
        fuse_reply_err(req, err);
        return;
    }
    attr_to_host(&st);
    fuse_reply_attr(req, &st, cfg.timeout);
}

static int set_times(const struct node *n, const struct stat *attr, int valid, struct fuse_file_info *fi)
{
    struct timespec tv[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};
    if (valid & FUSE_SET_ATTR_ATIME_NOW)
        tv[0].tv_nsec = UTIME_NOW;
    else if (valid & FUSE_SET_ATTR_ATIME)
        tv[0] = attr->st_atim;
    if (valid & FUSE_SET_ATTR_MTIME_NOW)
        tv[1].tv_nsec = UTIME_NOW;
    else if (valid & FUSE_SET_ATTR_MTIME)
        tv[1] = attr->st_mtim;
    if (fi != NULL)
        return futimens((int)fi->fh, tv);
    if (S_ISLNK(n->type)) {
        if (utimensat(n->fd, "", tv, AT_EMPTY_PATH) == 0)
            return 0;
        if (errno == EINVAL)
            errno = EPERM; /* no race-free way to set a symlink's times */
        return -1;
    }
    char path[64];
    proc_path(n->fd, path, sizeof path);
    return utimensat(AT_FDCWD, path, tv, 0);
}

static int apply_attr(const struct node *n, const struct stat *attr, int valid, struct fuse_file_info *fi)
{
    char path[64];
    proc_path(n->fd, path, sizeof path);
    if ((valid & FUSE_SET_ATTR_MODE) &&
        (fi != NULL ? fchmod((int)fi->fh, attr->st_mode) : fchmodat(AT_FDCWD, path, attr->st_mode, 0)) != 0)
        return errno;
    if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
        uid_t uid = (valid & FUSE_SET_ATTR_UID) ? uid_from_host(attr->st_uid) : (uid_t)-1;
        gid_t gid = (valid & FUSE_SET_ATTR_GID) ? gid_from_host(attr->st_gid) : (gid_t)-1;
        if (fchownat(n->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
            return errno;
    }
    if ((valid & FUSE_SET_ATTR_SIZE) &&
        (fi != NULL ? ftruncate((int)fi->fh, attr->st_size) : truncate(path, attr->st_size)) != 0)
        return errno;
    if ((valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) &&
        set_times(n, attr, valid, fi) != 0)
        return errno;
    return 0;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid, struct fuse_file_info *fi)
{
    struct node *n = node_of(ino);
    if (cfg.read_only || n->cover >= 0 || !kind_writable(n->kind)) {
        int err = cfg.read_only ? EROFS : EACCES;
        refuse(req, err, n, NULL, "setattr", cfg.read_only ? "the share is read-only" : "protected (host tools run or trust it)");
        return;
    }
    int err = apply_attr(n, attr, valid, fi);
    if (err != 0) {
        fuse_reply_err(req, err);
        return;
    }
    op_getattr(req, ino, fi);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct node *n = node_of(ino);
    char buf[PATH_MAX + 1];
    ssize_t len = n->cover >= 0 ? (errno = EINVAL, -1) : readlinkat(n->fd, "", buf, sizeof buf);
    if (len < 0 || len > PATH_MAX) {
        fuse_reply_err(req, len < 0 ? errno : ENAMETOOLONG);
        return;
    }
    buf[len] = '\0';
    fuse_reply_readlink(req, buf);
}

void entry_ops(struct fuse_lowlevel_ops *ops)
{
    ops->lookup = op_lookup;
    ops->forget = op_forget;
    ops->forget_multi = op_forget_multi;
    ops->getattr = op_getattr;
    ops->setattr = op_setattr;
    ops->readlink = op_readlink;
    ops->mknod = op_mknod;
    ops->mkdir = op_mkdir;
    ops->symlink = op_symlink;
    ops->create = op_create;
    ops->unlink = op_unlink;
    ops->rmdir = op_rmdir;
    ops->rename = op_rename;
    ops->link = op_link;
}
