/*
 * microvm-fsview --source DIR [--source-fd N] (--mountpoint DIR | --fuse-fd N) [policy]
 *
 *   --protect-name GLOB   (repeatable) a name protected at any depth (.git, *.code-workspace)
 *   --protect-path REL    (repeatable) one path, relative to the share, kept read-only
 *   --cover REL           (repeatable) a path a volume covers: an empty read-only directory
 *   --git writable|strict git's everyday data writable (default), or all of .git read-only
 *   --symlinks opaque|deny|follow
 *   --read-only           the whole share
 *   --guest-path PATH     where the guest mounts the share (to resolve absolute links)
 *   --timeout SECONDS     how long the kernel may cache entries and attributes (default 0.05)
 *
 * In production microvm-fsjail opens the share and /dev/fuse, mounts the view for virtiofsd
 * and starts this daemon with --source-fd (the folder opened before the view covered it;
 * --source then only names it) and --fuse-fd (see native/fsjail). Tests run it on the host
 * with --source and --mountpoint.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsview.h"

#define EXIT_USAGE 2

struct options {
    const char *source;
    int source_fd;
    const char *mountpoint;
    int fuse_fd;
};

static void __attribute__((noreturn)) usage(const char *why, const char *value)
{
    fprintf(stderr, "microvm-fsview: %s%s%s\n", why, value ? ": " : "", value ? value : "");
    fprintf(stderr, "usage: microvm-fsview --source DIR [--source-fd N] (--mountpoint DIR | --fuse-fd N) "
                    "[--protect-name GLOB]... [--protect-path REL]... [--cover REL]... [--git writable|strict] "
                    "[--symlinks opaque|deny|follow] [--read-only] [--guest-path PATH] [--timeout SECONDS]\n");
    exit(EXIT_USAGE);
}

static int parse_fd(const char *text)
{
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || value < 0 || value > 1000000)
        usage("not a file descriptor", text);
    return (int)value;
}

/* A share-relative path: no leading '/', no '.' or '..' components, at most MAX_DEPTH parts. */
static void add_path(const char *text, bool cover)
{
    if (cfg.npaths >= MAX_PATHS)
        usage("too many --protect-path and --cover options", text);
    struct config_path *p = &cfg.paths[cfg.npaths];
    char *copy = strdup(text);
    if (copy == NULL || text[0] == '/' || text[0] == '\0')
        usage("expected a path relative to the share", text);
    p->cover = cover;
    for (char *save = NULL, *part = strtok_r(copy, "/", &save); part != NULL; part = strtok_r(NULL, "/", &save)) {
        if (strcmp(part, ".") == 0 || strcmp(part, "..") == 0 || p->nparts >= MAX_DEPTH)
            usage("expected a plain relative path", text);
        p->parts[p->nparts++] = part;
    }
    if (p->nparts == 0)
        usage("expected a path relative to the share", text);
    cfg.npaths++;
}

static void parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){.source_fd = -1, .fuse_fd = -1};
    cfg.links = LINKS_OPAQUE;
    /* Long enough to spare the round trip of a stat right after a lookup, far shorter than
       virtiofsd's own 1 s: a host edit still reaches the guest as soon as it would without us. */
    cfg.timeout = 0.05;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--read-only") == 0) {
            cfg.read_only = true;
            continue;
        }
        if (i + 1 >= argc)
            usage("an option needs a value", opt);
        const char *value = argv[++i];
        if (strcmp(opt, "--source") == 0)
            o->source = value;
        else if (strcmp(opt, "--source-fd") == 0)
            o->source_fd = parse_fd(value);
        else if (strcmp(opt, "--mountpoint") == 0)
            o->mountpoint = value;
        else if (strcmp(opt, "--fuse-fd") == 0)
            o->fuse_fd = parse_fd(value);
        else if (strcmp(opt, "--protect-name") == 0 && cfg.nnames < MAX_NAMES)
            cfg.names[cfg.nnames++] = value;
        else if (strcmp(opt, "--protect-path") == 0)
            add_path(value, false);
        else if (strcmp(opt, "--cover") == 0)
            add_path(value, true);
        else if (strcmp(opt, "--git") == 0 && (strcmp(value, "writable") == 0 || strcmp(value, "strict") == 0))
            cfg.git_strict = strcmp(value, "strict") == 0;
        else if (strcmp(opt, "--symlinks") == 0 && strcmp(value, "opaque") == 0)
            cfg.links = LINKS_OPAQUE;
        else if (strcmp(opt, "--symlinks") == 0 && strcmp(value, "deny") == 0)
            cfg.links = LINKS_DENY;
        else if (strcmp(opt, "--symlinks") == 0 && strcmp(value, "follow") == 0)
            cfg.links = LINKS_FOLLOW;
        else if (strcmp(opt, "--guest-path") == 0 && value[0] == '/')
            cfg.guest_path = value;
        else if (strcmp(opt, "--timeout") == 0)
            cfg.timeout = atof(value);
        else
            usage("unknown option or bad value", opt);
    }
    if (!o->source)
        usage("--source is required", NULL);
    if (!o->mountpoint == (o->fuse_fd < 0))
        usage("give exactly one of --mountpoint and --fuse-fd", NULL);
}

static int open_root(const struct options *o, struct stat *st)
{
    int fd = o->source_fd >= 0 ? o->source_fd : open(o->source, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, st) != 0 || !S_ISDIR(st->st_mode)) {
        fprintf(stderr, "microvm-fsview: cannot open the share %s: %s\n", o->source ? o->source : "(fd)", strerror(errno ? errno : ENOTDIR));
        exit(1);
    }
    return fd;
}

/* A node holds an fd for every inode the kernel caches: as many as the hard limit allows. */
static void raise_fd_limit(void)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
            fprintf(stderr, "microvm-fsview: setrlimit(RLIMIT_NOFILE): %s\n", strerror(errno));
    }
}

static struct fuse_session *new_session(void)
{
    struct fuse_lowlevel_ops ops;
    memset(&ops, 0, sizeof ops);
    entry_ops(&ops);
    file_ops(&ops);
    char *argv[] = {"microvm-fsview", "-o", "allow_other,default_permissions,fsname=microvm-fsview,subtype=microvm", NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, argv);
    return fuse_session_new(&args, &ops, sizeof ops, NULL);
}

int main(int argc, char **argv)
{
    struct options o;
    struct stat st;
    parse(argc, argv, &o);
    umask(0);
    raise_fd_limit();
    int root_fd = open_root(&o, &st);
    if (idmap_init() != 0) {
        fprintf(stderr, "microvm-fsview: cannot read /proc/self/uid_map or gid_map: %s\n", strerror(errno));
        return 1;
    }
    nodes_init(root_fd, &st);
    refusal_init(root_fd);
    guard_start(root_fd);

    struct fuse_session *se = new_session();
    if (se == NULL)
        return 1;
    char fd_mount[32];
    snprintf(fd_mount, sizeof fd_mount, "/dev/fd/%d", o.fuse_fd);
    if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, o.mountpoint ? o.mountpoint : fd_mount) != 0) {
        fprintf(stderr, "microvm-fsview: cannot mount the view\n");
        return 1;
    }
    if (o.mountpoint != NULL) {
        printf("ready\n"); /* tests wait for this line */
        fflush(stdout);
    }
    struct fuse_loop_config loop = {.clone_fd = 0, .max_idle_threads = 16};
    int status = fuse_session_loop_mt(se, &loop);
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return status == 0 ? 0 : 1;
}
