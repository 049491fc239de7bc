/*
 * Guest networking at boot: lo always (forwards connect to 127.0.0.1), and eth0 when QEMU
 * gave the guest a NIC (network 'outbound'): the static address of QEMU user-mode
 * networking, its gateway and its DNS forwarder, written into the overlay's resolv.conf.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

#define GUEST_ADDR "10.0.2.15"
#define GUEST_NETMASK "255.255.255.0"
#define GATEWAY_ADDR "10.0.2.2"
#define DNS_ADDR "10.0.2.3"

static void set_sockaddr(struct sockaddr *sa, const char *addr)
{
    struct sockaddr_in *in = (struct sockaddr_in *)sa;
    memset(in, 0, sizeof *in);
    in->sin_family = AF_INET;
    inet_pton(AF_INET, addr, &in->sin_addr);
}

static int if_up(int fd, const char *name)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
        log_msg("%s: SIOCGIFFLAGS: %s", name, strerror(errno));
        return -1;
    }
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) {
        log_msg("%s: bring up: %s", name, strerror(errno));
        return -1;
    }
    return 0;
}

static int if_address(int fd, const char *name, const char *addr, const char *mask)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    set_sockaddr(&ifr.ifr_addr, addr);
    if (ioctl(fd, SIOCSIFADDR, &ifr) != 0) {
        log_msg("%s: set address %s: %s", name, addr, strerror(errno));
        return -1;
    }
    set_sockaddr(&ifr.ifr_netmask, mask);
    if (ioctl(fd, SIOCSIFNETMASK, &ifr) != 0) {
        log_msg("%s: set netmask %s: %s", name, mask, strerror(errno));
        return -1;
    }
    return 0;
}

static int default_route(int fd, const char *gateway)
{
    struct rtentry rt;
    memset(&rt, 0, sizeof rt);
    set_sockaddr(&rt.rt_dst, "0.0.0.0");
    set_sockaddr(&rt.rt_genmask, "0.0.0.0");
    set_sockaddr(&rt.rt_gateway, gateway);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    if (ioctl(fd, SIOCADDRT, &rt) != 0 && errno != EEXIST) {
        log_msg("default route via %s: %s", gateway, strerror(errno));
        return -1;
    }
    return 0;
}

/* Replaces a file of the overlay root (which may be a dangling symlink in the image). */
static void write_etc(const char *path, const char *text)
{
    if (unlink(path) != 0 && errno != ENOENT)
        log_msg("unlink %s: %s", path, strerror(errno));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        log_msg("open %s: %s", path, strerror(errno));
        return;
    }
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len)
        log_msg("write %s: %s", path, strerror(errno));
    close(fd);
}

/* virtio_net probes its device while the module loads, so eth0 exists by now or never. */
static bool nic_present(void)
{
    struct stat st;
    return stat("/sys/class/net/eth0", &st) == 0;
}

void init_network(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_msg("network socket: %s", strerror(errno));
        return;
    }
    if_up(fd, "lo");
    struct stat st;
    if (stat("/etc/hosts", &st) != 0)
        write_etc("/etc/hosts", "127.0.0.1\tlocalhost microvm\n::1\tlocalhost ip6-localhost\n");
    if (nic_present() && if_address(fd, "eth0", GUEST_ADDR, GUEST_NETMASK) == 0 &&
        if_up(fd, "eth0") == 0 && default_route(fd, GATEWAY_ADDR) == 0)
        write_etc("/etc/resolv.conf", "nameserver " DNS_ADDR "\n");
    close(fd);
}
