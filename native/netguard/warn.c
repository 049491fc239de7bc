/*
 * The guard's only output: one line on QEMU's stderr (the engine keeps its tail for errors),
 * at most one every WARN_INTERVAL_SECONDS so that a guest cannot flood the log.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "netguard.h"

#define WARN_INTERVAL_SECONDS 10

static _Atomic long next_warning;

void guard_warn(const char *what, int err)
{
    struct timespec now;
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &now) != 0)
        return;
    long due = atomic_load(&next_warning);
    if (now.tv_sec < due || !atomic_compare_exchange_strong(&next_warning, &due, now.tv_sec + WARN_INTERVAL_SECONDS))
        return;
    char reason[128], line[384];
    int n = snprintf(line, sizeof line, "microvm-netguard: %s: %s\n", what, strerror_r(err, reason, sizeof reason));
    if (n > 0 && write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
        return; /* stderr is gone: there is no one left to tell */
}
