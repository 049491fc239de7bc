/*
 * The nodes the kernel holds references to, by (st_dev, st_ino): each keeps an O_PATH fd of
 * the real file and the kind the policy derived for it. A node lives until the kernel
 * forgets every lookup of it. The FUSE inode number is the node's address.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsview.h"

#define BUCKETS 65536
#define MAX_READONLY 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct node *table[BUCKETS];
static struct node root;
static struct node covers[MAX_PATHS];
static struct {
    dev_t dev;
    ino_t ino;
} readonly[MAX_READONLY];
static int nreadonly;

static size_t bucket(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ULL ^ (uint64_t)dev;
    return (size_t)(h >> 48) % BUCKETS;
}

void nodes_init(int root_fd, const struct stat *st)
{
    root = (struct node){
        .nlookup = 2, .fd = root_fd, .dev = st->st_dev, .ino = st->st_ino, .type = S_IFDIR,
        .kind = K_NORMAL, .place = {cfg.npaths == 64 ? ~0ULL : (1ULL << cfg.npaths) - 1, 0}, .cover = -1,
    };
    for (int i = 0; i < MAX_PATHS; i++)
        covers[i] = (struct node){.nlookup = 1, .fd = -1, .type = S_IFDIR, .kind = K_COVERED, .cover = i,
                                  .dev = st->st_dev, .ino = (ino_t)((1ULL << 62) | (uint64_t)i)};
}

struct node *node_root(void)
{
    return &root;
}

struct node *node_of(fuse_ino_t ino)
{
    return ino == FUSE_ROOT_ID ? &root : (struct node *)(uintptr_t)ino;
}

fuse_ino_t node_ino(struct node *n)
{
    return n == &root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

static bool is_readonly(dev_t dev, ino_t ino)
{
    for (int i = 0; i < nreadonly; i++)
        if (readonly[i].dev == dev && readonly[i].ino == ino)
            return true;
    return false;
}

void node_mark_readonly(dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&lock);
    if (nreadonly < MAX_READONLY && !is_readonly(dev, ino))
        readonly[nreadonly++] = (typeof(readonly[0])){dev, ino};
    else if (nreadonly >= MAX_READONLY)
        fprintf(stderr, "microvm-fsview: more than %d protected link targets; the rest are not protected\n", MAX_READONLY);
    pthread_mutex_unlock(&lock);
}

struct node *node_get(int fd, const struct stat *st, enum kind kind, struct place place)
{
    pthread_mutex_lock(&lock);
    if (is_readonly(st->st_dev, st->st_ino))
        kind = K_READONLY;
    if (st->st_dev == root.dev && st->st_ino == root.ino) {
        root.nlookup++;
        pthread_mutex_unlock(&lock);
        close(fd);
        return &root;
    }
    size_t b = bucket(st->st_dev, st->st_ino);
    struct node *n = table[b];
    while (n != NULL && !(n->dev == st->st_dev && n->ino == st->st_ino))
        n = n->next;
    if (n != NULL) {
        /* Another name for the same inode (a hard link, or a followed symlink): read-only wins. */
        if (kind == K_READONLY)
            n->kind = K_READONLY;
        n->nlookup++;
        pthread_mutex_unlock(&lock);
        close(fd);
        return n;
    }
    n = calloc(1, sizeof *n);
    if (n == NULL) {
        pthread_mutex_unlock(&lock);
        close(fd);
        return NULL;
    }
    *n = (struct node){.nlookup = 1, .fd = fd, .dev = st->st_dev, .ino = st->st_ino,
                       .type = st->st_mode & S_IFMT, .kind = kind, .place = place, .cover = -1, .next = table[b]};
    table[b] = n;
    pthread_mutex_unlock(&lock);
    return n;
}

struct node *node_cover(int index)
{
    pthread_mutex_lock(&lock);
    covers[index].nlookup++;
    pthread_mutex_unlock(&lock);
    return &covers[index];
}

void node_forget(struct node *n, uint64_t count)
{
    if (n == &root || n->cover >= 0)
        return;
    pthread_mutex_lock(&lock);
    n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
    if (n->nlookup > 0) {
        pthread_mutex_unlock(&lock);
        return;
    }
    struct node **p = &table[bucket(n->dev, n->ino)];
    while (*p != n)
        p = &(*p)->next;
    *p = n->next;
    pthread_mutex_unlock(&lock);
    close(n->fd);
    free(n);
}
