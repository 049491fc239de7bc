/*
 * The `follow` view: a FUSE daemon (bindfs --resolve-symlinks) serves the share with host
 * symlinks resolved, and virtiofsd serves that view instead of the share.
 *
 * The daemon runs as the folder's owner (real uid and gid, no capabilities, no user
 * namespace), so it follows only what the owner may read. It cannot open /dev/fuse (host
 * root's) or mount, and a view mounted over the share in its own namespace would send its
 * absolute-path lookups back into itself. So the jail, still real root, opens /dev/fuse and
 * mounts the view over the share in a mount namespace that only virtiofsd inherits; the
 * daemon keeps one where the share is the real directory, and gets the connection through
 * libfuse's own fd-passing protocol: `-o auto_unmount` makes libfuse 2 ask fusermount for
 * the fd over $_FUSE_COMMFD, and in the daemon's namespace /bin/fusermount is this binary,
 * which answers with the fd it was given.
 */
#define _GNU_SOURCE
#include "fuse-view.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUSE_FD_ENV "MICROVM_FUSE_FD"
#define COMMFD_ENV "_FUSE_COMMFD"
#define FUSERMOUNT "/bin/fusermount"
#define SOCKET_FD 3

static void __attribute__((noreturn)) fail(const char *what)
{
    fprintf(stderr, "microvm-fsjail: %s: %s\n", what, strerror(errno));
    _exit(FUSE_VIEW_EXIT);
}

static void new_private_mount_namespace(void)
{
    if (unshare(CLONE_NEWNS) != 0)
        fail("unshare(mount namespace)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        fail("make mounts private");
}

/* This binary stands in for fusermount (bind-mounted by path: the mount must be in this namespace). */
static void bind_stand_in(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0)
        fail("readlink /proc/self/exe");
    self[n] = '\0';
    if (mount(self, FUSERMOUNT, NULL, MS_BIND, NULL) != 0)
        fail("bind the stand-in " FUSERMOUNT);
}

static void become_owner(const struct stat *owner, pid_t parent)
{
    if (setgroups(1, &owner->st_gid) != 0 || setresgid(owner->st_gid, owner->st_gid, owner->st_gid) != 0 ||
        setresuid(owner->st_uid, owner->st_uid, owner->st_uid) != 0)
        fail("become the folder's owner");
    /* Changing credentials cleared the parent-death signal: set it again. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        fail("prctl(PR_SET_PDEATHSIG)");
    if (getppid() != parent)
        _exit(FUSE_VIEW_EXIT);
}

static void __attribute__((noreturn)) exec_daemon(char *const *argv, int fuse_fd, const struct stat *owner, pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        fail("prctl(PR_SET_PDEATHSIG)");
    if (getppid() != parent)
        _exit(FUSE_VIEW_EXIT);
    new_private_mount_namespace();
    bind_stand_in();
    if (close(SOCKET_FD) != 0 && errno != EBADF)
        fail("close the vhost-user socket");
    int fd = dup(fuse_fd); /* without O_CLOEXEC: it reaches the stand-in */
    if (fd < 0)
        fail("dup /dev/fuse");
    char number[16];
    snprintf(number, sizeof number, "%d", fd);
    if (setenv(FUSE_FD_ENV, number, 1) != 0)
        fail("setenv");
    become_owner(owner, parent);
    execvp(argv[0], argv);
    fail(argv[0]);
}

void fuse_view_start(char *const *daemon_argv, const char *path)
{
    struct stat owner;
    if (stat(path, &owner) != 0)
        fail(path);
    new_private_mount_namespace();
    int fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fuse_fd < 0)
        fail("open /dev/fuse");
    pid_t self = getpid();
    pid_t pid = fork();
    if (pid < 0)
        fail("fork the FUSE daemon");
    if (pid == 0)
        exec_daemon(daemon_argv, fuse_fd, &owner, self);
    /* The daemon dies with this process (soon virtiofsd): PR_SET_PDEATHSIG. */
    new_private_mount_namespace();
    char options[160];
    snprintf(options, sizeof options,
             "fd=%d,rootmode=40000,user_id=%u,group_id=%u,allow_other,default_permissions",
             fuse_fd, (unsigned)owner.st_uid, (unsigned)owner.st_gid);
    if (mount("microvm-follow", path, "fuse", MS_NOSUID | MS_NODEV, options) != 0)
        fail("mount the FUSE view");
    if (close(fuse_fd) != 0)
        fail("close /dev/fuse");
}

/* fusermount's side of libfuse's protocol: one byte with the fd in SCM_RIGHTS. */
static int send_fd(int sock, int fd)
{
    char byte = 0;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    ssize_t sent;
    while ((sent = sendmsg(sock, &msg, 0)) < 0 && errno == EINTR)
        ;
    return sent == 1 ? 0 : -1;
}

static int parse_fd(const char *text)
{
    char *end = NULL;
    errno = 0;
    long value = text ? strtol(text, &end, 10) : -1;
    if (!text || errno != 0 || *end != '\0' || value < 0 || value > 65535)
        return -1;
    return (int)value;
}

int fuse_view_stand_in(int argc, char **argv)
{
    const char *name = strrchr(argv[0], '/');
    if (strcmp(name ? name + 1 : argv[0], "fusermount") != 0)
        return -1;
    int comm = parse_fd(getenv(COMMFD_ENV));
    int fuse_fd = parse_fd(getenv(FUSE_FD_ENV));
    if (comm < 0 || fuse_fd < 0)
        return -1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-u") == 0)
            return 0; /* the view goes away with virtiofsd's mount namespace */
    if (send_fd(comm, fuse_fd) != 0) {
        fprintf(stderr, "microvm-fsjail (as fusermount): sendmsg: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
