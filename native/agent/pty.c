/* Pseudo-terminals for EXEC with TTY=1. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "agent.h"

static struct winsize make_winsize(uint16_t rows, uint16_t cols)
{
    struct winsize ws = {.ws_row = rows ? rows : 24, .ws_col = cols ? cols : 80};
    return ws;
}

int pty_open(uint16_t rows, uint16_t cols, int *master, int *slave)
{
    struct winsize ws = make_winsize(rows, cols);
    if (openpty(master, slave, NULL, NULL, &ws) != 0) {
        log_msg("openpty: %s", strerror(errno));
        return -1;
    }
    if (fcntl(*master, F_SETFD, FD_CLOEXEC) != 0 || fcntl(*slave, F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(*master, F_SETFL, O_NONBLOCK) != 0) {
        log_msg("fcntl on pty: %s", strerror(errno));
        close(*master);
        close(*slave);
        return -1;
    }
    return 0;
}

int pty_resize(int master, uint16_t rows, uint16_t cols)
{
    struct winsize ws = make_winsize(rows, cols);
    if (ioctl(master, TIOCSWINSZ, &ws) != 0) {
        log_msg("TIOCSWINSZ: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* In the child, after setsid(): the slave becomes the controlling terminal. */
int pty_make_controlling(int slave)
{
    return ioctl(slave, TIOCSCTTY, 0);
}
