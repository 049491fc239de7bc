// SPDX-License-Identifier: GPL-2.0
/*
 * microvm_fsnotify: raise inotify/fanotify events in the guest for changes made on the host
 * side of a virtio-fs share (virtio-fs sends the guest no change notifications).
 *
 * The guest agent (PID 1's server, root) writes one batch per write(2) to /dev/microvm-fsnotify
 * (mode 0600). A batch names a mount point and lists events relative to it; see README.md
 * for the byte layout. For each event the module looks the path up beneath the mount with
 * LOOKUP_REVAL (FUSE then asks virtiofsd again, so stale dentries and attributes are dropped
 * before anyone reacts to the event) and calls the kernel's fsnotify entry points, as the VFS
 * does after a local change. It never writes to the file system.
 *
 * "The guest already knew" rule (no doubled events for the guest's own changes, which come back
 * from the host as host events): a MODIFY or CREATE is skipped when a guest process modified,
 * created or renamed-in that inode in the last few seconds (recorded as it happened, below), a
 * DELETE when the guest had a cached negative dentry for the name (read before the lookup that
 * revalidates it). Not from the guest's cached attributes or dentries alone: a guest watcher
 * that reacts to one event of a burst reads the directory, which refreshes its neighbours'
 * attributes and dentries before their events are raised, and they would be lost.
 */
#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/namei.h>
#include <linux/dcache.h>
#include <linux/fsnotify.h>
#include <linux/mm.h>
#include <linux/uaccess.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/hash.h>
#include <linux/jiffies.h>
#include <asm/unaligned.h>

/* Exported by fs/namei.c but not declared in a public header in 6.1. */
extern int vfs_path_lookup(struct dentry *dentry, struct vfsmount *mnt, const char *name,
			   unsigned int flags, struct path *path);

#define MVFN_MAGIC 0x4e46564dU /* "MVFN" little-endian */
#define MVFN_VERSION 2 /* the agent of the same initramfs writes only this one */
#define MVFN_HEADER 16
#define MVFN_RECORD 4
#define MVFN_MAX_EVENTS 1024
#define MVFN_MAX_BATCH (512 * 1024)

enum mvfn_kind { MVFN_MODIFY = 1, MVFN_CREATE = 2, MVFN_DELETE = 3, MVFN_DIR_CHANGED = 4 };

/* Beneath the mount, no symlinks, no other mounts (a volume inside the share is not ours). */
#define MVFN_LOOKUP (LOOKUP_REVAL | LOOKUP_NO_SYMLINKS | LOOKUP_NO_XDEV | LOOKUP_BENEATH)

static unsigned long delivered;
static unsigned long skipped_known;
static unsigned long missing;
static unsigned long moves;
module_param(delivered, ulong, 0444);
MODULE_PARM_DESC(delivered, "events delivered to fsnotify");
module_param(skipped_known, ulong, 0444);
MODULE_PARM_DESC(skipped_known, "events skipped because the guest already knew (its own change)");
module_param(missing, ulong, 0444);
MODULE_PARM_DESC(missing, "events whose path did not resolve (gone again, symlink, other mount)");
module_param(moves, ulong, 0444);
MODULE_PARM_DESC(moves, "delete+create pairs of one inode delivered as a move");

static DEFINE_MUTEX(mvfn_lock);

/*
 * Guest changes, so that their echo from the host is not raised again: a group of our own with
 * an FS_MODIFY | FS_CREATE | FS_MOVED_TO mark on the superblock of every mount we deliver to
 * (armed by its first batch, even an empty one) records which inodes guest processes modified,
 * created or renamed in, and when. Our own fsnotify calls are not recorded (mvfn_delivering).
 * One slot per inode hash: a collision only forgets a change (its echo is then raised twice,
 * the lesser harm), and so does an echo later than the window.
 */
