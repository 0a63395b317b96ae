#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "lib/bufpool.h"

/* ASan cannot see arena buffers as heap: poison what is not handed out,
 * so the sanitizer build still catches overruns into pooled memory. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Keep at most this many bytes idle per class: enough for a full queue
 * of large I/O without pinning memory forever after a burst. */
#define IDLE_BYTES_PER_CLASS (64u << 20)

static int class_of(size_t len)
{
	int c = 0;

	/* First, so the shift below stays under 64 bits for any len. */
	if (len > (size_t)1 << NVMG_BUF_MAX_SHIFT)
		return -1;
	while (((size_t)1 << (c + NVMG_BUF_MIN_SHIFT)) < len)
		c++;
	return c;
}

static int arena_init(struct nvmg_bufpool *p)
{
	void *a;

	if (p->arena)
		return 0;
	if (p->arena_failed)
		return -ENOMEM;
	a = mmap(NULL, NVMG_BUF_ARENA_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (a == MAP_FAILED) {
		p->arena_failed = 1;
		return -ENOMEM;
	}
	p->arena = a;
	p->arena_used = 0;
	POISON(a, NVMG_BUF_ARENA_SIZE);
	return 0;
}

static int in_arena(const struct nvmg_bufpool *p, const void *buf)
{
	return p->arena && (const unsigned char *)buf >= p->arena &&
	       (const unsigned char *)buf < p->arena + NVMG_BUF_ARENA_SIZE;
}

int nvmg_bufpool_holds(const struct nvmg_bufpool *p, const void *buf, size_t len)
{
	const unsigned char *b = buf;

	return p->arena && b >= p->arena && len <= NVMG_BUF_ARENA_SIZE &&
	       (size_t)(b - p->arena) <= NVMG_BUF_ARENA_SIZE - len;
}

int nvmg_bufpool_arena(struct nvmg_bufpool *p, void **base, size_t *size)
{
	int ret = arena_init(p);

	if (ret)
		return ret;
	*base = p->arena;
	*size = NVMG_BUF_ARENA_SIZE;
	return 0;
}

void *nvmg_buf_get(struct nvmg_bufpool *p, size_t len)
{
	int c = class_of(len ? len : 1);
	void *buf;

	if (c < 0)
		return NULL;
	if (!SLIST_EMPTY(&p->free[c])) {
		buf = SLIST_FIRST(&p->free[c]);
		SLIST_REMOVE_HEAD(&p->free[c], link);
		p->nr_free[c]--;
		UNPOISON(buf, (size_t)1 << (c + NVMG_BUF_MIN_SHIFT));
		return buf;
	}
	size_t sz = (size_t)1 << (c + NVMG_BUF_MIN_SHIFT);

	/* Class sizes are multiples of 4 KiB: the bump stays page aligned. */
	if (!arena_init(p) && NVMG_BUF_ARENA_SIZE - p->arena_used >= sz) {
		buf = p->arena + p->arena_used;
		p->arena_used += sz;
		UNPOISON(buf, sz);
		return buf;
	}
	if (posix_memalign(&buf, 4096, sz))
		return NULL;
	return buf;
}

void nvmg_buf_put(struct nvmg_bufpool *p, void *buf, size_t len)
{
	int c = class_of(len ? len : 1);
	struct nvmg_buf_free *f = buf;
	int arena = in_arena(p, buf);

	if (!buf)
		return;
	/* Arena buffers cannot go back to malloc: they stay pooled (the
	 * arena bounds them). */
	if (!arena &&
	    (c < 0 || ((size_t)p->nr_free[c] + 1) << (c + NVMG_BUF_MIN_SHIFT) > IDLE_BYTES_PER_CLASS)) {
		free(buf);
		return;
	}
	SLIST_INSERT_HEAD(&p->free[c], f, link);
	p->nr_free[c]++;
	if (arena)
		POISON((char *)buf + sizeof(*f), ((size_t)1 << (c + NVMG_BUF_MIN_SHIFT)) - sizeof(*f));
}

void nvmg_bufpool_drain(struct nvmg_bufpool *p)
{
	for (int c = 0; c < NVMG_BUF_CLASSES; c++) {
		struct nvmg_buf_free *f;

		while ((f = SLIST_FIRST(&p->free[c]))) {
			SLIST_REMOVE_HEAD(&p->free[c], link);
			if (!in_arena(p, f))
				free(f);
		}
		p->nr_free[c] = 0;
	}
	if (p->arena) {
		UNPOISON(p->arena, NVMG_BUF_ARENA_SIZE);
		munmap(p->arena, NVMG_BUF_ARENA_SIZE);
	}
	p->arena = NULL;
	p->arena_used = 0;
}
