/* The file system the FUSE front end shows: a folder per subsystem, a
 * file per active namespace. Names and attributes come from the target
 * model (what Identify reports); data operations become NVMe commands
 * (transport.c). Runs on libfuse's worker threads. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "lib/log.h"
#include "fuse/internal.h"

/* Names and attributes change only on reload, which tells the kernel
 * (session.c); the timeout bounds staleness if a notification is lost. */
#define ATTR_TIMEOUT 1.0

#define XATTR_NGUID "user.nvme.nguid"
#define XATTR_UUID "user.nvme.uuid"
#define XATTR_NSID "user.nvme.nsid"
#define XATTR_LBA_SIZE "user.nvme.lba_size"
#define XATTR_SUBNQN "user.nvme.subnqn"

static struct nvmg_fuse *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ino -> (subsystem index, nsid); nsid 0 is the folder. */
static bool ino_split(const struct nvmg_fuse *fs, fuse_ino_t ino, size_t *sub, uint32_t *nsid)
{
	uint64_t hi = (uint64_t)ino >> 32;

	if (hi == 0 || hi > fs->nr_subs)
		return false;
	*sub = (size_t)(hi - 1);
	*nsid = (uint32_t)ino;
	return true;
}

/* Folders shown now: subsystems not removed by a reload. */
static size_t live_subs(const struct nvmg_fuse *fs)
{
	size_t n = atomic_load(&fs->nr_subs), live = 0;

	for (size_t i = 0; i < n; i++)
		live += !atomic_load(&fs->subs[i].gone);
	return live;
}

int nvmg_fuse_geo(struct nvmg_fuse *fs, fuse_ino_t ino, struct fuse_geo *g)
{
	struct nvmg_ns *ns;

	if (!ino_split(fs, ino, &g->sub, &g->nsid) || !g->nsid)
		return -EISDIR;
	ns = nvmg_subsys_get_ns(fs->subs[g->sub].s, g->nsid);
	if (!ns)
		return -ENOENT;
	g->lba_shift = ns->lba_shift;
	g->bytes = nvmg_ns_nsze(ns) << ns->lba_shift;
	g->readonly = ns->readonly;
	g->dealloc_zeroes = ns->bdev && ns->bdev->dealloc_zeroes;
	nvmg_ns_put(ns);
	return 0;
}

static void dir_attr(const struct nvmg_fuse *fs, fuse_ino_t ino, nlink_t nlink, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = nlink;
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = fs->mtime;
}

static int fill_attr(struct nvmg_fuse *fs, fuse_ino_t ino, struct stat *st)
{
	struct fuse_geo g;
	int ret;

	if (ino == NVMG_FUSE_ROOT) {
		dir_attr(fs, ino, (nlink_t)(2 + live_subs(fs)), st);
		return 0;
	}
	if (!ino_split(fs, ino, &g.sub, &g.nsid))
		return -ENOENT;
	if (!g.nsid) {
		if (atomic_load(&fs->subs[g.sub].gone))
			return -ENOENT;
		dir_attr(fs, ino, 2, st);
		return 0;
	}
	ret = nvmg_fuse_geo(fs, ino, &g);
	if (ret)
		return ret;
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFREG | (g.readonly ? 0444 : 0644);
	st->st_nlink = 1;
	st->st_size = (off_t)g.bytes;
	/* The LBA size is the unit that needs no read-modify-write. */
	st->st_blksize = (blksize_t)1 << g.lba_shift;
	st->st_blocks = (blkcnt_t)(g.bytes / 512);
	st->st_atim = st->st_mtim = st->st_ctim = fs->mtime;
	return 0;
}

static void reply_entry(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse_entry_param e;
	int ret;

	memset(&e, 0, sizeof(e));
	ret = fill_attr(fs_of(req), ino, &e.attr);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	e.ino = ino;
	e.attr_timeout = ATTR_TIMEOUT;
	e.entry_timeout = ATTR_TIMEOUT;
	fuse_reply_entry(req, &e);
}