#define MVFN_WRITE_SLOTS_BITS 13
#define MVFN_WRITE_WINDOW (3 * HZ)
#define MVFN_GUEST_CHANGES (FS_MODIFY | FS_CREATE | FS_MOVED_TO)
struct mvfn_write {
	struct inode *inode;
	unsigned long ino;
	unsigned long at;
};
static struct mvfn_write mvfn_writes[1 << MVFN_WRITE_SLOTS_BITS];
static DEFINE_SPINLOCK(mvfn_writes_lock);
static struct fsnotify_group *mvfn_group;
static struct task_struct *mvfn_delivering;
/* When the batch being delivered was written to the device (under mvfn_lock): the window is
 * measured to it, not to each event's delivery, which a long batch under TCG delays by seconds. */
static unsigned long mvfn_batch_arrived;

static int mvfn_handle_event(struct fsnotify_group *group, u32 mask, const void *data, int data_type,
			     struct inode *dir, const struct qstr *name, u32 cookie,
			     struct fsnotify_iter_info *iter_info)
{
	struct inode *inode = fsnotify_data_inode(data, data_type);
	struct mvfn_write *w;

	if (!(mask & MVFN_GUEST_CHANGES) || !inode || READ_ONCE(mvfn_delivering) == current)
		return 0;
	w = &mvfn_writes[hash_ptr(inode, MVFN_WRITE_SLOTS_BITS)];
	spin_lock(&mvfn_writes_lock);
	w->inode = inode;
	w->ino = inode->i_ino;
	w->at = jiffies;
	spin_unlock(&mvfn_writes_lock);
	return 0;
}

static bool mvfn_guest_wrote(struct inode *inode)
{
	struct mvfn_write *w = &mvfn_writes[hash_ptr(inode, MVFN_WRITE_SLOTS_BITS)];
	bool hit;

	spin_lock(&mvfn_writes_lock);
	hit = w->inode == inode && w->ino == inode->i_ino &&
	      time_before(READ_ONCE(mvfn_batch_arrived), w->at + MVFN_WRITE_WINDOW);
	spin_unlock(&mvfn_writes_lock);
	return hit;
}

static void mvfn_free_mark(struct fsnotify_mark *mark)
{
	kfree(mark);
}

static const struct fsnotify_ops mvfn_ops = {
	.handle_event = mvfn_handle_event,
	.free_mark = mvfn_free_mark,
};

/* Called under mvfn_lock. */
static void mvfn_arm(struct super_block *sb)
{
	struct fsnotify_mark *mark;

	if (!mvfn_group)
		return;
	mark = fsnotify_find_mark(&sb->s_fsnotify_marks, mvfn_group);
	if (mark) {
		fsnotify_put_mark(mark);
		return;
	}
	mark = kzalloc(sizeof(*mark), GFP_KERNEL);
	if (!mark)
		return;
	fsnotify_init_mark(mark, mvfn_group);
	mark->mask = MVFN_GUEST_CHANGES;
	if (fsnotify_add_mark(mark, &sb->s_fsnotify_marks, FSNOTIFY_OBJ_TYPE_SB, 0, NULL))
		pr_warn("microvm_fsnotify: cannot watch guest writes on %s: their echoes raise events twice\n", sb->s_id);
	fsnotify_put_mark(mark);
}

struct mvfn_event {
	u8 kind;
	char *rel;          /* NUL-terminated copy of the relative path */
	struct qstr name;   /* last component of rel */
	struct path parent; /* revalidated parent directory, or .dentry NULL */
	struct inode *old;  /* the guest's cached inode for the name before revalidation */
	bool old_negative;  /* the guest had a cached negative dentry for the name */
	struct path now;    /* the name after revalidation, or .dentry NULL */
	bool paired;        /* CREATE consumed by a move */
};

/* Components must be non-empty, not "." or "..", no NUL, no leading '/'. */
static bool mvfn_rel_ok(const char *p, size_t len)
{
	size_t i = 0, start;

	if (len == 0 || p[0] == '/' || memchr(p, 0, len))
		return false;
	while (i < len) {
		start = i;
		while (i < len && p[i] != '/')
			i++;
		if (i == start || (i - start == 1 && p[start] == '.') ||
		    (i - start == 2 && p[start] == '.' && p[start + 1] == '.'))
			return false;
		i++; /* skip '/' */
	}
	return p[len - 1] != '/';
}

