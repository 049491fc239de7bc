/*
 * Per-exec cgroups (guest mode only). Every EXEC runs in its own cgroup v2 below
 * CGROUP_PARENT with a pids.max limit, and SIGKILL for it is written to cgroup.kill, which
 * reaches every descendant, including those that left the process group with setsid().
 * The agent stays in the root cgroup, so a fork bomb neither counts against it nor (with the
 * cpu controller) starves it, and CGROUP_PARENT's memory.max keeps a reserve of guest memory
 * for the agent and the kernel. Without cgroup2, the pids controller or cgroup.kill (kernel
 * < 5.14), and always in --unix mode, cgroup_create() returns 0 and exec.c kills process
 * groups instead.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "agent.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP_PARENT CGROUP_ROOT "/microvm.exec"
#define MAX_LINGERING 64 /* cgroups whose last command ended while descendants ran on */
#define MAX_CONTROLLERS_TEXT 256
#define MIB (1024ULL * 1024)
/* Guest memory the execs cannot take: an eighth of it, at least 64 MiB and at most 256 MiB. */
#define RESERVE_MIN (64 * MIB)
#define RESERVE_MAX (256 * MIB)

static bool enabled;
static uint64_t next_id = 1;
static uint64_t lingering[MAX_LINGERING]; /* 0 = free slot */

bool cgroup_enabled(void)
{
    return enabled;
}

static void cgroup_path(char *buf, size_t cap, uint64_t id, const char *file)
{
    if (file == NULL)
        snprintf(buf, cap, "%s/%llu", CGROUP_PARENT, (unsigned long long)id);
    else
        snprintf(buf, cap, "%s/%llu/%s", CGROUP_PARENT, (unsigned long long)id, file);
}

static int write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        log_msg("open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int saved = n < 0 ? errno : EIO;
    if (close(fd) != 0)
        log_msg("close %s: %s", path, strerror(errno));
    if (n != (ssize_t)len) {
        log_msg("write '%s' to %s: %s", text, path, strerror(saved));
        errno = saved;
        return -1;
    }
    return 0;
}

