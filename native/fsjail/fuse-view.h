#ifndef MICROVM_FSJAIL_FUSE_VIEW_H
#define MICROVM_FSJAIL_FUSE_VIEW_H

#define FUSE_VIEW_EXIT 125

/*
 * Call as real root, before entering the user namespace. Forks the FUSE daemon (its argv,
 * ending with its mount point) as PATH's owner in a mount namespace of its own, then moves
 * this process to a new mount namespace with the view mounted over PATH. Exits with
 * FUSE_VIEW_EXIT on failure.
 */
void fuse_view_start(char *const *daemon_argv, const char *path);

/*
 * When this binary runs as libfuse's fusermount (in the daemon's namespace): sends the
 * /dev/fuse fd over $_FUSE_COMMFD and returns the exit code; -1 when not called that way.
 */
int fuse_view_stand_in(int argc, char **argv);

#endif
