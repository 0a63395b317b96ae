/* File and block-device backend: io_uring on the submitting reactor's
 * ring, O_DIRECT where the file allows it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lib/log.h"
#include "nvme/bdev/bdev.h"

#define ZERO_BUF_SIZE (1u << 20)

/* ZS_SYNC: after the zeros, an fdatasync for FUA (or WCE=0) Write Zeroes,
 * since fallocate and buffered zero writes are not durable by themselves. */
enum zero_step { ZS_ZERO_RANGE, ZS_PUNCH, ZS_WRITE, ZS_SYNC };

struct file_bdev {
	struct nvmg_bdev b;
	int fd;            /* buffered */
	int fd_direct;     /* O_DIRECT, or -1 */
	atomic_bool direct_ok;
	uint32_t dio_align;
	bool is_blk;
	atomic_bool zero_range_ok, punch_ok;
	void *zeros;       /* never written: shared by all reactors */
	char *path;
};

static void file_io_done(struct nvmg_ev *ev, int res, uint32_t flags);
static void zero_step(struct file_bdev *f, struct nvmg_bdev_io *io);

static bool aligned(const struct file_bdev *f, uint64_t off, uint64_t len, const void *buf)
{
	uint64_t a = f->dio_align;

	return !(off % a) && !(len % a) && !((uintptr_t)buf % a);
}

static void prep_rw(struct file_bdev *f, struct nvmg_bdev_io *io)
{
	struct io_uring_sqe *sqe = nvmg_reactor_sqe(io->reactor);
	uint64_t off = io->offset + io->done, len = io->len - io->done;
	uint8_t *buf = (uint8_t *)io->buf + io->done;
	int fd = f->fd;

	if (f->fd_direct >= 0 && atomic_load_explicit(&f->direct_ok, memory_order_relaxed) &&
	    aligned(f, off, len, buf))
		fd = f->fd_direct;
	/* A pool buffer (the transports' data buffers) is in the reactor's
	 * registered arena: the kernel skips mapping its pages per I/O. */
	int fixed = nvmg_reactor_fixed_buf(io->reactor, buf, len);

	if (io->op == NVMG_BDEV_READ && fixed >= 0)
		io_uring_prep_read_fixed(sqe, fd, buf, (unsigned)len, off, fixed);
	else if (io->op == NVMG_BDEV_READ)
		io_uring_prep_read(sqe, fd, buf, (unsigned)len, off);
	else if (fixed >= 0)
		io_uring_prep_write_fixed(sqe, fd, buf, (unsigned)len, off, fixed);
	else
		io_uring_prep_write(sqe, fd, buf, (unsigned)len, off);
	/* FUA: the data must be on stable media before we complete. */
	if (io->fua)
		sqe->rw_flags = RWF_DSYNC;
	io->priv.file.direct = fd == f->fd_direct;
	io_uring_sqe_set_data(sqe, &io->ev);
}

static void prep_zero(struct file_bdev *f, struct nvmg_bdev_io *io)
{
	struct io_uring_sqe *sqe;
	uint64_t off = io->offset + io->done, len = io->len - io->done;

	if (io->priv.file.zero_step == ZS_WRITE) {
		sqe = nvmg_reactor_sqe(io->reactor);
		io_uring_prep_write(sqe, f->fd, f->zeros, (unsigned)(len < ZERO_BUF_SIZE ? len : ZERO_BUF_SIZE), off);
		io_uring_sqe_set_data(sqe, &io->ev);
		return;
	}
	int mode = io->priv.file.zero_step == ZS_ZERO_RANGE ? FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE
					      : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	if (!nvmg_reactor_features(io->reactor)->fallocate) {
		/* Pre-5.6 kernels: no io_uring fallocate, do it inline. */
		int ret = fallocate(f->fd, mode, (off_t)off, (off_t)len) ? -errno : 0;

		io->ev.fn(&io->ev, ret ? ret : 0, 0);
		return;
	}
	sqe = nvmg_reactor_sqe(io->reactor);
	io_uring_prep_fallocate(sqe, f->fd, mode, off, len);
	io_uring_sqe_set_data(sqe, &io->ev);
}

/* Write Zeroes and Deallocate share one ladder: the cheapest call that
 * guarantees zeros on read, down to writing zeros. */
