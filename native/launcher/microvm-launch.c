/*
 * microvm-launch --parent PID -- PROGRAM ARGS...
 *
 * Runs PROGRAM so that it receives SIGKILL when the process that spawned the
 * launcher dies, even when that process is itself killed with SIGKILL. The
 * engine starts QEMU and virtiofsd through it so none of them outlives Node.
 *
 * Two mechanisms: PR_SET_PDEATHSIG on PROGRAM itself, and a watchdog process
 * forked before the exec. The kernel clears PDEATHSIG when a process changes
 * its credentials, which QEMU does when it drops from root (-runas); the
 * watchdog, which keeps its own, waits on pidfds of the parent and PROGRAM and
 * SIGKILLs PROGRAM when the parent goes first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 125
#define EXIT_NOT_RUN 127

static void usage(void)
{
    fprintf(stderr, "usage: microvm-launch --parent PID -- PROGRAM [ARGS...]\n");
    exit(EXIT_USAGE);
}

static pid_t parse_pid(const char *text)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value <= 0 || value > INT_MAX) {
        fprintf(stderr, "microvm-launch: invalid --parent PID '%s'\n", text);
        exit(EXIT_USAGE);
    }
    return (pid_t)value;
}

static int pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_kill(int pidfd)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
}

/* Keeps none of PROGRAM's stdio open, so its readers see EOF when PROGRAM exits. */
static void detach_stdio(void)
{
    int null = open("/dev/null", O_RDWR);
    if (null < 0)
        return;
    for (int fd = 0; fd < 3; fd++)
        if (dup2(null, fd) < 0)
            _exit(EXIT_USAGE);
    if (null > 2)
        close(null);
}

static void __attribute__((noreturn)) watch(int parent_fd, int program_fd)
{
    detach_stdio();
    struct pollfd fds[2] = {{.fd = parent_fd, .events = POLLIN}, {.fd = program_fd, .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            pidfd_kill(program_fd);
            _exit(EXIT_USAGE);
        }
        if (fds[0].revents != 0)
            pidfd_kill(program_fd);
        if (fds[0].revents != 0 || fds[1].revents != 0)
            _exit(0);
    }
}

/* Forks the watchdog; this process goes on to become PROGRAM. */
static void start_watchdog(int parent_fd)
{
    int program_fd = pidfd_open(getpid());
    if (program_fd < 0) {
        fprintf(stderr, "microvm-launch: pidfd_open: %s\n", strerror(errno));
        exit(EXIT_USAGE);
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "microvm-launch: fork the watchdog: %s\n", strerror(errno));
        exit(EXIT_USAGE);
    }
    if (pid == 0)
        watch(parent_fd, program_fd);
    close(parent_fd);
    close(program_fd);
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[1], "--parent") != 0 || strcmp(argv[3], "--") != 0)
        usage();
    pid_t parent = parse_pid(argv[2]);

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
        fprintf(stderr, "microvm-launch: prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    int parent_fd = pidfd_open(parent);
    if (parent_fd < 0) {
        fprintf(stderr, "microvm-launch: pidfd_open(%d): %s\n", (int)parent, strerror(errno));
        return EXIT_USAGE;
    }
    /* The parent may have died before prctl and pidfd_open: then nobody would kill us. */
    if (getppid() != parent) {
        fprintf(stderr, "microvm-launch: parent %d is gone (parent is now %d)\n",
                (int)parent, (int)getppid());
        return EXIT_USAGE;
    }
    start_watchdog(parent_fd);
    /* Sockets and files the program creates (QMP, agent, guest RAM) are private to the user. */
    umask(077);
    execvp(argv[4], &argv[4]);
    fprintf(stderr, "microvm-launch: cannot run %s: %s\n", argv[4], strerror(errno));
    return EXIT_NOT_RUN;
}
