/*
 * MOUNT: a virtio-fs share (by tag), a virtio-blk ext4 volume (by serial) or a tmpfs (devcontainer.json's
 * `type=tmpfs` mounts, SIZE_MIB optional) at PATH.
 * The host sends mounts outermost first, so a volume can sit on a path inside a share
 * (node_modules inside the workspace). Read-only is enforced by the host; the guest flag
 * only makes writes fail early.
 *
 * A volume's file system is the guest's own data, so the host never parses it: the guest
 * kernel replays its journal when it mounts (after an unclean stop), and grows it online to
 * fill its disk (the host only makes the file larger).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define DEVICE_WAIT_MS 5000
#define TAG_RETRY_MS 2
/* When a share's device is late, and how often after that, the agent rescans the PCI buses. */
#define RESCAN_AFTER_MS 500
#define RESCAN_EVERY_MS 1000
#define EXT4_IOC_RESIZE_FS _IOW('f', 16, uint64_t)
#define MAX_SOURCE 64

struct mount_request {
    uint32_t kind;
    char source[MAX_SOURCE];
    char path[MAX_PATH_LEN];
    bool read_only;
    uint32_t size_mib;
};

static int parse_mount(const uint8_t *payload, size_t len, struct mount_request *m, char *err,
                       size_t errlen)
{
    memset(m, 0, sizeof *m);
    struct tlv_reader r = {.pos = payload, .left = len};
    struct tlv_field f;
    int rc;
    while ((rc = tlv_next(&r, &f, err, errlen)) == 1) {
        if (f.tag == TAG_MOUNT_KIND)
            m->kind = get_u32(f.value);
        else if (f.tag == TAG_READ_ONLY)
            m->read_only = get_u32(f.value) != 0;
        else if (f.tag == TAG_SIZE_MIB)
            m->size_mib = get_u32(f.value);
        else if (f.tag == TAG_MOUNT_SOURCE && f.len > 0 && f.len < sizeof m->source)
            memcpy(m->source, f.value, f.len);
        else if (f.tag == TAG_PATH && f.len > 1 && f.len < sizeof m->path)
            memcpy(m->path, f.value, f.len);
    }
    if (rc < 0)
        return -1;
    if (m->kind != MOUNT_VIRTIOFS && m->kind != MOUNT_VOLUME && m->kind != MOUNT_TMPFS && m->kind != MOUNT_PARKED)
        snprintf(err, errlen, "MOUNT_KIND must be %d (virtiofs), %d (volume), %d (tmpfs) or %d (parked)",
                 MOUNT_VIRTIOFS, MOUNT_VOLUME, MOUNT_TMPFS, MOUNT_PARKED);
    else if (m->source[0] == '\0' || strchr(m->source, '/') != NULL)
        snprintf(err, errlen, "MOUNT_SOURCE is missing, too long or has a '/'");
    else if (m->path[0] != '/')
        snprintf(err, errlen, "PATH must be absolute");
    else
        return 0;
    return -1;
}

/* The /dev/vdX whose virtio-blk serial is `serial`, waiting for it to appear. */
int find_disk_by_serial(const char *serial, char *dev, size_t devlen)
{
    for (int waited = 0; waited <= DEVICE_WAIT_MS; waited += RETRY_MS) {
        DIR *dir = opendir("/sys/block");
        struct dirent *ent;
        while (dir != NULL && (ent = readdir(dir)) != NULL) {
            if (strncmp(ent->d_name, "vd", 2) != 0)
                continue;
            char path[300], value[MAX_SOURCE + 2] = "";
            snprintf(path, sizeof path, "/sys/block/%s/serial", ent->d_name);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            ssize_t n = read(fd, value, sizeof value - 1);
            close(fd);
            while (n > 0 && (value[n - 1] == '\n' || value[n - 1] == '\0'))
                n--;
            if (n > 0 && (size_t)n == strlen(serial) && memcmp(value, serial, (size_t)n) == 0) {
                snprintf(dev, devlen, "/dev/%s", ent->d_name);
                closedir(dir);
                return 0;
            }
        }
        if (dir != NULL)
            closedir(dir);
        usleep(RETRY_MS * 1000);
    }
    errno = ENODEV;
    return -1;
}

/* Moves a mount that UNMOUNT parked (unmount.c) back to PATH. */
static void mount_parked(uint32_t stream, const char *name, const char *path)
{
    char parked[MAX_SOURCE + sizeof PARKED_DIR + 1];
    snprintf(parked, sizeof parked, "%s/%s", PARKED_DIR, name);
    if (mount(parked, path, NULL, MS_MOVE, NULL) != 0) {
        int e = errno;
        log_msg("move %s back to %s: %s", parked, path, strerror(e));
        send_status(stream, ST_E_IO, (uint32_t)e, "move the parked mount %s back to %s: %s", name, path, strerror(e));
        return;
    }
    rmdir(parked);
    send_status(stream, ST_OK, 0, "%s", "");
}

