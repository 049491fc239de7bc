/* Decoding an EXEC request's TLV into an exec_spec, with every bound checked. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

struct parse_state {
    struct exec_spec *spec;
    int nargs; /* ARGV + ENV entries, across the chain */
    size_t staged_bytes;
    char *err;
    size_t errlen;
};

static uint32_t fail(struct parse_state *ps, uint32_t status, const char *fmt, const char *arg)
{
    snprintf(ps->err, ps->errlen, fmt, arg);
    return status;
}

/* Appends s (owned) to a NULL-terminated array; returns -1 when out of memory. */
static int push_string(char ***array, int *count, char *s)
{
    char **grown = realloc(*array, sizeof(char *) * (size_t)(*count + 2));
    if (grown == NULL)
        return -1;
    grown[*count] = s;
    grown[*count + 1] = NULL;
    *array = grown;
    (*count)++;
    return 0;
}

static uint32_t add_string(struct parse_state *ps, const struct tlv_field *f, char ***array,
                           int *count)
{
    if (++ps->nargs > MAX_ARGS)
        return fail(ps, ST_E_BAD_REQUEST, "more than %s ARGV/ENV entries", "4096");
    char *s = tlv_strdup(f);
    if (s == NULL || push_string(array, count, s) != 0) {
        free(s);
        return fail(ps, ST_E_IO, "%s", "out of memory");
    }
    return ST_OK;
}

/* Adds NAME=value to the environment unless the request set NAME. */
static int add_default_env(struct exec_spec *spec, const char *name, const char *value)
{
    size_t n = strlen(name);
    for (int i = 0; i < spec->nenv; i++)
        if (strncmp(spec->envp[i], name, n) == 0 && spec->envp[i][n] == '=')
            return 0;
    char *entry;
    if (asprintf(&entry, "%s=%s", name, value) < 0)
        return -1;
    if (push_string(&spec->envp, &spec->nenv, entry) != 0) {
        free(entry);
        return -1;
    }
    return 0;
}

static uint32_t parse_chain(struct parse_state *ps, const struct tlv_field *chain)
{
    struct exec_spec *spec = ps->spec;
    if (spec->ncmds > MAX_CHAIN)
        return fail(ps, ST_E_BAD_REQUEST, "more than %s CHAIN entries", "16");
    struct command *cmd = &spec->cmds[spec->ncmds++];
    struct tlv_reader r = {.pos = chain->value, .left = chain->len};
    struct tlv_field f;
    char inner[256];
    int rc;
    while ((rc = tlv_next(&r, &f, inner, sizeof inner)) == 1) {
        if (f.tag != TAG_ARGV)
            continue;
        uint32_t st = add_string(ps, &f, &cmd->argv, &cmd->argc);
        if (st != ST_OK)
            return st;
    }
    if (rc < 0)
        return fail(ps, ST_E_BAD_REQUEST, "malformed CHAIN entry: %s", inner);
    if (cmd->argc == 0)
        return fail(ps, ST_E_BAD_REQUEST, "%s", "CHAIN entry without ARGV");
    return ST_OK;
}

static uint32_t parse_stage(struct parse_state *ps, const struct tlv_field *f)
{
    struct exec_spec *spec = ps->spec;
    if (f->tag == TAG_STAGE_PATH) {
        if (spec->nstages >= MAX_STAGE_FILES)
            return fail(ps, ST_E_BAD_REQUEST, "more than %s staged files", "256");
        if (f->len == 0 || f->len >= MAX_PATH_LEN)
            return fail(ps, ST_E_BAD_REQUEST, "%s", "STAGE_PATH is empty or too long");
        struct stage_file *st = &spec->stages[spec->nstages];
        st->path = tlv_strdup(f);
        if (st->path == NULL)
            return fail(ps, ST_E_IO, "%s", "out of memory");
        st->mode = 0644;
        spec->nstages++;
        return ST_OK;
    }
    if (spec->nstages == 0)
        return fail(ps, ST_E_BAD_REQUEST, "%s before any STAGE_PATH", tag_name(f->tag));
    struct stage_file *st = &spec->stages[spec->nstages - 1];
    if (f->tag == TAG_STAGE_MODE) {
        st->mode = get_u32(f->value) & 07777;
        return ST_OK;
    }
    ps->staged_bytes += f->len;
    if (ps->staged_bytes > MAX_FILE)
        return fail(ps, ST_E_TOO_LARGE, "staged files total more than %s bytes", "4194304");
    st->data = f->value;
    st->len = f->len;
    st->has_data = true;
    return ST_OK;
}