static void mvfn_resolve_parent(struct path *root, struct mvfn_event *e)
{
	char *slash = strrchr(e->rel, '/');
	struct dentry *cached;
	int err;

	if (slash) {
		*slash = 0;
		err = vfs_path_lookup(root->dentry, root->mnt, e->rel, MVFN_LOOKUP | LOOKUP_DIRECTORY, &e->parent);
		*slash = '/';
		if (err) {
			e->parent.dentry = NULL;
			return;
		}
		e->name.name = slash + 1;
	} else {
		e->parent = *root;
		path_get(&e->parent);
		e->name.name = e->rel;
	}
	e->name.len = strlen(e->name.name);
	e->name.hash = 0;
	/* dcache only, no revalidation: what the guest believed before this event. */
	cached = d_hash_and_lookup(e->parent.dentry, &e->name);
	if (IS_ERR_OR_NULL(cached))
		return;
	if (d_really_is_negative(cached)) {
		e->old_negative = true;
	} else {
		e->old = igrab(d_inode(cached));
	}
	dput(cached);
	/* d_hash_and_lookup may have rewritten the hash; name stays the same bytes. */
	e->name = (struct qstr)QSTR_INIT(e->name.name, e->name.len);
}

static void mvfn_resolve_now(struct path *root, struct mvfn_event *e)
{
	if (!e->rel[0]) { /* DIR_CHANGED of the mount's root */
		e->now = *root;
		path_get(&e->now);
		return;
	}
	if (vfs_path_lookup(root->dentry, root->mnt, e->rel, MVFN_LOOKUP, &e->now))
		e->now.dentry = NULL;
}

static u32 mvfn_dir_bit(struct inode *inode)
{
	return inode && S_ISDIR(inode->i_mode) ? FS_ISDIR : 0;
}

/* The replaced or removed inode the guest still holds (a watch on a file saved by rename). */
static void mvfn_gone_self(struct mvfn_event *e)
{
	if (!e->old || (e->now.dentry && d_inode(e->now.dentry) == e->old))
		return;
	fsnotify_inode(e->old, FS_ATTRIB);
	fsnotify_inode(e->old, FS_DELETE_SELF);
}

/* FS_MODIFY to the node's watchers and its parent's, and FS_CLOSE_WRITE for a file: a write as
 * the VFS reports one. */
static void mvfn_content_changed(struct mvfn_event *e, struct inode *inode)
{
	fsnotify_parent(e->now.dentry, FS_MODIFY, &e->now, FSNOTIFY_EVENT_PATH);
	if (!S_ISDIR(inode->i_mode))
		fsnotify_parent(e->now.dentry, FS_CLOSE_WRITE, &e->now, FSNOTIFY_EVENT_PATH);
}

static void mvfn_modify(struct mvfn_event *e)
{
	struct inode *inode;

	if (!e->now.dentry) {
		missing++;
		return;
	}
	inode = d_inode(e->now.dentry);
	if (mvfn_guest_wrote(inode)) {
		skipped_known++;
		return;
	}
	mvfn_gone_self(e);
	mvfn_content_changed(e, inode);
	delivered++;
}

static void mvfn_create(struct mvfn_event *e)
{
	struct inode *inode;

	if (!e->now.dentry || !e->parent.dentry) {
		missing++;
		return;
	}
	inode = d_inode(e->now.dentry);
	if (mvfn_guest_wrote(inode)) {
		skipped_known++;
		return;
	}
	mvfn_gone_self(e);
	fsnotify_name(FS_CREATE | mvfn_dir_bit(inode), inode, FSNOTIFY_EVENT_INODE,
		      d_inode(e->parent.dentry), &e->name, 0);
	/*
	 * The guest held this very file under the name before the event came (a watcher read the
	 * directory, or looked the name up, while the host's CREATE waited behind other events; the
	 * host merges a create and the writes after it into one CREATE): a watcher that already
	 * knows the name takes the create as old news, so it hears of the content as well.
	 */
	if (e->old == inode && !S_ISDIR(inode->i_mode))
		mvfn_content_changed(e, inode);
	delivered++;
}

