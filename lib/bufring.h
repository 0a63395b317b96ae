/* A provided-buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19+): buffers
 * the kernel picks from for receives that select a buffer (multishot
 * recv). One per reactor, its thread only; the reactor owns it
 * (nvmg_reactor_bufring) and frees it with its ring. */
#ifndef NVMG_BUFRING_H
#define NVMG_BUFRING_H

#include <stdint.h>
#include <liburing.h>

struct nvmg_bufring {
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	uint32_t nbufs, buf_size;
	uint16_t bgid;
};

/* nbufs a power of two up to 32768. Returns 0 or -errno (the kernel has
 * no buffer rings: -EINVAL). */
int nvmg_bufring_init(struct nvmg_bufring *b, struct io_uring *ring, uint16_t bgid, uint32_t nbufs,
		      uint32_t buf_size);
void nvmg_bufring_fini(struct nvmg_bufring *b, struct io_uring *ring);

static inline void *nvmg_bufring_buf(const struct nvmg_bufring *b, uint16_t bid)
{
	return b->bufs + (size_t)bid * b->buf_size;
}

/* Give buffer bid back to the kernel at once: a dry ring stops every
 * multishot receive of the reactor. */
static inline void nvmg_bufring_put(struct nvmg_bufring *b, uint16_t bid)
{
	io_uring_buf_ring_add(b->br, nvmg_bufring_buf(b, bid), b->buf_size, bid,
			      io_uring_buf_ring_mask(b->nbufs), 0);
	io_uring_buf_ring_advance(b->br, 1);
}

#endif