static void zero_step(struct file_bdev *f, struct nvmg_bdev_io *io)
{
	while (io->priv.file.zero_step == ZS_ZERO_RANGE && !atomic_load(&f->zero_range_ok))
		io->priv.file.zero_step = ZS_PUNCH;
	while (io->priv.file.zero_step == ZS_PUNCH && !atomic_load(&f->punch_ok))
		io->priv.file.zero_step = ZS_WRITE;
	prep_zero(f, io);
}

static void file_io_done(struct nvmg_ev *ev, int res, uint32_t flags)
{
	struct nvmg_bdev_io *io = nvmg_container_of(ev, struct nvmg_bdev_io, ev);
	struct file_bdev *f = (struct file_bdev *)io->bdev;

	(void)flags;
	switch (io->op) {
	case NVMG_BDEV_READ:
	case NVMG_BDEV_WRITE:
		if (res == -EAGAIN || res == -EINTR) {
			prep_rw(f, io);
			return;
		}
		if (res == -EINVAL && io->priv.file.direct) {
			/* The file system refused our alignment: go buffered. */
			log_warn("%s: O_DIRECT refused, using buffered I/O", f->path);
			atomic_store(&f->direct_ok, false);
			prep_rw(f, io);
			return;
		}
		if (res < 0) {
			io->complete(io, res);
			return;
		}
		if (res == 0 && io->op == NVMG_BDEV_READ) {
			/* Past the end of a file that shrank under us: zeros. */
			memset((uint8_t *)io->buf + io->done, 0, io->len - io->done);
			res = (int)(io->len - io->done);
		} else if (res == 0) {
			io->complete(io, -EIO);
			return;
		}
		io->done += (uint64_t)res;
		if (io->done < io->len) {
			prep_rw(f, io);
			return;
		}
		io->complete(io, 0);
		return;
	case NVMG_BDEV_FLUSH:
		io->complete(io, res < 0 ? res : 0);
		return;
	case NVMG_BDEV_WRITE_ZEROES:
	case NVMG_BDEV_DEALLOCATE:
		if (io->priv.file.zero_step == ZS_SYNC) {
			io->complete(io, res < 0 ? res : 0);
			return;
		}
		if (io->priv.file.zero_step != ZS_WRITE && (res == -EOPNOTSUPP || res == -EINVAL || res == -ENODEV)) {
			/* Only "not supported" is remembered; EINVAL may be about
			 * this one range, so it falls back for this request only. */
			if (res != -EINVAL && io->priv.file.zero_step == ZS_ZERO_RANGE)
				atomic_store(&f->zero_range_ok, false);
			else if (res != -EINVAL)
				atomic_store(&f->punch_ok, false);
			io->priv.file.zero_step++;
			zero_step(f, io);
			return;
		}
		if (res < 0) {
			io->complete(io, res);
			return;
		}
		if (io->priv.file.zero_step == ZS_WRITE) {
			io->done += (uint64_t)res;
			if (res > 0 && io->done < io->len) {
				prep_zero(f, io);
				return;
			}
			if (res == 0) {
				io->complete(io, -EIO);
				return;
			}
		}
		if (io->fua) {
			struct io_uring_sqe *sqe = nvmg_reactor_sqe(io->reactor);

			io->priv.file.zero_step = ZS_SYNC;
			io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
			io_uring_sqe_set_data(sqe, &io->ev);
			return;
		}
		io->complete(io, 0);
		return;
	}
}

static void file_submit(struct nvmg_bdev *b, struct nvmg_reactor *r, struct nvmg_bdev_io *io)
{
	struct file_bdev *f = (struct file_bdev *)b;
	struct io_uring_sqe *sqe;

	io->ev.fn = file_io_done;
	io->done = 0;
	if (b->readonly && io->op != NVMG_BDEV_READ && io->op != NVMG_BDEV_FLUSH) {
		io->complete(io, -EROFS);
		return;
	}
	switch (io->op) {
	case NVMG_BDEV_READ:
	case NVMG_BDEV_WRITE:
		prep_rw(f, io);
		return;
	case NVMG_BDEV_FLUSH:
		sqe = nvmg_reactor_sqe(r);
		io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data(sqe, &io->ev);
		return;
	case NVMG_BDEV_WRITE_ZEROES:
		io->priv.file.zero_step = ZS_ZERO_RANGE;
		zero_step(f, io);
		return;
	case NVMG_BDEV_DEALLOCATE:
		/* A hole reads as zeros and gives the space back. */
		io->priv.file.zero_step = ZS_PUNCH;
		zero_step(f, io);
		return;
	}
}