static void mvfn_delete(struct mvfn_event *e)
{
	struct inode *dir;

	if (!e->parent.dentry) {
		missing++;
		return;
	}
	if (e->old_negative || (e->old && e->now.dentry && d_inode(e->now.dentry) == e->old)) {
		skipped_known++;
		return;
	}
	dir = d_inode(e->parent.dentry);
	fsnotify_name(FS_DELETE | mvfn_dir_bit(e->old), e->old ? e->old : dir, FSNOTIFY_EVENT_INODE,
		      dir, &e->name, 0);
	if (e->old)
		fsnotify_inode(e->old, FS_DELETE_SELF);
	delivered++;
}

static void mvfn_move(struct mvfn_event *from, struct mvfn_event *to)
{
	struct inode *inode = from->old;
	u32 isdir = mvfn_dir_bit(inode);
	u32 cookie = fsnotify_get_cookie();

	fsnotify_name(FS_MOVED_FROM | isdir, inode, FSNOTIFY_EVENT_INODE, d_inode(from->parent.dentry),
		      &from->name, cookie);
	fsnotify_name(FS_MOVED_TO | isdir, inode, FSNOTIFY_EVENT_INODE, d_inode(to->parent.dentry),
		      &to->name, cookie);
	fsnotify_inode(inode, FS_MOVE_SELF);
	to->paired = true;
	delivered += 2;
	moves++;
}

/* Many changes under one directory, collapsed by the host: the directory itself changed. */
static void mvfn_dir_changed(struct mvfn_event *e)
{
	if (!e->now.dentry || !d_is_dir(e->now.dentry)) {
		missing++;
		return;
	}
	fsnotify_parent(e->now.dentry, FS_MODIFY, &e->now, FSNOTIFY_EVENT_PATH);
	delivered++;
}

static void mvfn_deliver(struct path *root, struct mvfn_event *ev, u32 n)
{
	u32 i, j;

	/* Cached state first, for all events: a later revalidation may move or drop it. */
	for (i = 0; i < n; i++)
		if (ev[i].kind != MVFN_DIR_CHANGED)
			mvfn_resolve_parent(root, &ev[i]);
	for (i = 0; i < n; i++)
		mvfn_resolve_now(root, &ev[i]);

	for (i = 0; i < n; i++) {
		struct mvfn_event *e = &ev[i];

		switch (e->kind) {
		case MVFN_MODIFY:
			mvfn_modify(e);
			break;
		case MVFN_CREATE:
			if (!e->paired)
				mvfn_create(e);
			break;
		case MVFN_DELETE:
			if (e->old && e->parent.dentry && !e->now.dentry) {
				for (j = 0; j < n; j++) {
					if (ev[j].kind == MVFN_CREATE && !ev[j].paired && ev[j].now.dentry &&
					    ev[j].parent.dentry && d_inode(ev[j].now.dentry) == e->old)
						break;
				}
				if (j < n) {
					mvfn_move(e, &ev[j]);
					break;
				}
			}
			mvfn_delete(e);
			break;
		case MVFN_DIR_CHANGED:
			mvfn_dir_changed(e);
			break;
		}
	}
}

static void mvfn_release(struct mvfn_event *ev, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++) {
		if (ev[i].parent.dentry)
			path_put(&ev[i].parent);
		if (ev[i].now.dentry)
			path_put(&ev[i].now);
		iput(ev[i].old);
		kfree(ev[i].rel);
	}
	kvfree(ev);
}

