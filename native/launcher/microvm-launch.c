/*
 * microvm-launch --parent PID -- PROGRAM ARGS...
 *
 * Runs PROGRAM so that it receives SIGKILL when the process that spawned the
 * launcher dies, even when that process is itself killed with SIGKILL. The
 * engine starts QEMU and virtiofsd through it so none of them outlives Node.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[1], "--parent") != 0 || strcmp(argv[3], "--") != 0)
        usage();
    pid_t parent = parse_pid(argv[2]);

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
        fprintf(stderr, "microvm-launch: prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    /* The parent may have died before prctl took effect: then nobody would kill us. */
    if (getppid() != parent) {
        fprintf(stderr, "microvm-launch: parent %d is gone (parent is now %d)\n",
                (int)parent, (int)getppid());
        return EXIT_USAGE;
    }
    /* Sockets and files the program creates (QMP, agent, guest RAM) are private to the user. */
    umask(077);
    execvp(argv[4], &argv[4]);
    fprintf(stderr, "microvm-launch: cannot run %s: %s\n", argv[4], strerror(errno));
    return EXIT_NOT_RUN;
}