static uint32_t parse_field(struct parse_state *ps, const struct tlv_field *f)
{
    struct exec_spec *spec = ps->spec;
    switch (f->tag) {
    case TAG_ARGV:
        return add_string(ps, f, &spec->cmds[0].argv, &spec->cmds[0].argc);
    case TAG_ENV:
        if (memchr(f->value, '=', f->len) == NULL)
            return fail(ps, ST_E_BAD_REQUEST, "%s", "ENV entry without '='");
        return add_string(ps, f, &spec->envp, &spec->nenv);
    case TAG_CWD:
        if (f->len == 0 || f->len >= MAX_PATH_LEN)
            return fail(ps, ST_E_BAD_REQUEST, "%s", "CWD is empty or too long");
        free(spec->cwd);
        spec->cwd = tlv_strdup(f);
        return spec->cwd != NULL ? ST_OK : fail(ps, ST_E_IO, "%s", "out of memory");
    case TAG_TIMEOUT_MS:
        spec->timeout_ms = get_u32(f->value);
        return ST_OK;
    case TAG_TTY:
        spec->tty = get_u32(f->value) != 0;
        return ST_OK;
    case TAG_ROWS:
    case TAG_COLS: {
        uint32_t v = get_u32(f->value);
        if (v > UINT16_MAX)
            return fail(ps, ST_E_BAD_REQUEST, "%s is over 65535", tag_name(f->tag));
        *(f->tag == TAG_ROWS ? &spec->rows : &spec->cols) = (uint16_t)v;
        return ST_OK;
    }
    case TAG_STAGE_PATH:
    case TAG_STAGE_MODE:
    case TAG_STAGE_DATA:
        return parse_stage(ps, f);
    case TAG_CHAIN:
        return parse_chain(ps, f);
    case TAG_WORKLOAD:
        spec->workload = get_u32(f->value) != 0;
        return ST_OK;
    case TAG_UID:
        spec->has_uid = true;
        spec->uid = get_u32(f->value);
        return ST_OK;
    case TAG_GID:
        spec->has_gid = true;
        spec->gid = get_u32(f->value);
        return ST_OK;
    case TAG_GROUP:
        if (spec->ngroups == MAX_GROUPS)
            return fail(ps, ST_E_BAD_REQUEST, "more than %s supplementary groups", "64");
        spec->groups[spec->ngroups++] = get_u32(f->value);
        return ST_OK;
    case TAG_PIDS_MAX:
        spec->pids_max = get_u32(f->value);
        if (spec->pids_max > MAX_PIDS_MAX)
            return fail(ps, ST_E_BAD_REQUEST, "PIDS_MAX is over %s", "4194304");
        return ST_OK;
    default:
        return ST_OK;
    }
}

uint32_t exec_spec_parse(const uint8_t *payload, size_t len, struct exec_spec *spec,
                         char *err, size_t errlen)
{
    memset(spec, 0, sizeof *spec);
    spec->ncmds = 1;
    struct parse_state ps = {.spec = spec, .err = err, .errlen = errlen};
    struct tlv_reader r = {.pos = payload, .left = len};
    struct tlv_field f;
    int rc;
    while ((rc = tlv_next(&r, &f, err, errlen)) == 1) {
        uint32_t st = parse_field(&ps, &f);
        if (st != ST_OK)
            return st;
    }
    if (rc < 0)
        return ST_E_BAD_REQUEST;
    if (spec->cmds[0].argc == 0)
        return fail(&ps, ST_E_BAD_REQUEST, "%s", "EXEC without ARGV");
    for (int i = 0; i < spec->nstages; i++)
        if (!spec->stages[i].has_data)
            return fail(&ps, ST_E_BAD_REQUEST, "STAGE_PATH '%s' without STAGE_DATA",
                        spec->stages[i].path);
    if (add_default_env(spec, "PATH", DEFAULT_PATH) != 0 ||
        (spec->tty && add_default_env(spec, "TERM", DEFAULT_TERM) != 0))
        return fail(&ps, ST_E_IO, "%s", "out of memory");
    return ST_OK;
}

void exec_spec_free(struct exec_spec *spec)
{
    for (int c = 0; c < spec->ncmds && c <= MAX_CHAIN; c++) {
        for (int i = 0; i < spec->cmds[c].argc; i++)
            free(spec->cmds[c].argv[i]);
        free(spec->cmds[c].argv);
    }
    for (int i = 0; i < spec->nenv; i++)
        free(spec->envp[i]);
    free(spec->envp);
    free(spec->cwd);
    for (int i = 0; i < spec->nstages; i++)
        free(spec->stages[i].path);
    memset(spec, 0, sizeof *spec);
}
