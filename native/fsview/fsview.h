/*
 * microvm-fsview: the host-side filter between virtiofsd and a shared folder.
 *
 * virtiofsd serves this FUSE file system instead of the folder itself, so every request a
 * guest makes passes through the policy below before it touches the host: names that host
 * tools execute or trust (.git, .vscode, *.code-workspace, ...) cannot be created at any
 * depth, existing ones are read-only, git's everyday data stays writable, paths a volume
 * covers are empty read-only directories, and the symlink policy holds for hard links too.
 */
#ifndef MICROVM_FSVIEW_H
#define MICROVM_FSVIEW_H

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define MAX_NAMES 64   /* protected names (globs) */
#define MAX_PATHS 64   /* protected and covered paths: one bit each in a node's mask */
#define MAX_DEPTH 32   /* components of one configured path */

/*
 * What a node is, derived from its parent's kind and its own name (never from anything the
 * guest can change later without passing the same checks): see policy.c.
 */
enum kind {
    K_NORMAL,     /* the user's files: writable; new names are filtered */
    K_READONLY,   /* a protected entry and everything below it */
    K_GITDIR,     /* a git directory: only git's everyday data is writable */
    K_GITDATA,    /* objects, refs, logs, the index, ...: writable */
    K_GITOBJECTS, /* <gitdir>/objects */
    K_GITOBJINFO, /* <gitdir>/objects/info: alternates stay read-only */
    K_GITNEST,    /* <gitdir>/modules, <gitdir>/worktrees: existing git dirs, nothing new */
    K_COVERED,    /* a path a volume covers: an empty read-only directory */
};

enum symlink_policy { LINKS_OPAQUE, LINKS_DENY, LINKS_FOLLOW };

struct config_path {
    char *parts[MAX_DEPTH];
    int nparts;
    bool cover; /* a volume's mount point; else a protected (read-only) path */
};

struct config {
    const char *names[MAX_NAMES]; /* fnmatch patterns, matched without regard to case */
    int nnames;
    struct config_path paths[MAX_PATHS];
    int npaths;
    bool git_strict;  /* all of every git dir is read-only */
    bool read_only;   /* the whole share */
    enum symlink_policy links;
    const char *guest_path; /* where the guest mounts the share (absolute link targets) */
    double timeout;   /* seconds the kernel may cache entries and attributes */
};

/* A node's place relative to the configured paths: which ones it lies on, and how deep. */
struct place {
    uint64_t mask;
    int depth;
};

/* One inode the kernel knows (or the root, or a covered path's stand-in). */
struct node {
    uint64_t nlookup;
    int fd;        /* O_PATH; -1 for a covered path's stand-in */
    dev_t dev;
    ino_t ino;
    mode_t type;   /* S_IFMT bits */
    enum kind kind;
    struct place place;
    int cover;     /* the covered path's index for a stand-in, else -1 */
    struct node *next; /* hash chain */
};

/* policy.c */
extern struct config cfg;
enum kind child_kind(enum kind parent, const char *name, mode_t type, bool dir_has_head);
struct place child_place(struct place parent, const char *name);
int place_hit(struct place p); /* the configured path this place ends, or -1 */
bool kind_writable(enum kind k);
/* 0, or an errno with *why set, for a new entry `name` of `type` in a parent of kind k. */
int may_create(enum kind parent, struct place pp, const char *name, mode_t type, const char **why);
bool needs_head_check(enum kind parent, mode_t type);

/* nodes.c */
struct node *node_root(void);
void nodes_init(int root_fd, const struct stat *st);
struct node *node_of(fuse_ino_t ino);
fuse_ino_t node_ino(struct node *n);
/* The node for (st_dev, st_ino), created with `fd` (taken) or found (fd closed); nlookup+1. */
struct node *node_get(int fd, const struct stat *st, enum kind kind, struct place place);
struct node *node_cover(int index);
void node_forget(struct node *n, uint64_t count);
void node_mark_readonly(dev_t dev, ino_t ino);

/* guard.c: link targets of protected names, found before the first lookup is answered */
void guard_start(int root_fd);
void guard_wait(void);

/* refusal.c: an errno for the guest and a (rate-limited) line on stderr for the host */
void refusal_init(int root_fd);
int refuse(fuse_req_t req, int err, const struct node *parent, const char *name, const char *op, const char *why);

/* idmap.c: ids between the host (the kernel's side of the view) and the daemon's namespace */
int idmap_init(void);
uid_t uid_to_host(uid_t id);
gid_t gid_to_host(gid_t id);
uid_t uid_from_host(uid_t id);
gid_t gid_from_host(gid_t id);
void attr_to_host(struct stat *st);

/* entries.c */
void proc_path(int fd, char *out, size_t size);
int node_stat(const struct node *n, struct stat *st);
int lookup_entry(struct node *parent, const char *name, struct fuse_entry_param *e);
void entry_ops(struct fuse_lowlevel_ops *ops);

/* files.c */
void file_ops(struct fuse_lowlevel_ops *ops);

#endif
