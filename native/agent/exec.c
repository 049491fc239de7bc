/* EXEC: staging files, starting processes and chains, reaping, timeouts, RESPONSE. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process.h"

struct process procs[MAX_SLOTS];
static struct process *workload;

/* The process of an EXEC stream the host can address, or NULL. */
static struct process *process_at(int slot)
{
    return slot >= 0 && stream_kind(slot) == STREAM_EXEC ? &procs[slot] : NULL;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void close_child_ends(struct process *p)
{
    for (int i = 0; i < 3; i++)
        close_fd(&p->child_fd[i]);
}

static void process_free(struct process *p)
{
    if (p == workload)
        workload = NULL;
    close_child_ends(p);
    close_fd(&p->master);
    close_fd(&p->in_fd);
    close_fd(&p->out_fd[0]);
    close_fd(&p->out_fd[1]);
    if (p->cgroup != 0)
        cgroup_release(p->cgroup);
    free(p->in_buf);
    if (p->spec != NULL) {
        exec_spec_free(p->spec);
        free(p->spec);
    }
    stream_close(process_slot(p));
    memset(p, 0, sizeof *p);
}

/* Makes fd the child's descriptor `target`, inheritable across exec. */
static int move_fd(int fd, int target)
{
    if (fd == target)
        return fcntl(fd, F_SETFD, 0);
    return dup2(fd, target) < 0 ? -1 : 0;
}

static void child_fail(const char *what, const char *arg, int code)
{
    dprintf(STDERR_FILENO, "microvm-agent: cannot %s '%s': %s\n", what, arg, strerror(errno));
    _exit(code);
}

/* UID/GID from the request (the image's User), with the supplementary groups it lists (none
 * by default), groups first. */
static int drop_to_user(const struct exec_spec *spec)
{
    if (!spec->has_uid && !spec->has_gid)
        return 0;
    gid_t gid = spec->has_gid ? spec->gid : spec->uid;
    if (setgroups((size_t)spec->ngroups, spec->ngroups > 0 ? spec->groups : NULL) != 0 || setgid(gid) != 0)
        return -1;
    return spec->has_uid ? setuid(spec->uid) : 0;
}

static void __attribute__((noreturn)) child_run(struct process *p, struct command *cmd)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    if (setsid() < 0)
        child_fail("start a session for", cmd->argv[0], 126);
    if (p->tty) {
        int slave = p->child_fd[0];
        if (pty_make_controlling(slave) != 0 || move_fd(slave, 0) != 0 ||
            move_fd(slave, 1) != 0 || move_fd(slave, 2) != 0)
            child_fail("set up the terminal for", cmd->argv[0], 126);
    } else {
        for (int i = 0; i < 3; i++)
            if (move_fd(p->child_fd[i], i) != 0)
                child_fail("set up stdio for", cmd->argv[0], 126);
    }
    if (p->cgroup != 0 && cgroup_join(p->cgroup) != 0)
        child_fail("enter the cgroup for", cmd->argv[0], 126);
    if (drop_to_user(p->spec) != 0)
        child_fail("switch to the user of", cmd->argv[0], 126);
    const char *cwd = p->spec->cwd != NULL ? p->spec->cwd : "/";
    if (chdir(cwd) != 0)
        child_fail("change directory to", cwd, 126);
    environ = p->spec->envp;
    execvp(cmd->argv[0], cmd->argv);
    child_fail("run", cmd->argv[0], errno == ENOENT ? 127 : 126);
    _exit(126);
}

