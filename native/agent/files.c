/* WRITE_FILE, READ_FILE and staged files. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

/* Creates every missing parent directory of path with mode 0755. */
int mkdir_parents(const char *path, char *err, size_t errlen)
{
    char dir[MAX_PATH_LEN];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
        snprintf(err, errlen, "path too long: %s", path);
        errno = ENAMETOOLONG;
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; ; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create directory '%s': %s", dir, strerror(errno));
            return -1;
        }
        *p = saved;
        if (saved == '\0')
            return 0;
    }
}

static uint32_t io_error(const char *what, const char *path, uint32_t *err_no, char *err,
                         size_t errlen)
{
    int e = errno;
    *err_no = (uint32_t)e;
    snprintf(err, errlen, "cannot %s '%s': %s", what, path, strerror(e));
    return e == ENOENT ? ST_E_NOT_FOUND : ST_E_IO;
}

uint32_t write_file(const char *path, uint32_t mode, const uint8_t *data, size_t len,
                    uint32_t *err_no, char *err, size_t errlen)
{
    if (len > MAX_FILE) {
        snprintf(err, errlen, "'%s' would be %zu bytes, over the %d-byte limit", path, len,
                 MAX_FILE);
        return ST_E_TOO_LARGE;
    }
    if (mkdir_parents(path, err, errlen) != 0) {
        *err_no = (uint32_t)errno;
        return ST_E_IO;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 07777);
    if (fd < 0)
        return io_error("create", path, err_no, err, errlen);
    uint32_t status = ST_OK;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            status = io_error("write", path, err_no, err, errlen);
            goto out;
        }
        off += (size_t)n;
    }
    /* The umask narrowed the mode given to open. */
    if (fchmod(fd, mode & 07777) != 0)
        status = io_error("chmod", path, err_no, err, errlen);
out:
    if (close(fd) != 0 && status == ST_OK)
        status = io_error("close", path, err_no, err, errlen);
    return status;
}

uint32_t read_file(const char *path, uint8_t **data, size_t *len, uint32_t *err_no,
                   char *err, size_t errlen)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_error("open", path, err_no, err, errlen);
    uint32_t status = ST_OK;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        status = io_error("stat", path, err_no, err, errlen);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        status = io_error("read", path, err_no, err, errlen);
        goto out;
    }
    if (st.st_size > MAX_FILE) {
        snprintf(err, errlen, "'%s' is %lld bytes, over the %d-byte limit", path,
                 (long long)st.st_size, MAX_FILE);
        status = ST_E_TOO_LARGE;
        goto out;
    }
    /* Files in /proc report size 0, so read until EOF with the cap as the bound. */
    uint8_t *buf = malloc(MAX_FILE + 1);
    if (buf == NULL) {
        status = io_error("allocate a buffer for", path, err_no, err, errlen);
        goto out;
    }
    size_t got = 0;
    while (got <= MAX_FILE) {
        ssize_t n = read(fd, buf + got, MAX_FILE + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            status = io_error("read", path, err_no, err, errlen);
            free(buf);
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got > MAX_FILE) {
        snprintf(err, errlen, "'%s' is over the %d-byte limit", path, MAX_FILE);
        free(buf);
        status = ST_E_TOO_LARGE;
        goto out;
    }
    *data = buf;
    *len = got;
out:
    close(fd);
    return status;
}