/* "n<nsid>" with a decimal nsid, no leading zeros: one name per file. */
static uint32_t parse_ns_name(const char *name)
{
	uint64_t v = 0;

	if (name[0] != 'n' || name[1] < '1' || name[1] > '9')
		return 0;
	for (const char *p = name + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > 0xfffffffeu)
			return 0;
	}
	return (uint32_t)v;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct nvmg_fuse *fs = fs_of(req);
	size_t sub;
	uint32_t nsid;

	if (parent == NVMG_FUSE_ROOT) {
		size_t n = atomic_load(&fs->nr_subs);

		for (size_t i = 0; i < n; i++) {
			if (!atomic_load(&fs->subs[i].gone) && !strcmp(fs->subs[i].name, name)) {
				reply_entry(req, nvmg_fuse_dir_ino(i));
				return;
			}
		}
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!ino_split(fs, parent, &sub, &nsid) || nsid) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (atomic_load(&fs->subs[sub].gone)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	nsid = parse_ns_name(name);
	if (!nsid) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	reply_entry(req, nvmg_fuse_dir_ino(sub) | nsid);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int ret = fill_attr(fs_of(req), ino, &st);

	(void)fi;
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

/* A namespace has the size of its capacity: truncation to anything else is
 * refused like on a block device, and modes and owners are fixed. Times
 * are accepted and ignored so tools that copy them do not fail. */
static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int ret = fill_attr(fs_of(req), ino, &st);

	(void)fi;
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size != st.st_size) {
		fuse_reply_err(req, S_ISDIR(st.st_mode) ? EISDIR : (st.st_mode & 0200) ? EINVAL : EROFS);
		return;
	}
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

/* Directory listings are a few entries, listed afresh on every call. The
 * offset handed back is the entry's index, so a reload between two calls
 * cannot make the kernel resume in the middle of an entry. */