static int spawn_command(struct process *p)
{
    pid_t pid = fork();
    if (pid < 0) {
        log_msg("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0)
        child_run(p, &p->spec->cmds[p->cmd]);
    p->pid = pid;
    /* Keep the child's ends only while more chained commands need them. */
    if (p->cmd + 1 >= p->spec->ncmds)
        close_child_ends(p);
    return 0;
}

static int setup_stdio(struct process *p)
{
    if (p->tty) {
        if (pty_open(p->spec->rows, p->spec->cols, &p->master, &p->child_fd[0]) != 0)
            return -1;
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        int ends[2];
        if (pipe2(ends, O_CLOEXEC) != 0) {
            log_msg("pipe2: %s", strerror(errno));
            return -1;
        }
        int agent_end = i == 0 ? ends[1] : ends[0];
        p->child_fd[i] = i == 0 ? ends[0] : ends[1];
        if (i == 0)
            p->in_fd = agent_end;
        else
            p->out_fd[i - 1] = agent_end;
        if (fcntl(agent_end, F_SETFL, O_NONBLOCK) != 0) {
            log_msg("fcntl O_NONBLOCK: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Writes the staged files; relative paths are relative to CWD. */
static uint32_t stage_files(const struct exec_spec *spec, uint32_t *err_no, char *err,
                            size_t errlen)
{
    for (int i = 0; i < spec->nstages; i++) {
        const struct stage_file *st = &spec->stages[i];
        char path[MAX_PATH_LEN];
        const char *cwd = spec->cwd != NULL ? spec->cwd : "/";
        int n = st->path[0] == '/' ? snprintf(path, sizeof path, "%s", st->path)
                                   : snprintf(path, sizeof path, "%s/%s", cwd, st->path);
        if (n < 0 || n >= (int)sizeof path) {
            snprintf(err, errlen, "staged path too long: %s", st->path);
            return ST_E_BAD_REQUEST;
        }
        uint32_t status = write_file(path, st->mode, st->data, st->len, err_no, err, errlen);
        if (status != ST_OK)
            return status;
    }
    return ST_OK;
}

void exec_start(uint32_t id, struct exec_spec *spec)
{
    char err[MAX_ERROR_TEXT] = "";
    uint32_t err_no = 0;
    int slot = stream_open(id, STREAM_EXEC);
    if (slot < 0) {
        exec_spec_free(spec);
        free(spec);
        return;
    }
    struct process *p = &procs[slot];
    *p = (struct process){.spec = spec, .tty = spec->tty, .master = -1, .in_fd = -1,
                          .out_fd = {-1, -1}, .child_fd = {-1, -1, -1}};
    uint32_t status = stage_files(spec, &err_no, err, sizeof err);
    if (status != ST_OK)
        goto fail;
    p->cgroup = cgroup_create(spec->pids_max);
    if (setup_stdio(p) != 0 || spawn_command(p) != 0) {
        err_no = (uint32_t)errno;
        snprintf(err, sizeof err, "cannot start '%s': %s", spec->cmds[0].argv[0],
                 strerror(errno));
        status = ST_E_IO;
        goto fail;
    }
    if (spec->timeout_ms != 0)
        p->deadline = now_ms() + spec->timeout_ms;
    if (spec->workload)
        workload = p;
    return;
fail:
    send_status(id, status, err_no, "%s", err);
    process_free(p);
}

static void send_exit_response(struct process *p)
{
    uint8_t payload[128];
    struct tlv_writer w = {.data = payload, .cap = sizeof payload};
    tlv_put_u32(&w, TAG_STATUS, ST_OK);
    tlv_put_u32(&w, TAG_EXIT_CODE, (uint32_t)p->exit_code);
    tlv_put_u32(&w, TAG_SIGNAL, p->signo);
    tlv_put_u32(&w, TAG_TIMED_OUT, p->timed_out ? 1 : 0);
    tlv_put_u64(&w, TAG_PEAK_RSS_KIB, p->peak_rss_kib);
    send_frame(FT_RESPONSE, stream_id(process_slot(p)), w.data, w.len);
}

void process_try_finish(struct process *p)
{
    if (!p->exited)
        return;
    bool detached = stream_detached(process_slot(p));
    bool drained = p->tty ? p->tty_done : p->pending[0] == 0 && p->pending[1] == 0;
    if (!drained && !detached)
        return;
    if (!detached)
        send_exit_response(p);
    process_free(p);
}

/* The last command ended: note what is left in its pipes, then finish when sent. */
static void process_exited(struct process *p)
{
    p->exited = true;
    close_child_ends(p);
    stdio_close_stdin_now(p);
    if (p->tty) {
        p->drain_deadline = now_ms() + TTY_DRAIN_MS;
    } else {
        for (int i = 0; i < 2; i++) {
            int avail = 0;
            if (p->out_fd[i] >= 0 && ioctl(p->out_fd[i], FIONREAD, &avail) != 0)
                log_msg("FIONREAD: %s", strerror(errno));
            p->pending[i] = avail > 0 ? (size_t)avail : 0;
        }
    }
    process_try_finish(p);
}

static void on_child_exit(struct process *p, int status, const struct rusage *ru)
{
    p->pid = 0;
    p->peak_rss_kib = (uint64_t)ru->ru_maxrss;
    if (WIFSIGNALED(status)) {
        p->exit_code = -1;
        p->signo = (uint32_t)WTERMSIG(status);
    } else {
        p->exit_code = WEXITSTATUS(status);
        p->signo = 0;
    }
    bool chain_next = p->exit_code == 0 && !p->timed_out && !stream_detached(process_slot(p)) &&
                      p->cmd + 1 < p->spec->ncmds;
    if (chain_next) {
        p->cmd++;
        if (spawn_command(p) == 0)
            return;
        p->exit_code = 126;
        dprintf(STDERR_FILENO, "microvm-agent: cannot start chained '%s': %s\n",
                p->spec->cmds[p->cmd].argv[0], strerror(errno));
    }
    process_exited(p);
}

void exec_reap(void)
{
    for (;;) {
        int status;
        struct rusage ru;
        pid_t pid = wait4(-1, &status, WNOHANG, &ru);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            break;
        for (int i = 0; i < MAX_SLOTS; i++) {
            if (process_live(&procs[i]) && procs[i].pid == pid) {
                on_child_exit(&procs[i], status, &ru);
                break;
            }
        }
    }
    cgroup_sweep();
}

/*
 * A signal for the process group the child makes with setsid() right after fork; a child that
 * has not got there yet has no group, so it gets the signal itself (it has started nothing else).
 */
static void signal_group(pid_t pid, int signo)
{
    if (kill(-pid, signo) == 0)
        return;
    if (errno == ESRCH && kill(pid, signo) == 0)
        return;
    log_msg("kill(-%d, %d): %s", (int)pid, signo, strerror(errno));
}

/* SIGKILL for everything the stream started: its cgroup, else its process group. */
static void kill_tree(struct process *p)
{
    if (p->cgroup != 0 && cgroup_kill(p->cgroup) == 0)
        return;
    if (p->pid > 0)
        signal_group(p->pid, SIGKILL);
}

/* SIGKILL ends the whole tree; other signals go to the process group, as documented. */
static void signal_stream(struct process *p, int signo)
{
    if (signo == SIGKILL)
        kill_tree(p);
    else if (p->pid > 0)
        signal_group(p->pid, signo);
}

void exec_signal(int slot, int signo)
{
    struct process *p = process_at(slot);
    if (p != NULL && p->pid > 0)
        signal_stream(p, signo);
}

int exec_signal_workload(int signo)
{
    if (workload == NULL || workload->pid <= 0)
        return -1;
    signal_stream(workload, signo);
    return 0;
}

void exec_resize(int slot, uint16_t rows, uint16_t cols)
{
    struct process *p = process_at(slot);
    if (p != NULL && p->tty && p->master >= 0)
        pty_resize(p->master, rows, cols);
}

/*
 * The host went away (or a restore replaced it): the workload keeps running detached, its
 * output read and dropped; everything else is killed.
 */
void exec_disconnect(void)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct process *p = &procs[i];
        if (!process_live(p) || stream_detached(i))
            continue;
        if (p == workload && p->pid > 0 && stream_detach(i)) {
            stdio_close_stdin_now(p);
            continue;
        }
        if (p->pid > 0)
            kill_tree(p);
        process_free(p);
    }
}

void exec_kill_all(void)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct process *p = &procs[i];
        if (!process_live(p))
            continue;
        if (p->pid > 0)
            kill_tree(p);
        process_free(p);
    }
}

int64_t exec_next_deadline(void)
{
    int64_t next = 0;
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct process *p = &procs[i];
        if (!process_live(p))
            continue;
        int64_t d = p->exited ? (p->tty ? p->drain_deadline : 0)
                              : (p->timed_out ? 0 : p->deadline);
        if (d != 0 && (next == 0 || d < next))
            next = d;
    }
    return next;
}

void exec_timers(int64_t now)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct process *p = &procs[i];
        if (!process_live(p))
            continue;
        if (!p->exited && !p->timed_out && p->deadline != 0 && now >= p->deadline &&
            p->pid > 0) {
            p->timed_out = true;
            kill_tree(p);
        }
        if (p->exited && p->tty && now >= p->drain_deadline) {
            p->tty_done = true;
            process_try_finish(p);
        }
    }
}
