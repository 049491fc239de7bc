/* PID-1 duties in the guest: mounts, kernel command line, modules, switch root, power off. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif
#define ROOT_WAIT_MS 5000
#define MAX_MOUNTS 128

static void make_dir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) != 0 && errno != EEXIST)
        log_msg("mkdir %s: %s", path, strerror(errno));
}

static int mount_fs(const char *src, const char *target, const char *type,
                    unsigned long flags, const char *opts)
{
    make_dir(target, 0755);
    if (mount(src, target, type, flags, opts) != 0) {
        log_msg("mount %s on %s (%s): %s", src, target, type, strerror(errno));
        return -1;
    }
    return 0;
}

/* The kernel may start init with fds 0-2 closed when the initramfs has no /dev/console. */
static void open_console(void)
{
    int fd = open("/dev/console", O_RDWR | O_NOCTTY);
    if (fd < 0)
        return;
    for (int i = 0; i < 3; i++)
        if (fd != i && fcntl(i, F_GETFD) < 0 && dup2(fd, i) < 0)
            break;
    if (fd > 2)
        close(fd);
}

void init_early(void)
{
    const unsigned long nosuid = MS_NOSUID | MS_NOEXEC | MS_NODEV;
    mount_fs("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
    open_console();
    mount_fs("proc", "/proc", "proc", nosuid, NULL);
    mount_fs("sysfs", "/sys", "sysfs", nosuid, NULL);
    mount_fs("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
             "ptmxmode=0666,mode=0620,gid=5");
    mount_fs("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    mount_fs("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    mount_fs("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
    static const char *const links[][2] = {
        {"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
        {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlink(links[i][0], links[i][1]) != 0 && errno != EEXIST)
            log_msg("symlink %s: %s", links[i][1], strerror(errno));
    if (sethostname("microvm", strlen("microvm")) != 0)
        log_msg("sethostname: %s", strerror(errno));
}

static void set_value(char *dst, size_t cap, const char *value)
{
    if (snprintf(dst, cap, "%s", value) >= (int)cap)
        log_msg("kernel command line value too long: %s", value);
}

void init_read_cmdline(struct boot_config *boot)
{
    memset(boot, 0, sizeof *boot);
    set_value(boot->rootfstype, sizeof boot->rootfstype, "ext4");
    set_value(boot->port, sizeof boot->port, "agent");
    char line[4096];
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_msg("open /proc/cmdline: %s", strerror(errno));
        return;
    }
    ssize_t n = read(fd, line, sizeof line - 1);
    close(fd);
    if (n < 0) {
        log_msg("read /proc/cmdline: %s", strerror(errno));
        return;
    }
    line[n] = '\0';
    char *save = NULL;
    for (char *tok = strtok_r(line, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
        if (strncmp(tok, "microvm.mode=", 13) == 0)
            set_value(boot->mode, sizeof boot->mode, tok + 13);
        else if (strncmp(tok, "microvm.root=", 13) == 0)
            set_value(boot->root, sizeof boot->root, tok + 13);
        else if (strncmp(tok, "microvm.rootfstype=", 19) == 0)
            set_value(boot->rootfstype, sizeof boot->rootfstype, tok + 19);
        else if (strncmp(tok, "microvm.port=", 13) == 0)
            set_value(boot->port, sizeof boot->port, tok + 13);
        else if (strncmp(tok, "microvm.upper=", 14) == 0)
            set_value(boot->upper, sizeof boot->upper, tok + 14);
        else if (strncmp(tok, "microvm.vsock=", 14) == 0 &&
                 (boot->vsock_port = transport_parse_vsock_port(tok + 14)) == 0)
            log_msg("ignoring %s: not a vsock port (1-4294967294)", tok);
    }
}

static void power_off(void)
{
    sync();
    reboot(RB_POWER_OFF);
    log_msg("reboot(RB_POWER_OFF): %s", strerror(errno));
    for (;;)
        pause();
}

void init_probe_and_poweroff(void)
{
    static const char ok[] = "MICROVM_PROBE_OK\n";
    int fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 || write(fd, ok, sizeof ok - 1) != (ssize_t)(sizeof ok - 1))
        log_msg("write probe marker to /dev/console: %s", strerror(errno));
    reboot(RB_POWER_OFF);
    log_msg("reboot(RB_POWER_OFF): %s", strerror(errno));
    for (;;)
        pause();
}

static int module_filter(const struct dirent *ent)
{
    const char *dot = strstr(ent->d_name, ".ko");
    return dot != NULL && (strcmp(dot, ".ko") == 0 || strcmp(dot, ".ko.xz") == 0 ||
                           strcmp(dot, ".ko.zst") == 0 || strcmp(dot, ".ko.gz") == 0);
}

void init_load_modules(void)
{
    struct dirent **names = NULL;
    int n = scandir("/modules", &names, module_filter, alphasort);
    if (n < 0) {
        if (errno != ENOENT)
            log_msg("scandir /modules: %s", strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "/modules/%s", names[i]->d_name);
        int flags = strcmp(strstr(names[i]->d_name, ".ko"), ".ko") == 0
                        ? 0 : MODULE_INIT_COMPRESSED_FILE;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            log_msg("open %s: %s", path, strerror(errno));
        else if (syscall(SYS_finit_module, fd, "", flags) != 0 && errno != EEXIST)
            log_msg("load module %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(names[i]);
    }
    free(names);
}

static void wait_for_device(const char *dev)
{
    struct stat st;
    for (int waited = 0; stat(dev, &st) != 0; waited += RETRY_MS) {
        if (waited >= ROOT_WAIT_MS) {
            log_msg("root device %s did not appear within %d ms", dev, ROOT_WAIT_MS);
            init_fatal("no root device");
        }
        usleep(RETRY_MS * 1000);
    }
}

/*
 * The root's upper layer: a tmpfs (changes last until power-off), or the ext4 disk whose
 * serial microvm.upper names (a workspace's container: changes outlive the VM). That disk
 * holds the guest's own data: its kernel replays the journal after an unclean stop.
 */
static void mount_upper(const struct boot_config *boot)
{
    if (boot->upper[0] == '\0') {
        if (mount_fs("tmpfs", "/overlay", "tmpfs", 0, "mode=0755") != 0)
            init_fatal("cannot mount the overlay tmpfs");
        return;
    }
    char dev[300];
    if (find_disk_by_serial(boot->upper, dev, sizeof dev) != 0) {
        log_msg("no virtio-blk disk with serial '%s' for the root's changes", boot->upper);
        init_fatal("the container disk did not appear");
    }
    /* noinit_itable: the disk is a sparse file, its unwritten inode tables already read as zeros */
    if (mount_fs(dev, "/overlay", "ext4", 0, "errors=remount-ro,noinit_itable") != 0)
        init_fatal("cannot mount the container disk");
}

/* Root disk read-only, an upper layer over it (mount_upper), then the overlay becomes "/". */
void init_switch_root(const struct boot_config *boot)
{
    wait_for_device(boot->root);
    if (mount_fs(boot->root, "/mnt/lower", boot->rootfstype, MS_RDONLY, NULL) != 0)
        init_fatal("cannot mount the root disk");
    mount_upper(boot);
    make_dir("/overlay/upper", 0755);
    make_dir("/overlay/work", 0755);
    if (mount_fs("overlay", "/newroot", "overlay", 0,
                 "lowerdir=/mnt/lower,upperdir=/overlay/upper,workdir=/overlay/work") != 0)
        init_fatal("cannot mount the overlay root");
    static const char *const moved[] = {"/dev", "/proc", "/sys", "/run"};
    for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++) {
        char target[64];
        snprintf(target, sizeof target, "/newroot%s", moved[i]);
        if (mount_fs(moved[i], target, NULL, MS_MOVE, NULL) != 0)
            init_fatal("cannot move a mount into the new root");
    }
    if (mount_fs("tmpfs", "/newroot/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
        init_fatal("cannot mount /tmp in the new root");
    if (umount2("/tmp", MNT_DETACH) != 0)
        log_msg("umount /tmp: %s", strerror(errno));
    if (chdir("/newroot") != 0 || mount(".", "/", NULL, MS_MOVE, NULL) != 0 ||
        chroot(".") != 0 || chdir("/") != 0) {
        log_msg("switch root: %s", strerror(errno));
        init_fatal("cannot switch to the new root");
    }
}

static void reap_until(int64_t deadline)
{
    while (now_ms() < deadline) {
        pid_t pid = waitpid(-1, NULL, WNOHANG);
        if (pid < 0 && errno == ECHILD)
            return;
        if (pid <= 0)
            usleep(10 * 1000);
    }
}

/* Unmounts in reverse mount order; what stays busy is remounted read-only. */
static void unmount_all(void)
{
    static char targets[MAX_MOUNTS][256];
    int n = 0;
    FILE *f = fopen("/proc/self/mounts", "re");
    if (f == NULL) {
        log_msg("open /proc/self/mounts: %s", strerror(errno));
        return;
    }
    char line[1024];
    while (n < MAX_MOUNTS && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "%*s %255s", targets[n]) == 1)
            n++;
    fclose(f);
    for (int i = n - 1; i >= 0; i--)
        if (umount2(targets[i], 0) != 0)
            mount(NULL, targets[i], NULL, MS_REMOUNT | MS_RDONLY, NULL);
}

void init_shutdown(void)
{
    if (getpid() != 1)
        init_fatal("init_shutdown called outside PID 1");
    kill(-1, SIGTERM);
    reap_until(now_ms() + 1000);
    kill(-1, SIGKILL);
    reap_until(now_ms() + 200);
    sync();
    unmount_all();
    power_off();
    __builtin_unreachable();
}

void init_fatal(const char *what)
{
    log_msg("fatal: %s; powering off", what);
    if (getpid() != 1)
        exit(1);
    power_off();
    __builtin_unreachable();
}
