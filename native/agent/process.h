/* The state of an EXEC stream's processes, shared by exec.c (lifecycle) and stdio.c (I/O). */
#ifndef MICROVM_PROCESS_H
#define MICROVM_PROCESS_H

#include "agent.h"

struct process {
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

/* Indexed by stream slot; meaningful where stream_kind(slot) == STREAM_EXEC. */
extern struct process procs[MAX_SLOTS];

/* The stream slot (streams.c: id, output credit, detached) whose process this is. */
static inline int process_slot(const struct process *p)
{
    return (int)(p - procs);
}

/* Whether p is a live process: its slot still belongs to an EXEC stream. */
static inline bool process_live(const struct process *p)
{
    return stream_kind(process_slot(p)) == STREAM_EXEC;
}

void process_try_finish(struct process *p);
void stdio_close_stdin_now(struct process *p);

#endif