struct dent {
	fuse_ino_t ino;
	mode_t mode;
	const char *name;   /* a folder's name, or NULL: "n<nsid>" */
	uint32_t nsid;
};

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct nvmg_fuse *fs = fs_of(req);
	struct dent *d = NULL;
	size_t nr = 0, used = 0, sub;
	uint32_t nsid;
	char *buf;

	(void)fi;
	if (ino == NVMG_FUSE_ROOT) {
		size_t n = atomic_load(&fs->nr_subs);

		d = calloc(n + 2, sizeof(*d));
		for (size_t i = 0; d && i < n; i++)
			if (!atomic_load(&fs->subs[i].gone))
				d[2 + nr++] = (struct dent){ nvmg_fuse_dir_ino(i), S_IFDIR,
							     fs->subs[i].name, 0 };
	} else if (ino_split(fs, ino, &sub, &nsid) && !nsid) {
		struct nvmg_subsys *s = fs->subs[sub].s;

		pthread_mutex_lock(&s->lock);
		d = calloc(s->nr_ns + 2, sizeof(*d));
		for (size_t i = 0; d && i < s->nr_ns; i++)
			d[2 + nr++] = (struct dent){ nvmg_fuse_dir_ino(sub) | s->ns[i]->nsid, S_IFREG,
						     NULL, s->ns[i]->nsid };
		pthread_mutex_unlock(&s->lock);
	} else {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = d ? malloc(size) : NULL;
	if (!buf) {
		free(d);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d[0] = (struct dent){ ino, S_IFDIR, ".", 0 };
	d[1] = (struct dent){ ino == NVMG_FUSE_ROOT ? ino : NVMG_FUSE_ROOT, S_IFDIR, "..", 0 };
	nr += 2;
	for (size_t i = off > 0 ? (size_t)off : 0; i < nr; i++) {
		struct stat st = { .st_ino = d[i].ino, .st_mode = d[i].mode };
		char name[16];
		size_t need;

		if (!d[i].name)
			snprintf(name, sizeof(name), "n%" PRIu32, d[i].nsid);
		need = fuse_add_direntry(req, buf + used, size - used, d[i].name ? d[i].name : name,
					 &st, (off_t)(i + 1));
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
	free(d);
}

/* Look the namespace file up; when that fails the request is answered. */
static bool geo_or_reply(fuse_req_t req, struct nvmg_fuse *fs, fuse_ino_t ino, struct fuse_geo *g)
{
	int ret = nvmg_fuse_geo(fs, ino, g);

	if (ret)
		fuse_reply_err(req, -ret);
	return !ret;
}

/* Direct I/O for every open (FOPEN_DIRECT_IO) rather than invalidating the
 * page cache on remote writes: a TCP host's write lands in the backend
 * without passing here, so a cached page could be stale at any moment and
 * invalidations would race the reads they are meant to fix. With direct
 * I/O every read is a Read command, which is always coherent, and writes
 * are durable once Flush returns, as on the wire. The price: no shared
 * writable mmap on kernels before 6.6 (private mappings still work), and no
 * readahead, which the block layer above a loop device does anyway. */
static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct nvmg_fuse *fs = fs_of(req);
	struct fuse_open_out out;
	struct fuse_geo g;

	if (!geo_or_reply(req, fs, ino, &g))
		return;
	if (g.readonly && (fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/* O_TRUNC arrives here (FUSE_CAP_ATOMIC_O_TRUNC) and is ignored, as a
	 * block device ignores it: `dd of=` must not fail or shrink a disk. */
	memset(&out, 0, sizeof(out));
	out.open_flags = FOPEN_DIRECT_IO;
	/* Let the kernel send direct writes to one file in parallel (protocol
	 * 7.36+); ordering where it matters is ours (transport.c). libfuse
	 * 3.14 has no field for this flag, so the reply is built here: it is
	 * the same fuse_open_out fuse_reply_open() would send. */
	if (fs->parallel_dio)
		out.open_flags |= FOPEN_PARALLEL_DIRECT_WRITES;
	fuse_reply_buf(req, (const char *)&out, sizeof(out));
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

int nvmg_fuse_check_read(struct nvmg_fuse *fs, fuse_ino_t ino, int64_t off, uint64_t *len,
			 struct fuse_geo *g)
{
	int ret = nvmg_fuse_geo(fs, ino, g);

	if (ret)
		return ret;
	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off >= g->bytes || !*len)
		return 1; /* end of file */
	if (*len > g->bytes - (uint64_t)off)
		*len = g->bytes - (uint64_t)off;
	return 0;
}

int nvmg_fuse_check_write(struct nvmg_fuse *fs, fuse_ino_t ino, int64_t off, uint64_t *len,
			  struct fuse_geo *g)
{
	int ret = nvmg_fuse_geo(fs, ino, g);

	if (ret)
		return ret;
	if (g->readonly)
		return -EROFS;
	if (off < 0)
		return -EINVAL;
	if (!*len)
		return 1;
	/* Like a block device: the part before the end is written (a short
	 * write), and a write starting at or past the end has no space. */
	if ((uint64_t)off >= g->bytes)
		return -ENOSPC;
	if (*len > g->bytes - (uint64_t)off)
		*len = g->bytes - (uint64_t)off;
	return 0;
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct nvmg_fuse *fs = fs_of(req);
	struct fuse_geo g;
	uint64_t len = size;
	int ret = nvmg_fuse_check_read(fs, ino, off, &len, &g);

	(void)fi;
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else if (ret)
		fuse_reply_buf(req, NULL, 0);
	else
		nvmg_fuse_submit(fs, (struct fuse_reply_to){ .req = req }, FOP_READ, &g, (uint64_t)off,
				 len, NULL, false);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct nvmg_fuse *fs = fs_of(req);
	struct fuse_geo g;
	uint64_t len = size;
	int ret = nvmg_fuse_check_write(fs, ino, off, &len, &g);

	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (ret) {
		fuse_reply_write(req, 0);
		return;
	}
	/* The kernel passes O_DSYNC for an O_DSYNC/O_SYNC file or an
	 * RWF_DSYNC write and, the file being FOPEN_DIRECT_IO, calls no fsync
	 * after it: the write itself must be durable when answered. */
	nvmg_fuse_submit(fs, (struct fuse_reply_to){ .req = req }, FOP_WRITE, &g, (uint64_t)off, len,
			 buf, (fi->flags & O_DSYNC) != 0);
}

/* fsync and fdatasync alike: NVMe Flush commits every completed write. */
static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct nvmg_fuse *fs = fs_of(req);
	struct fuse_geo g;

	(void)datasync;
	(void)fi;
	if (!geo_or_reply(req, fs, ino, &g))
		return;
	nvmg_fuse_submit(fs, (struct fuse_reply_to){ .req = req }, FOP_FLUSH, &g, 0, 0, NULL, false);
}

int nvmg_fuse_check_fallocate(struct nvmg_fuse *fs, fuse_ino_t ino, int mode, int64_t off,
			      int64_t len, struct fuse_geo *g, enum fuse_op_kind *kind,
			      uint64_t *nbytes)
{
	const int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
	uint64_t end;
	int ret = nvmg_fuse_geo(fs, ino, g);

	if (ret)
		return ret;
	if ((mode & ~known) || ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE)) ||
	    ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE)))
		return -EOPNOTSUPP;
	if (off < 0 || len <= 0)
		return -EINVAL;
	end = (uint64_t)off + (uint64_t)len;
	if (end > g->bytes && !(mode & FALLOC_FL_KEEP_SIZE))
		return -ENOSPC; /* the size is the namespace's */
	if (end > g->bytes)
		end = g->bytes;
	/* Plain allocation: every block of a namespace already exists. */
	if (!(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)))
		return 1;
	if (g->readonly)
		return -EROFS;
	if ((uint64_t)off >= end)
		return 1;
	*kind = mode & FALLOC_FL_PUNCH_HOLE ? FOP_DEALLOC : FOP_ZERO;
	*nbytes = end - (uint64_t)off;
	return 0;
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct nvmg_fuse *fs = fs_of(req);
	enum fuse_op_kind kind = FOP_ZERO;
	struct fuse_geo g;
	uint64_t nbytes = 0;
	int ret = nvmg_fuse_check_fallocate(fs, ino, mode, off, len, &g, &kind, &nbytes);

	(void)fi;
	if (ret)
		fuse_reply_err(req, ret < 0 ? -ret : 0);
	else
		nvmg_fuse_submit(fs, (struct fuse_reply_to){ .req = req }, kind, &g, (uint64_t)off,
				 nbytes, NULL, false);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct nvmg_fuse *fs = fs_of(req);
	struct statvfs sv;
	uint64_t bytes = 0, files = 0;

	(void)ino;
	for (size_t i = 0, n = atomic_load(&fs->nr_subs); i < n; i++) {
		struct nvmg_subsys *s = fs->subs[i].s;

		pthread_mutex_lock(&s->lock);
		for (size_t j = 0; j < s->nr_ns; j++)
			bytes += nvmg_ns_nsze(s->ns[j]) << s->ns[j]->lba_shift;
		files += s->nr_ns;
		pthread_mutex_unlock(&s->lock);
	}
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = sv.f_frsize = 4096;
	sv.f_blocks = bytes / 4096;
	sv.f_files = files + live_subs(fs) + 1;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes: the namespace's identity ---- */

