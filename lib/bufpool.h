/* Data buffers for commands, recycled per reactor so the hot path does no
 * allocation once warm. Power-of-two classes from 4 KiB to 1 MiB, page
 * aligned (O_DIRECT needs it). Single-threaded: each reactor owns one. */
#ifndef NVMG_BUFPOOL_H
#define NVMG_BUFPOOL_H

#include <stddef.h>
#include <sys/queue.h>

#define NVMG_BUF_MIN_SHIFT 12
#define NVMG_BUF_MAX_SHIFT 20
#define NVMG_BUF_CLASSES (NVMG_BUF_MAX_SHIFT - NVMG_BUF_MIN_SHIFT + 1)

/* Lives in the first bytes of a free buffer. */
struct nvmg_buf_free {
	SLIST_ENTRY(nvmg_buf_free) link;
};

/* New buffers are carved from one arena per pool while it lasts, so a DMA
 * backend (nvme/pcie) can map the arena once and move data between the
 * socket's buffer and the device with no copy. Pages are only touched
 * when used, until a backend maps (and so pins) the arena. */
#define NVMG_BUF_ARENA_SIZE (32u << 20)

struct nvmg_bufpool {
	SLIST_HEAD(, nvmg_buf_free) free[NVMG_BUF_CLASSES]; /* zeroed = empty */
	unsigned nr_free[NVMG_BUF_CLASSES];
	unsigned char *arena;    /* NVMG_BUF_ARENA_SIZE bytes, or NULL */
	size_t arena_used;
	int arena_failed;
};

/* Returns a buffer of at least len bytes (len <= 1 MiB) or NULL. */
void *nvmg_buf_get(struct nvmg_bufpool *p, size_t len);
void nvmg_buf_put(struct nvmg_bufpool *p, void *buf, size_t len);
void nvmg_bufpool_drain(struct nvmg_bufpool *p);
/* The pool's arena (created on first use): 0, or -ENOMEM. */
int nvmg_bufpool_arena(struct nvmg_bufpool *p, void **base, size_t *size);
/* Whether [buf, buf + len) lies in the arena (a buffer handed out there,
 * not one of the malloc'ed ones beyond it). */
int nvmg_bufpool_holds(const struct nvmg_bufpool *p, const void *buf, size_t len);

#endif
