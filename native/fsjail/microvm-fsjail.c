/*
 * microvm-fsjail [options] -- VIRTIOFSD ARGS...
 *
 * The host-side sandbox around Debian's C virtiofsd (which must start as root and has no
 * uid mapping, symlink or read-only-subtree options of its own):
 *
 *   --socket PATH        bind and listen on the vhost-user socket here, as real root, and
 *                        pass it to virtiofsd as fd 3 (it then needs no access to PATH's dir)
 *   --uid-map "IN OUT N" / --gid-map "IN OUT N"   (repeatable) the user namespace virtiofsd
 *                        runs in: guest uid 0 becomes the folder's owner on the host
 *   --ro PATH            (repeatable) bind PATH read-only in virtiofsd's mount namespace
 *   --deny-symlinks      seccomp: symlink(2)/symlinkat(2) fail with EPERM
 *   --fuse-view PATH     (symlinks: follow) cover PATH, in virtiofsd's mount namespace only,
 *                        with the FUSE file system of --fuse-daemon (see fuse-view.c)
 *   --fuse-daemon ARG    (repeatable) that daemon's argv: bindfs --resolve-symlinks ...
 *
 * A child enters a new user + mount namespace; this process (still real root) writes its id
 * maps, then waits for it and exits with its status. Both die when their parent dies.
 * The read-only binds come after the view, so they hold on what virtiofsd serves.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuse-view.h"

#define EXIT_SETUP FUSE_VIEW_EXIT
#define MAX_ITEMS 64
#define SOCKET_FD 3
#define WANT_NOFILE 1000000

struct options {
    const char *socket_path;
    const char *uid_maps[MAX_ITEMS];
    int nuid;
    const char *gid_maps[MAX_ITEMS];
    int ngid;
    const char *ro[MAX_ITEMS];
    int nro;
    int deny_symlinks;
    const char *fuse_view;
    const char *fuse_daemon[MAX_ITEMS + 1];
    int ndaemon;
    char **program;
};

static void __attribute__((noreturn)) die(const char *what)
{
    fprintf(stderr, "microvm-fsjail: %s: %s\n", what, strerror(errno));
    _exit(EXIT_SETUP);
}

static void __attribute__((noreturn)) usage(const char *why)
{
    fprintf(stderr, "microvm-fsjail: %s\nusage: microvm-fsjail [--socket PATH] [--uid-map M]... "
                    "[--gid-map M]... [--ro PATH]... [--deny-symlinks] [--fuse-view PATH "
                    "--fuse-daemon ARG...] -- PROGRAM ARGS...\n", why);
    exit(EXIT_SETUP);
}

static void push(const char **list, int *n, const char *value)
{
    if (*n >= MAX_ITEMS)
        usage("too many repeated options");
    list[(*n)++] = value;
}

static void parse(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof *o);
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--deny-symlinks") == 0) {
            o->deny_symlinks = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage("an option needs a value");
        const char *value = argv[++i];
        if (strcmp(opt, "--socket") == 0)
            o->socket_path = value;
        else if (strcmp(opt, "--uid-map") == 0)
            push(o->uid_maps, &o->nuid, value);
        else if (strcmp(opt, "--gid-map") == 0)
            push(o->gid_maps, &o->ngid, value);
        else if (strcmp(opt, "--ro") == 0)
            push(o->ro, &o->nro, value);
        else if (strcmp(opt, "--fuse-view") == 0)
            o->fuse_view = value;
        else if (strcmp(opt, "--fuse-daemon") == 0)
            push(o->fuse_daemon, &o->ndaemon, value);
        else
            usage("unknown option");
    }
    if (i + 1 >= argc)
        usage("no program given");
    if (!o->fuse_view != (o->ndaemon == 0))
        usage("--fuse-view and --fuse-daemon go together");
    o->program = &argv[i + 1];
}

static void listen_socket(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        usage("socket path too long");
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    unlink(path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("bind the vhost-user socket");
    if (listen(fd, 1) != 0)
        die("listen");
    if (fd != SOCKET_FD && (dup2(fd, SOCKET_FD) < 0 || close(fd) != 0))
        die("dup2");
}

static void write_map(pid_t pid, const char *file, const char *const *lines, int n)
{
    char path[64], text[4096] = "";
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    for (int i = 0; i < n; i++) {
        if (strlen(text) + strlen(lines[i]) + 2 > sizeof text)
            usage("id map too long");
        strcat(text, lines[i]);
        strcat(text, "\n");
    }
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        die(path);
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        die(path);
    close(fd);
}

/* Locked mount flags (nosuid, nodev, ...) must be kept on a remount inside a user namespace. */
static unsigned long kept_flags(const char *path)
{
    struct statvfs st;
    if (statvfs(path, &st) != 0)
        die(path);
    unsigned long flags = 0;
    if (st.f_flag & ST_NOSUID)
        flags |= MS_NOSUID;
    if (st.f_flag & ST_NODEV)
        flags |= MS_NODEV;
    if (st.f_flag & ST_NOEXEC)
        flags |= MS_NOEXEC;
    if (st.f_flag & ST_NOATIME)
        flags |= MS_NOATIME;
    if (st.f_flag & ST_NODIRATIME)
        flags |= MS_NODIRATIME;
    if (st.f_flag & ST_RELATIME)
        flags |= MS_RELATIME;
    return flags;
}