/* True when the whitespace-separated list in `path` holds `word`. */
static bool file_has_word(const char *path, const char *word)
{
    char text[MAX_CONTROLLERS_TEXT];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_msg("open %s: %s", path, strerror(errno));
        return false;
    }
    ssize_t n = read(fd, text, sizeof text - 1);
    if (n < 0)
        log_msg("read %s: %s", path, strerror(errno));
    close(fd);
    if (n <= 0)
        return false;
    text[n] = '\0';
    char *save = NULL;
    for (char *tok = strtok_r(text, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
        if (strcmp(tok, word) == 0)
            return true;
    return false;
}

static int mount_cgroup2(void)
{
    struct statfs fs;
    if (statfs(CGROUP_ROOT, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC)
        return 0;
    if (mkdir(CGROUP_ROOT, 0755) != 0 && errno != EEXIST) {
        log_msg("mkdir %s: %s", CGROUP_ROOT, strerror(errno));
        return -1;
    }
    /* favordynmods (Linux 6.0+): moving a task into a cgroup, which every exec does, then
     * skips an RCU grace period (about 14 ms per exec under TCG) at a small cost to fork. */
    unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount("cgroup2", CGROUP_ROOT, "cgroup2", flags, "favordynmods") == 0)
        return 0;
    log_msg("mount cgroup2 -o favordynmods on %s: %s; mounting without it", CGROUP_ROOT, strerror(errno));
    if (mount("cgroup2", CGROUP_ROOT, "cgroup2", flags, NULL) != 0) {
        log_msg("mount cgroup2 on %s: %s", CGROUP_ROOT, strerror(errno));
        return -1;
    }
    return 0;
}

/* Enables a controller for the children of `dir` when the kernel offers it. */
static bool enable_controller(const char *dir, const char *name)
{
    char path[MAX_CGROUP_PATH];
    char change[32];
    snprintf(path, sizeof path, "%s/cgroup.controllers", dir);
    if (!file_has_word(path, name)) {
        log_msg("%s: no %s controller", dir, name);
        return false;
    }
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", dir);
    snprintf(change, sizeof change, "+%s", name);
    return write_text(path, change) == 0;
}

/*
 * Without a cap, a bomb of a thousand shells fills a 256 MiB guest and the kernel thrashes
 * on page cache (the agent then answers in minutes); capped, the OOM killer acts inside it.
 */
static void reserve_memory(void)
{
    struct sysinfo si;
    if (sysinfo(&si) != 0) {
        log_msg("sysinfo: %s", strerror(errno));
        return;
    }
    unsigned long long total = (unsigned long long)si.totalram * si.mem_unit;
    unsigned long long reserve = total / 8;
    reserve = reserve < RESERVE_MIN ? RESERVE_MIN : reserve > RESERVE_MAX ? RESERVE_MAX : reserve;
    if (total <= 2 * reserve) {
        log_msg("guest memory %llu MiB is too small to reserve %llu MiB", total / MIB, reserve / MIB);
        return;
    }
    char value[32];
    snprintf(value, sizeof value, "%llu", total - reserve);
    if (write_text(CGROUP_PARENT "/memory.max", value) != 0)
        log_msg("continuing without a memory reserve for the agent");
}

/* Mounts cgroup2 if needed and prepares CGROUP_PARENT; on any failure cgroups stay off. */
void cgroup_init(void)
{
    if (mount_cgroup2() != 0)
        goto off;
    if (!enable_controller(CGROUP_ROOT, "pids"))
        goto off;
    /* cpu and memory are a bonus: the exec tree then weighs like one task against the agent,
     * and cannot take the memory the agent needs. */
    bool cpu = enable_controller(CGROUP_ROOT, "cpu");
    bool memory = enable_controller(CGROUP_ROOT, "memory");
    if (mkdir(CGROUP_PARENT, 0755) != 0 && errno != EEXIST) {
        log_msg("mkdir %s: %s", CGROUP_PARENT, strerror(errno));
        goto off;
    }
    if (!enable_controller(CGROUP_PARENT, "pids"))
        goto off;
    if (cpu && !enable_controller(CGROUP_PARENT, "cpu"))
        log_msg("continuing without the cpu controller for exec cgroups");
    if (memory)
        reserve_memory();
    if (access(CGROUP_PARENT "/cgroup.kill", W_OK) != 0) {
        log_msg("%s/cgroup.kill: %s (kernel older than 5.14?)", CGROUP_PARENT, strerror(errno));
        goto off;
    }
    enabled = true;
    return;
off:
    log_msg("exec cgroups are off: timeouts and SIGKILL reach the process group only");
}

uint64_t cgroup_create(uint32_t pids_max)
{
    if (!enabled)
        return 0;
    uint64_t id = next_id++;
    char dir[MAX_CGROUP_PATH];
    char file[MAX_CGROUP_PATH];
    char value[16];
    cgroup_path(dir, sizeof dir, id, NULL);
    if (mkdir(dir, 0755) != 0) {
        log_msg("mkdir %s: %s", dir, strerror(errno));
        return 0;
    }
    cgroup_path(file, sizeof file, id, "pids.max");
    snprintf(value, sizeof value, "%u", pids_max != 0 ? pids_max : DEFAULT_PIDS_MAX);
    if (write_text(file, value) != 0) {
        if (rmdir(dir) != 0)
            log_msg("rmdir %s: %s", dir, strerror(errno));
        return 0;
    }
    return id;
}

/* Runs in the forked child, before it executes anything of the request's. */
int cgroup_join(uint64_t id)
{
    char file[MAX_CGROUP_PATH];
    cgroup_path(file, sizeof file, id, "cgroup.procs");
    return write_text(file, "0");
}

int cgroup_kill(uint64_t id)
{
    char file[MAX_CGROUP_PATH];
    cgroup_path(file, sizeof file, id, "cgroup.kill");
    return write_text(file, "1");
}

/* Removes the cgroup, or keeps it for cgroup_sweep() while descendants still run in it. */
void cgroup_release(uint64_t id)
{
    char dir[MAX_CGROUP_PATH];
    cgroup_path(dir, sizeof dir, id, NULL);
    if (rmdir(dir) == 0)
        return;
    if (errno != EBUSY) {
        log_msg("rmdir %s: %s", dir, strerror(errno));
        return;
    }
    for (int i = 0; i < MAX_LINGERING; i++) {
        if (lingering[i] == 0) {
            lingering[i] = id;
            return;
        }
    }
    log_msg("more than %d cgroups with processes left; %s stays", MAX_LINGERING, dir);
}

/* Called after reaping: the last process of a cgroup is reaped by the agent (PID 1). */
void cgroup_sweep(void)
{
    for (int i = 0; i < MAX_LINGERING; i++) {
        if (lingering[i] == 0)
            continue;
        char dir[MAX_CGROUP_PATH];
        cgroup_path(dir, sizeof dir, lingering[i], NULL);
        if (rmdir(dir) == 0 || errno == ENOENT) {
            lingering[i] = 0;
        } else if (errno != EBUSY) {
            log_msg("rmdir %s: %s", dir, strerror(errno));
            lingering[i] = 0;
        }
    }
}