static int file_flush_sync(struct nvmg_bdev *b)
{
	struct file_bdev *f = (struct file_bdev *)b;

	if (b->readonly)
		return 0;
	return fdatasync(f->fd) ? -errno : 0;
}

static void file_close(struct nvmg_bdev *b)
{
	struct file_bdev *f = (struct file_bdev *)b;

	if (f->fd_direct >= 0)
		close(f->fd_direct);
	close(f->fd);
	free(f->zeros);
	free(f->path);
	free(f);
}

static int file_resize(struct nvmg_bdev *b, uint64_t size)
{
	struct file_bdev *f = nvmg_container_of(b, struct file_bdev, b);
	uint64_t now;
	struct stat st;

	if (size && f->is_blk)
		return -EOPNOTSUPP; /* a device's size is the device's: grow it, then re-read */
	if (size && (b->readonly || ftruncate(f->fd, (off_t)size)))
		return b->readonly ? -EROFS : -errno;
	if (f->is_blk) {
		if (ioctl(f->fd, BLKGETSIZE64, &now))
			return -errno;
	} else {
		if (fstat(f->fd, &st))
			return -errno;
		now = (uint64_t)st.st_size;
	}
	__atomic_store_n(&b->size, now, __ATOMIC_RELAXED);
	return 0;
}

static const struct nvmg_bdev_ops file_ops = {
	.name = "file",
	.resize = file_resize,
	.submit = file_submit,
	.flush_sync = file_flush_sync,
	.close = file_close,
};

static uint32_t probe_dio_align(int fd, bool is_blk)
{
#ifdef STATX_DIOALIGN
	struct statx stx;

	/* Linux 6.1+ reports the real O_DIRECT alignment. */
	if (!statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) && (stx.stx_mask & STATX_DIOALIGN) &&
	    stx.stx_dio_offset_align)
		return stx.stx_dio_offset_align > stx.stx_dio_mem_align ? stx.stx_dio_offset_align
									  : stx.stx_dio_mem_align;
#endif
	if (is_blk) {
		int ssz = 0;

		if (!ioctl(fd, BLKSSZGET, &ssz) && ssz > 0)
			return (uint32_t)ssz;
	}
	return 4096; /* safe for any file system */
}

int nvmg_bdev_file_open(const char *path, bool readonly, struct nvmg_bdev **out)
{
	struct file_bdev *f = calloc(1, sizeof(*f));
	int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	int ret;

	if (!f)
		return -ENOMEM;
	f->fd = f->fd_direct = -1;
	f->path = strdup(path);
	f->fd = open(path, flags);
	if (f->fd < 0) {
		ret = -errno;
		goto fail;
	}
	if (fstat(f->fd, &st)) {
		ret = -errno;
		goto fail;
	}
	if (S_ISREG(st.st_mode)) {
		f->b.size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		f->is_blk = true;
		if (ioctl(f->fd, BLKGETSIZE64, &f->b.size)) {
			ret = -errno;
			goto fail;
		}
	} else {
		ret = -EINVAL; /* neither a regular file nor a block device */
		goto fail;
	}
	f->fd_direct = open(path, flags | O_DIRECT);
	atomic_init(&f->direct_ok, f->fd_direct >= 0);
	f->dio_align = probe_dio_align(f->fd, f->is_blk);
	f->b.block_size = 1;
	if (f->is_blk) {
		int ssz = 0;

		if (!ioctl(f->fd, BLKSSZGET, &ssz) && ssz > 0)
			f->b.block_size = (uint32_t)ssz;
	}
	f->zeros = calloc(1, ZERO_BUF_SIZE);
	if (!f->zeros) {
		ret = -ENOMEM;
		goto fail;
	}
	atomic_init(&f->zero_range_ok, true);
	atomic_init(&f->punch_ok, true);
	f->b.ops = &file_ops;
	f->b.readonly = readonly;
	f->b.volatile_cache = !readonly;
	f->b.dealloc_zeroes = true; /* the fallback ladder ends in writing zeros */
	*out = &f->b;
	return 0;
fail:
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	free(f);
	return ret;
}
