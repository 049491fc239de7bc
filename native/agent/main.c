/*
 * microvm-agent: the guest's PID 1 and the RPC server of protocol.md.
 *
 *   microvm-agent --unix PATH   serve on a Unix socket (tests on the host, no PID-1 duties)
 *   microvm-agent --relay A:P T:Q ...
 *                               TCP relays in the guest (relay.c), started as /proc/1/exe
 *   (as PID 1)                  boot the guest as the kernel command line says, then serve
 *                               the virtio-serial port
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

/* Children get fds 0-2 by dup2: make sure our own pipes never land there. */
static void ensure_std_fds(void)
{
    for (int i = 0; i < 3; i++) {
        if (fcntl(i, F_GETFD) >= 0)
            continue;
        int fd = open("/dev/null", O_RDWR);
        if (fd >= 0 && fd != i)
            close(fd);
    }
}

static void __attribute__((noreturn)) guest_main(void)
{
    struct boot_config boot;
    init_early();
    ensure_std_fds();
    init_read_cmdline(&boot);
    if (strcmp(boot.mode, "probe") == 0)
        init_probe_and_poweroff();
    init_load_modules();
    if (strcmp(boot.mode, "echo") == 0)
        run_echo(boot.port);
    if (boot.root[0] != '\0')
        init_switch_root(&boot);
    cgroup_init();
    init_network();
    struct server_config cfg = {.kind = TRANSPORT_PORT, .port_name = boot.port};
    serve(&cfg);
    init_fatal("the server loop ended");
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--unix") == 0) {
        ensure_std_fds();
        struct server_config cfg = {.kind = TRANSPORT_UNIX, .unix_path = argv[2]};
        return serve(&cfg);
    }
    if (argc >= 2 && strcmp(argv[1], "--relay") == 0 && getpid() != 1)
        return run_relays(argc - 2, argv + 2);
    /* As PID 1, arguments are whatever the kernel passed through from its command line. */
    if (getpid() == 1)
        guest_main();
    fprintf(stderr, "usage: microvm-agent --unix PATH (or run as PID 1 in the guest)\n");
    return 2;
}
