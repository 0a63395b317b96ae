/* Data buffers for commands, recycled per reactor so the hot path does no
 * allocation once warm. Power-of-two classes from 4 KiB to 1 MiB, page
 * aligned (O_DIRECT needs it). Single-threaded: each reactor owns one. */
#ifndef NVMG_BUFPOOL_H
#define NVMG_BUFPOOL_H

#include <stddef.h>

#define NVMG_BUF_MIN_SHIFT 12
#define NVMG_BUF_MAX_SHIFT 20
#define NVMG_BUF_CLASSES (NVMG_BUF_MAX_SHIFT - NVMG_BUF_MIN_SHIFT + 1)

struct nvmg_buf_free {
	struct nvmg_buf_free *next;
};

struct nvmg_bufpool {
	struct nvmg_buf_free *free[NVMG_BUF_CLASSES];
	unsigned nr_free[NVMG_BUF_CLASSES];
};

/* Returns a buffer of at least len bytes (len <= 1 MiB) or NULL. */
void *nvmg_buf_get(struct nvmg_bufpool *p, size_t len);
void nvmg_buf_put(struct nvmg_bufpool *p, void *buf, size_t len);
void nvmg_bufpool_drain(struct nvmg_bufpool *p);

#endif
