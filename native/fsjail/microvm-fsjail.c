/*
 * microvm-fsjail [options] -- VIRTIOFSD ARGS...
 *
 * The host-side sandbox around virtiofsd (Debian's C one must start as root and has no uid
 * mapping, name filter or read-only-subtree options of its own):
 *
 *   --socket PATH        bind and listen on the vhost-user socket here, as real root, and
 *                        pass it to virtiofsd as fd 3 (it then needs no access to PATH's dir)
 *   --uid-map "IN OUT N" / --gid-map "IN OUT N"   (repeatable) the user namespace virtiofsd
 *                        runs in: guest uid 0 becomes the folder's owner on the host
 *   --ro PATH            (repeatable) bind PATH read-only in virtiofsd's mount namespace
 *   --deny-symlinks      seccomp: symlink(2)/symlinkat(2) fail with EPERM
 *   --no-flush           seccomp: dup(2), and close(2) of -1, fail with ENOSYS. Debian's C
 *                        virtiofsd answers FLUSH with close(dup(fd)) (its only dup), so the
 *                        answer becomes ENOSYS and the guest kernel stops sending FLUSH: one
 *                        round trip less per close(2). That FLUSH does nothing the guest
 *                        needs: locks are the guest kernel's (no posix_lock) and writes are
 *                        synchronous (no writeback), so there is no delayed error to report.
 *   --view PROGRAM       serve the share through this filter (microvm-fsview), mounted over
 *   --view-source PATH   PATH in virtiofsd's mount namespace only
 *   --view-arg ARG       (repeatable) the filter's policy arguments
 *
 * A child enters a new user + mount namespace; this process (still real root) writes its id
 * maps, then, for a view, opens /dev/fuse and mounts it in the child's mount namespace (the
 * kernel wants the fd and the mount from the same user namespace, and /dev/fuse may be
 * root's alone). The child starts the filter inside the namespaces, with the real share
 * opened before the view covered it, then becomes virtiofsd. All of them die with their
 * parent. This process waits for the child and exits with its status.
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

#define EXIT_SETUP 125
#define MAX_ITEMS 64
#define SOCKET_FD 3
#define VIEW_SOURCE_FD 4
#define VIEW_FUSE_FD 5
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
    int no_flush;
    const char *view;
    const char *view_source;
    const char *view_args[MAX_ITEMS];
    int nview;
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
                    "[--gid-map M]... [--ro PATH]... [--deny-symlinks] [--no-flush] [--view PROGRAM --view-source PATH "
                    "[--view-arg ARG]...] -- PROGRAM ARGS...\n", why);
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
        if (strcmp(opt, "--no-flush") == 0) {
            o->no_flush = 1;
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
        else if (strcmp(opt, "--view") == 0)
            o->view = value;
        else if (strcmp(opt, "--view-source") == 0)
            o->view_source = value;
        else if (strcmp(opt, "--view-arg") == 0)
            push(o->view_args, &o->nview, value);
        else
            usage("unknown option");
    }
    if (i + 1 >= argc)
        usage("no program given");
    if (!o->view != !o->view_source)
        usage("--view and --view-source go together");
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

#define LOAD(field) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))
#define IF_EQ(value, skip_if_not) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (value), 0, (skip_if_not))
#define FAIL(err) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((err) & SECCOMP_RET_DATA))

/*
 * The seccomp filter virtiofsd runs under (after its own, which is stricter elsewhere):
 * --deny-symlinks fails symlink creation with EPERM; --no-flush fails dup(2) and close(-1)
 * with ENOSYS (see the usage above). Another architecture's system calls kill the process.
 */
static void install_filter(const struct options *o)
{
    struct sock_filter filter[16];
    size_t n = 0;
    filter[n++] = (struct sock_filter)LOAD(arch);
#if defined(__x86_64__)
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
#elif defined(__aarch64__)
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_AARCH64, 1, 0);
#endif
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    filter[n++] = (struct sock_filter)LOAD(nr);
    if (o->deny_symlinks) {
#ifdef SYS_symlink
        filter[n++] = (struct sock_filter)IF_EQ(SYS_symlink, 1);
        filter[n++] = (struct sock_filter)FAIL(EPERM);
#endif
        filter[n++] = (struct sock_filter)IF_EQ(SYS_symlinkat, 1);
        filter[n++] = (struct sock_filter)FAIL(EPERM);
    }
    if (o->no_flush) {
        filter[n++] = (struct sock_filter)IF_EQ(SYS_dup, 1);
        filter[n++] = (struct sock_filter)FAIL(ENOSYS);
        filter[n++] = (struct sock_filter)IF_EQ(SYS_close, 3);
        filter[n++] = (struct sock_filter)LOAD(args[0]); /* the low 32 bits: fd is an int */
        filter[n++] = (struct sock_filter)IF_EQ(0xffffffffU, 1);
        filter[n++] = (struct sock_filter)FAIL(ENOSYS);
    }
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {.len = (unsigned short)n, .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        die("prctl(PR_SET_NO_NEW_PRIVS)");
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        die("prctl(PR_SET_SECCOMP)");
}

