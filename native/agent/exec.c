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

#include "stream.h"

struct stream streams[MAX_SLOTS];
static struct stream *workload;

struct stream *stream_find(uint32_t id)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (streams[i].used && !streams[i].detached && streams[i].id == id)
            return &streams[i];
    return NULL;
}

bool stream_in_use(uint32_t id)
{
    return stream_find(id) != NULL;
}

int streams_attached(void)
{
    int n = 0;
    for (int i = 0; i < MAX_SLOTS; i++)
        n += streams[i].used && !streams[i].detached;
    return n;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void close_child_ends(struct stream *s)
{
    for (int i = 0; i < 3; i++)
        close_fd(&s->child_fd[i]);
}

static void stream_free(struct stream *s)
{
    if (s == workload)
        workload = NULL;
    close_child_ends(s);
    close_fd(&s->master);
    close_fd(&s->in_fd);
    close_fd(&s->out_fd[0]);
    close_fd(&s->out_fd[1]);
    if (s->cgroup != 0)
        cgroup_release(s->cgroup);
    free(s->in_buf);
    if (s->spec != NULL) {
        exec_spec_free(s->spec);
        free(s->spec);
    }
    memset(s, 0, sizeof *s);
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

/* UID/GID from the request (the image's User): no supplementary groups, group first. */
static int drop_to_user(const struct exec_spec *spec)
{
    if (!spec->has_uid && !spec->has_gid)
        return 0;
    gid_t gid = spec->has_gid ? spec->gid : spec->uid;
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0)
        return -1;
    return spec->has_uid ? setuid(spec->uid) : 0;
}

static void __attribute__((noreturn)) child_run(struct stream *s, struct command *cmd)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    if (setsid() < 0)
        child_fail("start a session for", cmd->argv[0], 126);
    if (s->tty) {
        int slave = s->child_fd[0];
        if (pty_make_controlling(slave) != 0 || move_fd(slave, 0) != 0 ||
            move_fd(slave, 1) != 0 || move_fd(slave, 2) != 0)
            child_fail("set up the terminal for", cmd->argv[0], 126);
    } else {
        for (int i = 0; i < 3; i++)
            if (move_fd(s->child_fd[i], i) != 0)
                child_fail("set up stdio for", cmd->argv[0], 126);
    }
    if (s->cgroup != 0 && cgroup_join(s->cgroup) != 0)
        child_fail("enter the cgroup for", cmd->argv[0], 126);
    if (drop_to_user(s->spec) != 0)
        child_fail("switch to the user of", cmd->argv[0], 126);
    const char *cwd = s->spec->cwd != NULL ? s->spec->cwd : "/";
    if (chdir(cwd) != 0)
        child_fail("change directory to", cwd, 126);
    environ = s->spec->envp;
    execvp(cmd->argv[0], cmd->argv);
    child_fail("run", cmd->argv[0], errno == ENOENT ? 127 : 126);
    _exit(126);
}