static ssize_t mvfn_write(struct file *file, const char __user *ubuf, size_t len, loff_t *ppos)
{
	struct mvfn_event *ev = NULL;
	struct path root;
	char *buf, *mount = NULL;
	u32 count, i;
	size_t off, mlen;
	ssize_t ret = -EINVAL;
	unsigned long arrived = jiffies;

	if (len < MVFN_HEADER || len > MVFN_MAX_BATCH)
		return -EINVAL;
	buf = memdup_user(ubuf, len);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	if (get_unaligned_le32(buf) != MVFN_MAGIC || get_unaligned_le16(buf + 4) != MVFN_VERSION)
		goto out;
	mlen = get_unaligned_le16(buf + 6);
	count = get_unaligned_le32(buf + 8);
	off = MVFN_HEADER;
	if (count > MVFN_MAX_EVENTS || mlen == 0 || mlen > len - off || buf[off] != '/' || memchr(buf + off, 0, mlen))
		goto out;
	mount = kmemdup_nul(buf + off, mlen, GFP_KERNEL);
	ev = kvcalloc(count ? count : 1, sizeof(*ev), GFP_KERNEL);
	ret = -ENOMEM;
	if (!mount || !ev)
		goto out;
	off += mlen;
	ret = -EINVAL;
	for (i = 0; i < count; i++) {
		struct mvfn_event *e = &ev[i];
		size_t plen;

		if (len - off < MVFN_RECORD)
			goto out_events;
		e->kind = buf[off];
		plen = get_unaligned_le16(buf + off + 2);
		if (buf[off + 1] != 0) /* reserved */
			goto out_events;
		off += MVFN_RECORD;
		if (e->kind < MVFN_MODIFY || e->kind > MVFN_DIR_CHANGED ||
		    plen > len - off || plen >= PATH_MAX ||
		    !((plen == 0 && e->kind == MVFN_DIR_CHANGED) || mvfn_rel_ok(buf + off, plen)))
			goto out_events;
		e->rel = kmemdup_nul(buf + off, plen, GFP_KERNEL);
		if (!e->rel) {
			ret = -ENOMEM;
			goto out_events;
		}
		off += plen;
	}
	if (off != len)
		goto out_events;

	ret = kern_path(mount, LOOKUP_FOLLOW | LOOKUP_DIRECTORY, &root);
	if (ret)
		goto out_events;
	if (root.dentry != root.mnt->mnt_root) {
		ret = -EINVAL; /* not a mount point: events target a mount, nothing else */
	} else {
		mutex_lock(&mvfn_lock);
		mvfn_arm(root.mnt->mnt_sb);
		WRITE_ONCE(mvfn_batch_arrived, arrived);
		WRITE_ONCE(mvfn_delivering, current);
		mvfn_deliver(&root, ev, count);
		WRITE_ONCE(mvfn_delivering, NULL);
		mutex_unlock(&mvfn_lock);
		ret = len;
	}
	path_put(&root);
out_events:
	mvfn_release(ev, count);
	ev = NULL;
out:
	kvfree(ev);
	kfree(mount);
	kfree(buf);
	return ret;
}

static const struct file_operations mvfn_fops = {
	.owner = THIS_MODULE,
	.write = mvfn_write,
	.llseek = noop_llseek,
};

static struct miscdevice mvfn_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "microvm-fsnotify",
	.fops = &mvfn_fops,
	.mode = 0600,
};

/*
 * No module_exit: the group cannot be destroyed from a module (fsnotify_destroy_group is not
 * exported), so the module stays once loaded, as every module of the initramfs does.
 */
static int __init mvfn_init(void)
{
	mvfn_group = fsnotify_alloc_group(&mvfn_ops, 0);
	if (IS_ERR(mvfn_group)) {
		pr_warn("microvm_fsnotify: no fsnotify group (%ld): echoes of guest writes raise events twice\n", PTR_ERR(mvfn_group));
		mvfn_group = NULL;
	}
	return misc_register(&mvfn_dev);
}

module_init(mvfn_init);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("microvm: host file events for virtio-fs shares, raised as fsnotify events");