/* One byte each way between the parent and the child, at each step of the set-up. */
static void sync_send(int fd, const char *step)
{
    char byte = 1;
    if (write(fd, &byte, 1) != 1)
        die(step);
}

static void sync_wait(int fd, const char *step)
{
    char byte;
    if (read(fd, &byte, 1) != 1)
        die(step);
}

/*
 * The filter daemon, in the child's namespaces: the share as it was before the view covered
 * it (source) and the view's /dev/fuse connection, at fixed fds. It dies with virtiofsd.
 */
static void start_view(const struct options *o, int program_fd, int source_fd, int fuse_fd)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        die("fork the filter view");
    if (pid > 0)
        return;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        die("prctl(PR_SET_PDEATHSIG)");
    if (getppid() != parent)
        _exit(EXIT_SETUP);
    /* Out of the way first: the fds may already sit where they must go. */
    program_fd = fcntl(program_fd, F_DUPFD_CLOEXEC, 10);
    source_fd = fcntl(source_fd, F_DUPFD_CLOEXEC, 10);
    fuse_fd = fcntl(fuse_fd, F_DUPFD_CLOEXEC, 10);
    if (program_fd < 0 || source_fd < 0 || fuse_fd < 0 || dup2(source_fd, VIEW_SOURCE_FD) < 0 || dup2(fuse_fd, VIEW_FUSE_FD) < 0)
        die("move the view's fds");
    const char *argv[MAX_ITEMS + 8];
    int n = 0;
    argv[n++] = o->view;
    for (int i = 0; i < o->nview; i++)
        argv[n++] = o->view_args[i];
    argv[n++] = "--source";
    argv[n++] = o->view_source;
    argv[n++] = "--source-fd";
    argv[n++] = "4";
    argv[n++] = "--fuse-fd";
    argv[n++] = "5";
    argv[n] = NULL;
    /* By fd: the path may lie where the namespace's root (the folder's owner) cannot go. */
    fexecve(program_fd, (char *const *)argv, environ);
    die(o->view);
}

static void __attribute__((noreturn)) child(const struct options *o, int ready_w, int go_r, int fuse_fd, int view_fd)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        die("prctl(PR_SET_PDEATHSIG)");
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        die("unshare(user, mount namespaces)");
    sync_send(ready_w, "sync with the parent");
    sync_wait(go_r, "sync with the parent");
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
    if (o->view) {
        int source_fd = open(o->view_source, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (source_fd < 0)
            die(o->view_source);
        sync_send(ready_w, "sync with the parent");
        sync_wait(go_r, "the parent could not mount the view");
        start_view(o, view_fd, source_fd, fuse_fd);
        close(source_fd);
        close(fuse_fd);
        close(view_fd);
    }
    close(ready_w);
    close(go_r);
    if (o->deny_symlinks || o->no_flush)
        install_filter(o);
    execvp(o->program[0], o->program);
    die(o->program[0]);
}

/* As real root, in the child's mount namespace: the view over the share, for virtiofsd. */
static void mount_view(const struct options *o, pid_t pid, int fuse_fd)
{
    struct stat owner;
    if (stat(o->view_source, &owner) != 0)
        die(o->view_source);
    char ns[64], options[200];
    snprintf(ns, sizeof ns, "/proc/%d/ns/mnt", (int)pid);
    int ns_fd = open(ns, O_RDONLY | O_CLOEXEC);
    if (ns_fd < 0 || setns(ns_fd, CLONE_NEWNS) != 0)
        die("enter the child's mount namespace");
    close(ns_fd);
    snprintf(options, sizeof options, "fd=%d,rootmode=40000,user_id=%u,group_id=%u,allow_other,default_permissions",
             fuse_fd, (unsigned)owner.st_uid, (unsigned)owner.st_gid);
    if (mount("microvm-fsview", o->view_source, "fuse.microvm", MS_NOSUID | MS_NODEV, options) != 0)
        die("mount the filter view");
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
    struct options o;
    parse(argc, argv, &o);
    raise_fd_limit();
    if (o.socket_path)
        listen_socket(o.socket_path);
    int fuse_fd = -1, view_fd = -1;
    if (o.view && (fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)) < 0)
        die("open /dev/fuse");
    if (o.view && (view_fd = open(o.view, O_PATH | O_CLOEXEC)) < 0)
        die(o.view);
    int ready[2], go[2];
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0)
        child(&o, ready[1], go[0], fuse_fd, view_fd);
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
    sync_send(go[1], "sync with the child");
    if (o.view) {
        if (read(ready[0], &byte, 1) != 1) {
            waitpid(pid, NULL, 0);
            fprintf(stderr, "microvm-fsjail: the namespace child failed before the view was mounted\n");
            return EXIT_SETUP;
        }
        mount_view(&o, pid, fuse_fd);
        close(fuse_fd);
        close(view_fd);
        sync_send(go[1], "sync with the child");
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid");
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
