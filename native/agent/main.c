/*
 * microvm-agent: the guest's PID 1 and the RPC server of protocol.md.
 *
 *   microvm-agent --unix PATH   serve on a Unix socket (tests on the host, no PID-1 duties)
 *   microvm-agent --vsock PORT  serve on vsock port PORT (tests in a guest, no PID-1 duties)
 *   microvm-agent --vsock-ping PORT
 *                               one PING to the agent at vsock CID 1 (this guest) : PORT
 *   microvm-agent --relay A:P T:Q ...
 *                               TCP relays in the guest (relay.c), started as /proc/1/exe
 *   (as PID 1)                  boot the guest as the kernel command line says, then serve
 *                               the virtio-serial port, or vsock port N with microvm.vsock=N
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
    if (boot.vsock_port != 0)
        cfg = (struct server_config){.kind = TRANSPORT_VSOCK, .vsock_port = boot.vsock_port};
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
    uint32_t vsock_port = argc == 3 ? transport_parse_vsock_port(argv[2]) : 0;
    if (vsock_port != 0 && strcmp(argv[1], "--vsock") == 0 && getpid() != 1) {
        ensure_std_fds();
        struct server_config cfg = {.kind = TRANSPORT_VSOCK, .vsock_port = vsock_port};
        return serve(&cfg);
    }
    if (vsock_port != 0 && strcmp(argv[1], "--vsock-ping") == 0 && getpid() != 1)
        return run_vsock_ping(vsock_port);
    if (argc >= 2 && strcmp(argv[1], "--relay") == 0 && getpid() != 1)
        return run_relays(argc - 2, argv + 2);
    /* As PID 1, arguments are whatever the kernel passed through from its command line. */
    if (getpid() == 1)
        guest_main();
    fprintf(stderr, "usage: microvm-agent --unix PATH | --vsock PORT | --vsock-ping PORT\n"
                    "       (or run as PID 1 in the guest)\n");
    return 2;
}
