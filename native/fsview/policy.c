/*
 * The filter's rules, as pure functions of a parent's kind and a name.
 *
 * A node's kind follows from its parent's kind and its own name only, and a rename or hard
 * link is allowed only when the node's kind would stay the same at its new place (ops.c).
 * So whatever the guest does, the kind of every node below a moved directory stays right,
 * and a kind computed at lookup never goes stale.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "fsview.h"

struct config cfg;

/* Inside a git dir, what git writes in everyday work (commit, fetch, checkout, rebase, lfs). */
static const char *const GIT_DATA_DIRS[] = {
    "refs", "logs", "lfs", "rr-cache", "rebase-merge", "rebase-apply", "sequencer", "reftable",
    "NOTES_MERGE_WORKTREE", NULL,
};
static const char *const GIT_DATA_FILES[] = {
    "HEAD", "index", "packed-refs", "shallow", "description", "gc.pid", "gc.log",
    "COMMIT_EDITMSG", "TAG_EDITMSG", "FETCH_HEAD", "ORIG_HEAD", "AUTO_MERGE", "MERGE_MODE",
    "MERGE_RR", "MERGE_AUTOSTASH", NULL,
};
/* Families of the same: MERGE_HEAD, SQUASH_MSG, BISECT_LOG, index.stash.123, sharedindex.X */
static const char *const GIT_DATA_PATTERNS[] = {
    "*_HEAD", "*_MSG", "BISECT_*", "NOTES_MERGE_*", "index.*", "sharedindex.*", "next-index-*",
    NULL,
};
/* objects/info/alternates would make host git read objects from anywhere. */
static const char *const GIT_ALTERNATES[] = {"alternates", "http-alternates", NULL};

static bool in_list(const char *const *list, const char *name)
{
    for (int i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

static bool matches_any(const char *const *patterns, const char *name)
{
    for (int i = 0; patterns[i] != NULL; i++)
        if (fnmatch(patterns[i], name, FNM_PERIOD) == 0)
            return true;
    return false;
}

/* `name` without a trailing ".lock" or ".new": git's lock and temporary files for the same entry. */
static void strip_lock(const char *name, char *out, size_t size)
{
    static const char *const suffixes[] = {".lock", ".new"};
    size_t len = strlen(name);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t n = strlen(suffixes[i]);
        if (len > n && len < size && strcmp(name + len - n, suffixes[i]) == 0) {
            memcpy(out, name, len - n);
            out[len - n] = '\0';
            return;
        }
    }
    snprintf(out, size, "%s", name);
}

static bool protected_name(const char *name)
{
    for (int i = 0; i < cfg.nnames; i++)
        if (fnmatch(cfg.names[i], name, FNM_CASEFOLD) == 0)
            return true;
    return false;
}

/* A HEAD file makes its directory a bare repository to host git (and so its config trusted). */
static bool bare_marker(const char *name)
{
    return strcmp(name, "HEAD") == 0;
}

static enum kind git_child(const char *name)
{
    char base[256];
    strip_lock(name, base, sizeof base);
    if (strcmp(name, "objects") == 0)
        return K_GITOBJECTS;
    if (strcmp(name, "modules") == 0 || strcmp(name, "worktrees") == 0)
        return K_GITNEST;
    if (in_list(GIT_DATA_DIRS, name) || in_list(GIT_DATA_FILES, base) || matches_any(GIT_DATA_PATTERNS, base))
        return K_GITDATA;
    return K_READONLY; /* config, hooks/, info/, commondir, gitdir, remotes/, ... */
}

enum kind child_kind(enum kind parent, const char *name, mode_t type, bool dir_has_head)
{
    char base[256];
    switch (parent) {
    case K_NORMAL:
        if (protected_name(name))
            return strcmp(name, ".git") == 0 && S_ISDIR(type) && !cfg.git_strict ? K_GITDIR : K_READONLY;
        if (bare_marker(name))
            return K_READONLY;
        if (S_ISDIR(type) && dir_has_head)
            return cfg.git_strict ? K_READONLY : K_GITDIR;
        return K_NORMAL;
    case K_GITDIR:
        return git_child(name);
    case K_GITOBJECTS:
        return strcmp(name, "info") == 0 ? K_GITOBJINFO : K_GITDATA;
    case K_GITOBJINFO:
        strip_lock(name, base, sizeof base);
        return in_list(GIT_ALTERNATES, base) ? K_READONLY : K_GITDATA;
    case K_GITDATA:
        return K_GITDATA;
    case K_GITNEST:
        if (!S_ISDIR(type))
            return K_READONLY;
        return dir_has_head ? K_GITDIR : K_GITNEST;
    case K_READONLY:
    case K_COVERED:
        break;
    }
    return K_READONLY;
}

bool needs_head_check(enum kind parent, mode_t type)
{
    return S_ISDIR(type) && (parent == K_NORMAL || parent == K_GITNEST);
}

struct place child_place(struct place parent, const char *name)
{
    struct place p = {0, 0};
    for (int i = 0; i < cfg.npaths; i++) {
        const struct config_path *c = &cfg.paths[i];
        if ((parent.mask & (1ULL << i)) && parent.depth < c->nparts && strcmp(c->parts[parent.depth], name) == 0)
            p.mask |= 1ULL << i;
    }
    if (p.mask != 0)
        p.depth = parent.depth + 1;
    return p;
}

int place_hit(struct place p)
{
    for (int i = 0; i < cfg.npaths; i++)
        if ((p.mask & (1ULL << i)) && cfg.paths[i].nparts == p.depth)
            return i;
    return -1;
}

bool kind_writable(enum kind k)
{
    return k == K_NORMAL || k == K_GITDATA || k == K_GITOBJECTS || k == K_GITOBJINFO;
}

int may_create(enum kind parent, struct place pp, const char *name, mode_t type, const char **why)
{
    if (cfg.read_only)
        return *why = "the share is read-only", EROFS;
    if (S_ISCHR(type) || S_ISBLK(type))
        return *why = "device nodes are not allowed", EPERM;
    if (S_ISLNK(type) && cfg.links != LINKS_OPAQUE)
        return *why = "symlinks are denied on this share", EPERM;
    int hit = place_hit(child_place(pp, name));
    if (hit >= 0)
        return *why = cfg.paths[hit].cover ? "a volume covers this path" : "a protected path", EACCES;
    switch (parent) {
    case K_NORMAL:
        if (protected_name(name))
            return *why = "a protected name (host tools run or trust what it holds)", EACCES;
        if (bare_marker(name))
            return *why = "a HEAD file would make this directory a git repository to host git", EACCES;
        return 0;
    case K_GITDIR:
    case K_GITOBJECTS:
    case K_GITOBJINFO:
    case K_GITDATA:
        if (!kind_writable(child_kind(parent, name, type, false)))
            return *why = "git's config, hooks and pointers stay read-only", EACCES;
        return 0;
    case K_GITNEST:
        return *why = "new git directories (submodules, worktrees) are made on the host", EACCES;
    case K_COVERED:
        return *why = "a volume covers this path", EACCES;
    case K_READONLY:
        break;
    }
    return *why = "inside a protected path", EACCES;
}
