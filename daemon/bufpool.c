#include <stdlib.h>
#include "daemon/bufpool.h"

/* Keep at most this many bytes idle per class: enough for a full queue
 * of large I/O without pinning memory forever after a burst. */
#define IDLE_BYTES_PER_CLASS (64u << 20)

static int class_of(size_t len)
{
	int c = 0;

	while (((size_t)1 << (c + NVMG_BUF_MIN_SHIFT)) < len)
		c++;
	return c < NVMG_BUF_CLASSES ? c : -1;
}

void *nvmg_buf_get(struct nvmg_bufpool *p, size_t len)
{
	int c = class_of(len ? len : 1);
	void *buf;

	if (c < 0)
		return NULL;
	if (p->free[c]) {
		buf = p->free[c];
		p->free[c] = p->free[c]->next;
		p->nr_free[c]--;
		return buf;
	}
	if (posix_memalign(&buf, 4096, (size_t)1 << (c + NVMG_BUF_MIN_SHIFT)))
		return NULL;
	return buf;
}

void nvmg_buf_put(struct nvmg_bufpool *p, void *buf, size_t len)
{
	int c = class_of(len ? len : 1);
	struct nvmg_buf_free *f = buf;

	if (!buf)
		return;
	if (c < 0 || ((size_t)p->nr_free[c] + 1) << (c + NVMG_BUF_MIN_SHIFT) > IDLE_BYTES_PER_CLASS) {
		free(buf);
		return;
	}
	f->next = p->free[c];
	p->free[c] = f;
	p->nr_free[c]++;
}

void nvmg_bufpool_drain(struct nvmg_bufpool *p)
{
	for (int c = 0; c < NVMG_BUF_CLASSES; c++) {
		while (p->free[c]) {
			struct nvmg_buf_free *f = p->free[c];

			p->free[c] = f->next;
			free(f);
		}
		p->nr_free[c] = 0;
	}
}