static int make_mount_point(const char *path, char *err, size_t errlen)
{
    if (mkdir_parents(path, err, errlen) != 0)
        return -1;
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create '%.300s': %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Online resize to the whole disk; the kernel does nothing when the size already matches. */
static int grow_to_disk(const char *dev, const char *path, char *err, size_t errlen)
{
    uint64_t bytes = 0;
    struct statvfs st;
    int disk = open(dev, O_RDONLY | O_CLOEXEC);
    if (disk < 0 || ioctl(disk, BLKGETSIZE64, &bytes) != 0 || statvfs(path, &st) != 0 || st.f_bsize == 0) {
        snprintf(err, errlen, "cannot read the size of %s: %s", dev, strerror(errno));
        if (disk >= 0)
            close(disk);
        return -1;
    }
    close(disk);
    uint64_t blocks = bytes / st.f_bsize;
    int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0 || ioctl(dir, EXT4_IOC_RESIZE_FS, &blocks) != 0) {
        snprintf(err, errlen, "cannot grow the file system on %s to %llu blocks: %s", dev, (unsigned long long)blocks, strerror(errno));
        if (dir >= 0)
            close(dir);
        return -1;
    }
    close(dir);
    return 0;
}

/* Asks the kernel to scan the PCI buses again: it probes a device whose hot-plug notice it
 * missed (a notice raised while a restored guest was still settling is lost now and then under
 * a loaded emulator). Scanning finds only devices the machine already has; a failure is
 * harmless, the wait goes on. */
static void rescan_pci(void)
{
    int fd = open("/sys/bus/pci/rescan", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (write(fd, "1", 1) != 1)
        log_msg("PCI rescan: %s", strerror(errno));
    close(fd);
}

/* A hot-plugged share's tag is known once the guest has probed its device: until then
 * virtio-fs answers EINVAL (tag not found). Waits up to DEVICE_WAIT_MS of real time (counted on
 * the monotonic clock: under a loaded emulator a 2 ms sleep takes far longer), and rescans the
 * PCI buses when the device is late, so a missed hot-plug notice costs a rescan, not the mount. */
static int mount_when_probed(const char *tag, const char *path, unsigned long flags)
{
    int64_t started = now_ms(), next_rescan = started + RESCAN_AFTER_MS;
    int mounted = -1;
    errno = EINVAL;
    while (mounted != 0 && errno == EINVAL && now_ms() - started < DEVICE_WAIT_MS) {
        if (now_ms() >= next_rescan) {
            log_msg("share %s: its device is not probed after %lld ms; rescanning the PCI buses", tag,
                    (long long)(now_ms() - started));
            rescan_pci();
            next_rescan = now_ms() + RESCAN_EVERY_MS;
        }
        struct timespec pause = {.tv_sec = 0, .tv_nsec = TAG_RETRY_MS * 1000000L};
        nanosleep(&pause, NULL);
        mounted = mount(tag, path, "virtiofs", flags, NULL);
    }
    return mounted;
}

void op_mount(uint32_t stream, const uint8_t *payload, size_t len)
{
    struct mount_request m;
    char err[MAX_ERROR_TEXT] = "";
    if (parse_mount(payload, len, &m, err, sizeof err) != 0) {
        send_status(stream, ST_E_BAD_REQUEST, 0, "malformed MOUNT: %s", err);
        return;
    }
    if (getpid() != 1) {
        send_status(stream, ST_E_IO, EPERM, "MOUNT is only served in the guest (PID 1)");
        return;
    }
    if (m.kind == MOUNT_PARKED) {
        mount_parked(stream, m.source, m.path);
        return;
    }
    char dev[300];
    const char *source = m.source, *type = "virtiofs";
    if (m.kind == MOUNT_VOLUME) {
        if (find_disk_by_serial(m.source, dev, sizeof dev) != 0) {
            send_status(stream, ST_E_NOT_FOUND, ENODEV, "no virtio-blk disk with serial '%s'", m.source);
            return;
        }
        source = dev;
        type = "ext4";
    }
    if (make_mount_point(m.path, err, sizeof err) != 0) {
        send_status(stream, ST_E_IO, (uint32_t)errno, "%s", err);
        return;
    }
    unsigned long flags = MS_NODEV | (m.read_only ? MS_RDONLY : 0);
    /* noinit_itable: a volume is a sparse file, its unwritten inode tables already read as zeros */
    const char *options = m.kind == MOUNT_VOLUME ? "errors=remount-ro,noinit_itable" : NULL;
    char tmpfs_options[64];
    if (m.kind == MOUNT_TMPFS) {
        /* Docker's tmpfs defaults: world-writable with the sticky bit, no set-uid; the
         * kernel's default size (half the RAM) unless the mount names one. */
        source = "tmpfs";
        type = "tmpfs";
        flags |= MS_NOSUID;
        if (m.size_mib > 0)
            snprintf(tmpfs_options, sizeof tmpfs_options, "mode=1777,size=%um", m.size_mib);
        else
            snprintf(tmpfs_options, sizeof tmpfs_options, "mode=1777");
        options = tmpfs_options;
    }
    int mounted = mount(source, m.path, type, flags, options);
    if (mounted != 0 && errno == EINVAL && m.kind == MOUNT_VIRTIOFS)
        mounted = mount_when_probed(source, m.path, flags);
    if (mounted != 0) {
        int e = errno;
        log_msg("mount %s on %s (%s): %s", source, m.path, type, strerror(e));
        send_status(stream, ST_E_IO, (uint32_t)e, "mount %s on %s (%s): %s", source, m.path, type, strerror(e));
        return;
    }
    if (m.kind == MOUNT_VOLUME && !m.read_only && grow_to_disk(source, m.path, err, sizeof err) != 0) {
        log_msg("%s", err);
        send_status(stream, ST_E_IO, (uint32_t)errno, "%s", err);
        return;
    }
    send_status(stream, ST_OK, 0, "%s", "");
}