static void bind_read_only(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        die(path);
    if (S_ISLNK(st.st_mode)) {
        errno = ELOOP;
        die(path);
    }
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) != 0)
        die("bind mount");
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | kept_flags(path), NULL) != 0)
        die("read-only remount");
}

static void deny_symlinks(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
#if defined(__x86_64__)
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
#elif defined(__aarch64__)
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_AARCH64, 1, 0),
#endif
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef SYS_symlink
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_symlink, 2, 0),
#else
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_symlinkat, 2, 0),
#endif
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_symlinkat, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        die("prctl(PR_SET_NO_NEW_PRIVS)");
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        die("prctl(PR_SET_SECCOMP)");
}

static void __attribute__((noreturn)) child(const struct options *o, int ready_w, int go_r)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        die("prctl(PR_SET_PDEATHSIG)");
    if (o->fuse_view)
        fuse_view_start((char *const *)o->fuse_daemon, o->fuse_view);
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        die("unshare(user, mount namespaces)");
    char byte = 1;
    if (write(ready_w, &byte, 1) != 1 || read(go_r, &byte, 1) != 1)
        die("sync with the parent");
    close(ready_w);
    close(go_r);
    if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0)
        die("become root of the user namespace");
    /* Changing credentials cleared the parent-death signal: set it again. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        die("prctl(PR_SET_PDEATHSIG)");
    if (getppid() == 1)
        _exit(EXIT_SETUP);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        die("make mounts private");
    for (int i = 0; i < o->nro; i++)
        bind_read_only(o->ro[i]);
    if (o->deny_symlinks)
        deny_symlinks();
    execvp(o->program[0], o->program);
    die(o->program[0]);
}

/*
 * virtiofsd holds an fd for every inode the guest has looked up: raise the fd limit while we
 * are real root (inside the user namespace it could not pass the hard limit).
 */
static void raise_fd_limit(void)
{
    struct rlimit lim = {.rlim_cur = WANT_NOFILE, .rlim_max = WANT_NOFILE};
    if (setrlimit(RLIMIT_NOFILE, &lim) == 0)
        return;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
        die("getrlimit");
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
        die("setrlimit(RLIMIT_NOFILE)");
}

int main(int argc, char **argv)
{
    int stand_in = fuse_view_stand_in(argc, argv);
    if (stand_in >= 0)
        return stand_in;
    struct options o;
    parse(argc, argv, &o);
    raise_fd_limit();
    if (o.socket_path)
        listen_socket(o.socket_path);
    int ready[2], go[2];
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0)
        child(&o, ready[1], go[0]);
    if (o.socket_path)
        close(SOCKET_FD);
    close(ready[1]);
    close(go[0]);
    char byte;
    if (read(ready[0], &byte, 1) != 1) {
        waitpid(pid, NULL, 0);
        fprintf(stderr, "microvm-fsjail: the namespace child failed to start\n");
        return EXIT_SETUP;
    }
    /* Without setgroups=deny an unprivileged writer could not map gids; as root we may keep it. */
    write_map(pid, "uid_map", o.uid_maps, o.nuid);
    write_map(pid, "gid_map", o.gid_maps, o.ngid);
    if (write(go[1], &byte, 1) != 1)
        die("sync with the child");
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid");
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
