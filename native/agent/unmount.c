/*
 * UNMOUNT PATH: takes a mount down before the host suspends the VM (the folder's virtio-fs
 * device cannot be saved, so it is unplugged). Processes that hold something under PATH
 * (their cwd, root, executable, an open file or a mapped file) would keep it busy: they are
 * killed with SIGKILL first, and the answer's DATA lists them ("PID NAME" lines) so the host
 * can say so. The file systems are synced before the unmount.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define MAX_KILLED 64
#define KILLED_TEXT 2048
#define EXIT_WAIT_MS 2000
#define BUSY_RETRIES 20

/* Whether the link target `target` is `path` itself or below it. */
static bool is_under(const char *target, const char *path, size_t path_len)
{
    return strncmp(target, path, path_len) == 0 && (target[path_len] == '\0' || target[path_len] == '/');
}

static bool link_under(const char *link, const char *path, size_t path_len)
{
    char target[MAX_PATH_LEN];
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    return is_under(target, path, path_len);
}

static bool fds_under(int pid, const char *path, size_t path_len)
{
    char dir_path[64], link[64 + 256];
    snprintf(dir_path, sizeof dir_path, "/proc/%d/fd", pid);
    DIR *dir = opendir(dir_path);
    if (dir == NULL)
        return false;
    bool found = false;
    struct dirent *ent;
    while (!found && (ent = readdir(dir)) != NULL) {
        if (ent->d_name[0] == '.')
            continue;
        snprintf(link, sizeof link, "%s/%s", dir_path, ent->d_name);
        found = link_under(link, path, path_len);
    }
    closedir(dir);
    return found;
}

/* A mapped file under path: the sixth field of a /proc/PID/maps line is the file's path. */
static bool maps_under(int pid, const char *path, size_t path_len)
{
    char maps_path[64];
    snprintf(maps_path, sizeof maps_path, "/proc/%d/maps", pid);
    FILE *maps = fopen(maps_path, "re");
    if (maps == NULL)
        return false;
    char line[MAX_PATH_LEN + 128];
    bool found = false;
    while (!found && fgets(line, sizeof line, maps) != NULL) {
        char *file = strchr(line, '/');
        if (file == NULL)
            continue;
        file[strcspn(file, "\n")] = '\0';
        found = is_under(file, path, path_len);
    }
    fclose(maps);
    return found;
}

static bool holds(int pid, const char *path, size_t path_len)
{
    static const char *const links[] = {"cwd", "root", "exe"};
    char link[64];
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        snprintf(link, sizeof link, "/proc/%d/%s", pid, links[i]);
        if (link_under(link, path, path_len))
            return true;
    }
    return fds_under(pid, path, path_len) || maps_under(pid, path, path_len);
}

static void process_name(int pid, char *name, size_t len)
{
    char comm_path[64];
    snprintf(comm_path, sizeof comm_path, "/proc/%d/comm", pid);
    FILE *comm = fopen(comm_path, "re");
    name[0] = '\0';
    if (comm != NULL) {
        if (fgets(name, (int)len, comm) == NULL)
            name[0] = '\0';
        fclose(comm);
    }
    name[strcspn(name, "\n")] = '\0';
}

