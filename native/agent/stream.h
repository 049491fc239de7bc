/* The per-stream process state shared by exec.c (lifecycle) and stdio.c (I/O). */
#ifndef MICROVM_STREAM_H
#define MICROVM_STREAM_H

#include "agent.h"

struct stream {
    bool used;
    bool detached; /* a workload whose connection is gone: output is read and dropped */
    uint32_t id;
    struct exec_spec *spec;
    int cmd;   /* index of the running (or last) command in spec->cmds */
    pid_t pid; /* 0 when no command runs */
    uint64_t cgroup; /* cgroup.c id of the stream's cgroup, 0 for none */
    bool tty;
    int master;       /* tty mode: the pty master, both stdin and output */
    int in_fd;        /* pipe mode: write end of the child's stdin */
    int out_fd[2];    /* pipe mode: read ends of stdout, stderr */
    int child_fd[3];  /* the child's ends, kept open while a chain has commands left */
    uint8_t *in_buf;  /* ring of at most STDIN_WINDOW bytes not yet written */
    size_t in_head, in_len;
    bool in_eof;      /* CLOSE_STDIN received */
    bool in_broken;   /* the child's stdin is gone: further input is dropped */
    uint64_t out_credit;
    bool exited;      /* the last command ended; sending what remains in its pipes */
    size_t pending[2];
    bool tty_done;
    int64_t deadline; /* TIMEOUT_MS, 0 for none */
    int64_t drain_deadline;
    bool timed_out;
    int32_t exit_code;
    uint32_t signo;
    uint64_t peak_rss_kib;
};

extern struct stream streams[MAX_SLOTS];

struct stream *stream_find(uint32_t id);
void stream_try_finish(struct stream *s);
void stdio_close_stdin_now(struct stream *s);

#endif
