/* RAM backend: anonymous memory, completes inline. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "nvme/bdev/bdev.h"

struct mem_bdev {
	struct nvmg_bdev b;
	uint8_t *base;
};

static void mem_zero(struct mem_bdev *m, uint64_t off, uint64_t len)
{
	const uint64_t pg = 4096;
	uint64_t start = (off + pg - 1) & ~(pg - 1), end = (off + len) & ~(pg - 1);

	/* Whole pages go back to the kernel and read as zeros again. */
	if (end > start + pg) {
		memset(m->base + off, 0, start - off);
		if (madvise(m->base + start, end - start, MADV_DONTNEED))
			memset(m->base + start, 0, end - start);
		memset(m->base + end, 0, off + len - end);
	} else {
		memset(m->base + off, 0, len);
	}
}

static void mem_submit(struct nvmg_bdev *b, struct nvmg_reactor *r, struct nvmg_bdev_io *io)
{
	struct mem_bdev *m = (struct mem_bdev *)b;
	int res = 0;

	(void)r;
	switch (io->op) {
	case NVMG_BDEV_READ:
		/* Lent, the bytes go to the wire from here (a zero-copy send
		 * reads them until the kernel's notification): a write to the
		 * same blocks racing the read may change what the host gets,
		 * as with the Linux target on a RAM disk. Overlapping reads and
		 * writes have no defined order in NVMe, so a host that issues
		 * them gets either data; one that waits for the write first
		 * always gets the new data. */
		if (io->lend)
			io->buf = m->base + io->offset;
		else
			memcpy(io->buf, m->base + io->offset, io->len);
		break;
	case NVMG_BDEV_WRITE:
		if (b->readonly)
			res = -EROFS;
		else
			memcpy(m->base + io->offset, io->buf, io->len);
		break;
	case NVMG_BDEV_WRITE_ZEROES:
	case NVMG_BDEV_DEALLOCATE:
		if (b->readonly)
			res = -EROFS;
		else
			mem_zero(m, io->offset, io->len);
		break;
	case NVMG_BDEV_FLUSH:
		break;
	}
	io->done = io->len;
	io->complete(io, res);
}

static void mem_close(struct nvmg_bdev *b)
{
	struct mem_bdev *m = (struct mem_bdev *)b;

	munmap(m->base, b->size);
	free(m);
}

static const struct nvmg_bdev_ops mem_ops = {
	.name = "mem",
	.submit = mem_submit,
	.close = mem_close,
};

int nvmg_bdev_mem_open(uint64_t size, struct nvmg_bdev **out)
{
	struct mem_bdev *m;

	if (!size)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	/* NORESERVE: pages are only backed once written. */
	m->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (m->base == MAP_FAILED) {
		free(m);
		return -ENOMEM;
	}
	m->b.ops = &mem_ops;
	m->b.size = size;
	m->b.block_size = 1;
	m->b.volatile_cache = false;
	m->b.dealloc_zeroes = true;
	*out = &m->b;
	return 0;
}