/* Killed with SIGKILL: gone, or a zombie (which holds no mount any more). */
static bool exited(int pid)
{
    char stat_path[64], stat[512];
    snprintf(stat_path, sizeof stat_path, "/proc/%d/stat", pid);
    FILE *f = fopen(stat_path, "re");
    if (f == NULL)
        return true;
    bool dead = true;
    if (fgets(stat, sizeof stat, f) != NULL) {
        const char *close_paren = strrchr(stat, ')');
        dead = close_paren == NULL || close_paren[1] == '\0' || close_paren[2] == 'Z' || close_paren[2] == 'X';
    }
    fclose(f);
    return dead;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Kills every process holding something under path; their "PID NAME" lines go to `text`. */
static int kill_holders(const char *path, char *text, size_t text_len)
{
    size_t path_len = strlen(path);
    int killed[MAX_KILLED], n = 0;
    size_t used = 0;
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return -1;
    struct dirent *ent;
    while ((ent = readdir(proc)) != NULL && n < MAX_KILLED) {
        if (!isdigit((unsigned char)ent->d_name[0]))
            continue;
        int pid = atoi(ent->d_name);
        if (pid <= 1 || pid == getpid() || !holds(pid, path, path_len))
            continue;
        char name[32];
        process_name(pid, name, sizeof name);
        if (kill(pid, SIGKILL) != 0)
            continue;
        log_msg("unmount %s: killed %d (%s), which held it", path, pid, name);
        killed[n++] = pid;
        int w = snprintf(text + used, text_len - used, "%d %s\n", pid, name);
        if (w > 0 && (size_t)w < text_len - used)
            used += (size_t)w;
    }
    closedir(proc);
    for (int waited = 0; waited < EXIT_WAIT_MS; waited += 5) {
        bool all = true;
        for (int i = 0; i < n && all; i++)
            all = exited(killed[i]);
        if (all)
            break;
        sleep_ms(5);
    }
    return n;
}

/* Moves the mount at path aside to PARKED_DIR/name (MS_MOVE: it stays mounted, nothing is flushed or replayed). */
static int park_mount(const char *path, const char *name)
{
    char parked[sizeof PARKED_DIR + 64 + 1];
    snprintf(parked, sizeof parked, "%s/%s", PARKED_DIR, name);
    if ((mkdir(PARKED_DIR, 0700) != 0 && errno != EEXIST) || (mkdir(parked, 0700) != 0 && errno != EEXIST))
        return -1;
    return mount(path, parked, NULL, MS_MOVE, NULL);
}

void op_unmount(uint32_t stream, const uint8_t *payload, size_t len)
{
    char path[MAX_PATH_LEN] = "", park[64] = "", err[MAX_ERROR_TEXT] = "";
    struct tlv_reader r = {.pos = payload, .left = len};
    struct tlv_field f;
    int rc;
    while ((rc = tlv_next(&r, &f, err, sizeof err)) == 1) {
        if (f.tag == TAG_PATH && f.len > 1 && f.len < sizeof path)
            memcpy(path, f.value, f.len);
        else if (f.tag == TAG_MOUNT_SOURCE && f.len > 0 && f.len < sizeof park)
            memcpy(park, f.value, f.len);
    }
    if (rc < 0 || path[0] != '/' || strchr(park, '/') != NULL || strcmp(park, ".") == 0 || strcmp(park, "..") == 0) {
        send_status(stream, ST_E_BAD_REQUEST, 0, "malformed UNMOUNT: %s", rc < 0 ? err : "PATH must be absolute, a park name a plain name");
        return;
    }
    if (getpid() != 1) {
        send_status(stream, ST_E_IO, EPERM, "UNMOUNT is only served in the guest (PID 1)");
        return;
    }
    char text[KILLED_TEXT] = "";
    if (kill_holders(path, text, sizeof text) < 0) {
        send_status(stream, ST_E_IO, (uint32_t)errno, "cannot list /proc: %s", strerror(errno));
        return;
    }
    sync();
    int result = -1;
    if (park[0] != '\0') {
        result = park_mount(path, park);
    } else {
        for (int i = 0; i < BUSY_RETRIES && (result = umount2(path, 0)) != 0 && errno == EBUSY; i++)
            sleep_ms(50);
    }
    if (result != 0) {
        int e = errno;
        log_msg("unmount %s: %s", path, strerror(e));
        send_status(stream, e == EBUSY ? ST_E_BUSY : ST_E_IO, (uint32_t)e, "umount %s: %s", path, strerror(e));
        return;
    }
    struct tlv_writer w = {.cap = sizeof text + 64};
    w.data = malloc(w.cap);
    if (w.data == NULL) {
        send_status(stream, ST_OK, 0, "%s", "");
        return;
    }
    tlv_put_u32(&w, TAG_STATUS, ST_OK);
    tlv_put(&w, TAG_DATA, text, strlen(text));
    send_frame(FT_RESPONSE, stream, w.data, w.len);
    free(w.data);
}