static int spawn_command(struct stream *s)
{
    pid_t pid = fork();
    if (pid < 0) {
        log_msg("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0)
        child_run(s, &s->spec->cmds[s->cmd]);
    s->pid = pid;
    /* Keep the child's ends only while more chained commands need them. */
    if (s->cmd + 1 >= s->spec->ncmds)
        close_child_ends(s);
    return 0;
}

static int setup_stdio(struct stream *s)
{
    if (s->tty) {
        if (pty_open(s->spec->rows, s->spec->cols, &s->master, &s->child_fd[0]) != 0)
            return -1;
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) {
            log_msg("pipe2: %s", strerror(errno));
            return -1;
        }
        int agent_end = i == 0 ? p[1] : p[0];
        s->child_fd[i] = i == 0 ? p[0] : p[1];
        if (i == 0)
            s->in_fd = agent_end;
        else
            s->out_fd[i - 1] = agent_end;
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

static struct stream *stream_alloc(uint32_t id)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct stream *s = &streams[i];
        if (s->used)
            continue;
        memset(s, 0, sizeof *s);
        s->used = true;
        s->id = id;
        s->master = s->in_fd = -1;
        s->out_fd[0] = s->out_fd[1] = -1;
        s->child_fd[0] = s->child_fd[1] = s->child_fd[2] = -1;
        s->out_credit = OUTPUT_WINDOW;
        return s;
    }
    return NULL;
}

void exec_start(uint32_t id, struct exec_spec *spec)
{
    char err[MAX_ERROR_TEXT] = "";
    uint32_t err_no = 0;
    bool room = streams_attached() + forwards_open() + ports_watchers() < MAX_STREAMS;
    struct stream *s = room ? stream_alloc(id) : NULL;
    if (s == NULL) {
        send_status(id, ST_E_BUSY, 0, "more than %d streams open", MAX_STREAMS);
        exec_spec_free(spec);
        free(spec);
        return;
    }
    s->spec = spec;
    s->tty = spec->tty;
    uint32_t status = stage_files(spec, &err_no, err, sizeof err);
    if (status != ST_OK)
        goto fail;
    s->cgroup = cgroup_create(spec->pids_max);
    if (setup_stdio(s) != 0 || spawn_command(s) != 0) {
        err_no = (uint32_t)errno;
        snprintf(err, sizeof err, "cannot start '%s': %s", spec->cmds[0].argv[0],
                 strerror(errno));
        status = ST_E_IO;
        goto fail;
    }
    if (spec->timeout_ms != 0)
        s->deadline = now_ms() + spec->timeout_ms;
    if (spec->workload)
        workload = s;
    return;
fail:
    send_status(id, status, err_no, "%s", err);
    stream_free(s);
}

static void send_exit_response(struct stream *s)
{
    uint8_t payload[128];
    struct tlv_writer w = {.data = payload, .cap = sizeof payload};
    tlv_put_u32(&w, TAG_STATUS, ST_OK);
    tlv_put_u32(&w, TAG_EXIT_CODE, (uint32_t)s->exit_code);
    tlv_put_u32(&w, TAG_SIGNAL, s->signo);
    tlv_put_u32(&w, TAG_TIMED_OUT, s->timed_out ? 1 : 0);
    tlv_put_u64(&w, TAG_PEAK_RSS_KIB, s->peak_rss_kib);
    send_frame(FT_RESPONSE, s->id, w.data, w.len);
}

void stream_try_finish(struct stream *s)
{
    if (!s->exited)
        return;
    bool drained = s->tty ? s->tty_done : s->pending[0] == 0 && s->pending[1] == 0;
    if (!drained && !s->detached)
        return;
    if (!s->detached)
        send_exit_response(s);
    stream_free(s);
}

/* The last command ended: note what is left in its pipes, then finish when sent. */
static void stream_exited(struct stream *s)
{
    s->exited = true;
    close_child_ends(s);
    stdio_close_stdin_now(s);
    if (s->tty) {
        s->drain_deadline = now_ms() + TTY_DRAIN_MS;
    } else {
        for (int i = 0; i < 2; i++) {
            int avail = 0;
            if (s->out_fd[i] >= 0 && ioctl(s->out_fd[i], FIONREAD, &avail) != 0)
                log_msg("FIONREAD: %s", strerror(errno));
            s->pending[i] = avail > 0 ? (size_t)avail : 0;
        }
    }
    stream_try_finish(s);
}

static void on_child_exit(struct stream *s, int status, const struct rusage *ru)
{
    s->pid = 0;
    s->peak_rss_kib = (uint64_t)ru->ru_maxrss;
    if (WIFSIGNALED(status)) {
        s->exit_code = -1;
        s->signo = (uint32_t)WTERMSIG(status);
    } else {
        s->exit_code = WEXITSTATUS(status);
        s->signo = 0;
    }
    bool chain_next = s->exit_code == 0 && !s->timed_out && !s->detached &&
                      s->cmd + 1 < s->spec->ncmds;
    if (chain_next) {
        s->cmd++;
        if (spawn_command(s) == 0)
            return;
        s->exit_code = 126;
        dprintf(STDERR_FILENO, "microvm-agent: cannot start chained '%s': %s\n",
                s->spec->cmds[s->cmd].argv[0], strerror(errno));
    }
    stream_exited(s);
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
            if (streams[i].used && streams[i].pid == pid) {
                on_child_exit(&streams[i], status, &ru);
                break;
            }
        }
    }
    cgroup_sweep();
}

/* SIGKILL for everything the stream started: its cgroup, else its process group. */
static void kill_tree(struct stream *s)
{
    if (s->cgroup != 0 && cgroup_kill(s->cgroup) == 0)
        return;
    if (s->pid > 0 && kill(-s->pid, SIGKILL) != 0)
        log_msg("kill(-%d, SIGKILL): %s", (int)s->pid, strerror(errno));
}

/* SIGKILL ends the whole tree; other signals go to the process group, as documented. */
static void signal_stream(struct stream *s, int signo)
{
    if (signo == SIGKILL)
        kill_tree(s);
    else if (s->pid > 0 && kill(-s->pid, signo) != 0)
        log_msg("kill(-%d, %d): %s", (int)s->pid, signo, strerror(errno));
}

void exec_signal(uint32_t id, int signo)
{
    struct stream *s = stream_find(id);
    if (s != NULL && s->pid > 0)
        signal_stream(s, signo);
}

int exec_signal_workload(int signo)
{
    if (workload == NULL || workload->pid <= 0)
        return -1;
    signal_stream(workload, signo);
    return 0;
}

void exec_resize(uint32_t id, uint16_t rows, uint16_t cols)
{
    struct stream *s = stream_find(id);
    if (s != NULL && s->tty && s->master >= 0)
        pty_resize(s->master, rows, cols);
}

/* The host went away: the workload keeps running detached, everything else is killed. */
void exec_disconnect(void)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct stream *s = &streams[i];
        if (!s->used || s->detached)
            continue;
        if (s == workload && s->pid > 0) {
            s->detached = true;
            stdio_close_stdin_now(s);
            continue;
        }
        if (s->pid > 0)
            kill_tree(s);
        stream_free(s);
    }
}

void exec_kill_all(void)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct stream *s = &streams[i];
        if (s->used && s->pid > 0)
            kill_tree(s);
        if (s->used)
            stream_free(s);
    }
}

int64_t exec_next_deadline(void)
{
    int64_t next = 0;
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct stream *s = &streams[i];
        if (!s->used)
            continue;
        int64_t d = s->exited ? (s->tty ? s->drain_deadline : 0)
                              : (s->timed_out ? 0 : s->deadline);
        if (d != 0 && (next == 0 || d < next))
            next = d;
    }
    return next;
}

void exec_timers(int64_t now)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct stream *s = &streams[i];
        if (!s->used)
            continue;
        if (!s->exited && !s->timed_out && s->deadline != 0 && now >= s->deadline &&
            s->pid > 0) {
            s->timed_out = true;
            kill_tree(s);
        }
        if (s->exited && s->tty && now >= s->drain_deadline) {
            s->tty_done = true;
            stream_try_finish(s);
        }
    }
}