static int xattr_value(struct nvmg_fuse *fs, fuse_ino_t ino, const char *name, char *out,
		       size_t outlen)
{
	const uint8_t *u;
	struct nvmg_ns *ns;
	size_t sub;
	uint32_t nsid;
	int n = -1;

	if (!ino_split(fs, ino, &sub, &nsid))
		return -ENODATA;
	if (!strcmp(name, XATTR_SUBNQN))
		return snprintf(out, outlen, "%s", fs->subs[sub].s->nqn);
	if (!nsid)
		return -ENODATA;
	ns = nvmg_subsys_get_ns(fs->subs[sub].s, nsid);
	if (!ns)
		return -ENOENT;
	if (!strcmp(name, XATTR_NGUID)) {
		u = ns->nguid;
		n = snprintf(out, outlen, "%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x",
			     u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
			     u[12], u[13], u[14], u[15]);
	} else if (!strcmp(name, XATTR_UUID)) {
		u = ns->uuid;
		n = snprintf(out, outlen, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			     u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
			     u[12], u[13], u[14], u[15]);
	} else if (!strcmp(name, XATTR_NSID)) {
		n = snprintf(out, outlen, "%" PRIu32, ns->nsid);
	} else if (!strcmp(name, XATTR_LBA_SIZE)) {
		n = snprintf(out, outlen, "%u", 1u << ns->lba_shift);
	} else {
		n = -ENODATA;
	}
	nvmg_ns_put(ns);
	return n;
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char val[NVME_NQN_LENGTH + 1];
	int n = xattr_value(fs_of(req), ino, name, val, sizeof(val));

	if (n < 0)
		fuse_reply_err(req, -n);
	else if (!size)
		fuse_reply_xattr(req, (size_t)n);
	else if (size < (size_t)n)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, (size_t)n);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	static const char file_names[] = XATTR_NGUID "\0" XATTR_UUID "\0" XATTR_NSID "\0" XATTR_LBA_SIZE
		"\0" XATTR_SUBNQN;
	static const char dir_names[] = XATTR_SUBNQN;
	struct nvmg_fuse *fs = fs_of(req);
	const char *names = "";
	size_t len = 0, sub;
	uint32_t nsid;

	if (ino_split(fs, ino, &sub, &nsid)) {
		names = nsid ? file_names : dir_names;
		len = nsid ? sizeof(file_names) : sizeof(dir_names); /* each NUL-terminated */
	}
	if (!size)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, names, len);
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	(void)ino;
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	fuse_reply_err(req, EPERM); /* identity comes from the config */
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino;
	(void)name;
	fuse_reply_err(req, EPERM);
}

const struct fuse_lowlevel_ops nvmg_fuse_ll_ops = {
	.lookup = ll_lookup,
	.getattr = ll_getattr,
	.setattr = ll_setattr,
	.readdir = ll_readdir,
	.open = ll_open,
	.release = ll_release,
	.read = ll_read,
	.write = ll_write,
	.fsync = ll_fsync,
	.fallocate = ll_fallocate,
	.statfs = ll_statfs,
	.getxattr = ll_getxattr,
	.listxattr = ll_listxattr,
	.setxattr = ll_setxattr,
	.removexattr = ll_removexattr,
	/* init is session.c's: it records what the kernel can do. */
};
