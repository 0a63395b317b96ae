/* Provided-buffer ring: see lib/bufring.h. liburing 2.3 (Debian 12) has
 * the register call but not io_uring_setup_buf_ring (2.4), so the ring's
 * memory is mapped here. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "lib/bufring.h"

int nvmg_bufring_init(struct nvmg_bufring *b, struct io_uring *ring, uint16_t bgid, uint32_t nbufs,
		      uint32_t buf_size)
{
	struct io_uring_buf_reg reg;
	size_t ring_size = nbufs * sizeof(struct io_uring_buf);
	int ret;

	memset(b, 0, sizeof(*b));
	if (!nbufs || nbufs > 32768 || (nbufs & (nbufs - 1)))
		return -EINVAL;
	/* Page-aligned, as the kernel wants the ring. */
	b->br = mmap(NULL, ring_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->br == MAP_FAILED) {
		b->br = NULL;
		return -ENOMEM;
	}
	b->bufs = mmap(NULL, (size_t)nbufs * buf_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (b->bufs == MAP_FAILED) {
		munmap(b->br, ring_size);
		b->br = NULL;
		b->bufs = NULL;
		return -ENOMEM;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uintptr_t)b->br;
	reg.ring_entries = nbufs;
	reg.bgid = bgid;
	ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret) {
		munmap(b->bufs, (size_t)nbufs * buf_size);
		munmap(b->br, ring_size);
		memset(b, 0, sizeof(*b));
		return ret < 0 ? ret : -EINVAL;
	}
	b->nbufs = nbufs;
	b->buf_size = buf_size;
	b->bgid = bgid;
	io_uring_buf_ring_init(b->br);
	for (uint32_t i = 0; i < nbufs; i++)
		io_uring_buf_ring_add(b->br, nvmg_bufring_buf(b, (uint16_t)i), buf_size, (uint16_t)i,
				      io_uring_buf_ring_mask(nbufs), (int)i);
	io_uring_buf_ring_advance(b->br, (int)nbufs);
	return 0;
}

void nvmg_bufring_fini(struct nvmg_bufring *b, struct io_uring *ring)
{
	if (!b->br)
		return;
	io_uring_unregister_buf_ring(ring, b->bgid);
	munmap(b->bufs, (size_t)b->nbufs * b->buf_size);
	munmap(b->br, b->nbufs * sizeof(struct io_uring_buf));
	memset(b, 0, sizeof(*b));
}
