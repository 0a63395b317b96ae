/* The per-reactor I/O loop. Backends may complete inside submit (RAM),
 * so completions only queue their slot and one non-reentrant kick loop
 * submits: the stack never grows with the number of I/Os. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "tools/bdev-perf/bdev_perf.h"

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: cheap, and good enough to spread offsets. */
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Verify data: every 8-byte word names its byte offset and the write's
 * seed, so a misplaced, stale or torn block is caught. */
static void pattern_fill(uint64_t *w, uint32_t bs, uint64_t off, uint64_t seed)
{
	for (uint32_t i = 0; i < bs / 8; i++)
		w[i] = (off + 8ull * i) ^ seed;
}

static bool pattern_ok(const uint64_t *w, uint32_t bs, uint64_t off, uint64_t seed)
{
	for (uint32_t i = 0; i < bs / 8; i++)
		if (w[i] != ((off + 8ull * i) ^ seed))
			return false;
	return true;
}

static void slot_done(struct nvmg_bdev_io *io, int res);

static uint64_t pick_block(struct bp_job *j, struct bp_slot *s)
{
	uint64_t blk;

	switch (j->o->wl) {
	case BP_READ:
	case BP_WRITE:
		blk = j->next_blk++;
		if (j->next_blk >= j->nblocks)
			j->next_blk = 0;
		return blk;
	case BP_VERIFY: {
		/* Each slot of each job owns a stripe of blocks, so no two
		 * commands in flight ever touch the same block. */
		uint64_t g = (uint64_t)j->id * j->o->qd + s->idx, n = (uint64_t)j->nr_jobs * j->o->qd;

		return g + n * (rng_next(&j->rng) % (j->nblocks / n));
	}
	default:
		return rng_next(&j->rng) % j->nblocks;
	}
}

static void issue(struct bp_job *j, struct bp_slot *s, enum nvmg_bdev_op op, uint64_t off)
{
	struct nvmg_bdev_io *io = &s->io;

	memset(io, 0, sizeof(*io));
	io->op = op;
	io->offset = off;
	io->len = j->o->bs;
	io->buf = s->buf;
	io->complete = slot_done;
	s->start_ns = nvmg_now_ns();
	j->outstanding++;
	nvmg_bdev_submit(j->b, j->r, io);
}

static void issue_next(struct bp_job *j, struct bp_slot *s)
{
	uint64_t off = pick_block(j, s) * j->o->bs;

	switch (j->o->wl) {
	case BP_RANDREAD:
	case BP_READ:
		issue(j, s, NVMG_BDEV_READ, off);
		break;
	case BP_VERIFY:
		s->seed = rng_next(&j->rng);
		s->verify_read = false;
		pattern_fill(s->buf, j->o->bs, off, s->seed);
		issue(j, s, NVMG_BDEV_WRITE, off);
		break;
	default:
		issue(j, s, NVMG_BDEV_WRITE, off);
		break;
	}
}

static void finish(struct bp_job *j)
{
	struct nvmg_bufpool *pool = nvmg_reactor_bufpool(j->r);

	j->finished = true;
	j->t_done_ns = nvmg_now_ns();
	/* Back to the pool on its own thread (bufpools are not shared). */
	for (unsigned i = 0; i < j->o->qd; i++)
		nvmg_buf_put(pool, j->slots[i].buf, j->o->bs);
	sem_post(j->done);
}

static bool stopping(struct bp_job *j)
{
	return j->err || !j->warm || atomic_load_explicit(j->stop, memory_order_relaxed) ||
	       nvmg_now_ns() >= j->end_ns;
}

static void kick(struct bp_job *j)
{
	if (j->in_kick || j->finished)
		return;
	j->in_kick = true;
	while (!SLIST_EMPTY(&j->ready) && !stopping(j)) {
		struct bp_slot *s = SLIST_FIRST(&j->ready);

		SLIST_REMOVE_HEAD(&j->ready, ready);
		issue_next(j, s);
	}
	j->in_kick = false;
	if (!j->outstanding && stopping(j))
		finish(j);
}

static void fail(struct bp_job *j, int res, uint64_t off)
{
	if (!j->err) {
		j->err = res;
		j->err_off = off;
	}
}

static void slot_done(struct nvmg_bdev_io *io, int res)
{
	struct bp_slot *s = nvmg_container_of(io, struct bp_slot, io);
	struct bp_job *j = s->job;
	uint64_t now = nvmg_now_ns();

	j->outstanding--;
	if (!j->warm) {
		/* The warm-up I/O (the PCIe queue pair is created on a
		 * reactor's first I/O, with admin commands): not counted. */
		if (res) {
			fail(j, res, io->offset);
			finish(j);
			return;
		}
		j->warm = true;
		j->t0_ns = now;
		j->end_ns = now + (uint64_t)j->o->secs * 1000000000ull;
		for (unsigned i = 0; i < j->o->qd; i++) {
			SLIST_INSERT_HEAD(&j->ready, &j->slots[i], ready);
		}
		kick(j);
		return;
	}
	if (res) {
		fail(j, res, io->offset);
	} else {
		hist_add(&j->hist, now - s->start_ns);
		j->ios++;
		j->bytes += io->len;
		if (j->o->wl == BP_VERIFY && !s->verify_read && !stopping(j)) {
			/* Read back what was just written, into a scrambled buffer. */
			s->verify_read = true;
			memset(s->buf, 0xa5, j->o->bs);
			issue(j, s, NVMG_BDEV_READ, io->offset);
			return;
		}
		if (j->o->wl == BP_VERIFY && s->verify_read &&
		    !pattern_ok(s->buf, j->o->bs, io->offset, s->seed))
			fail(j, -EILSEQ, io->offset);
	}
	SLIST_INSERT_HEAD(&j->ready, s, ready);
	kick(j);
}

void bp_job_start(void *arg)
{
	struct bp_job *j = arg;
	struct nvmg_bufpool *pool = nvmg_reactor_bufpool(j->r);

	hist_init(&j->hist);
	j->next_blk = j->nblocks / j->nr_jobs * j->id;
	j->rng = 0x9e3779b97f4a7c15ull * (j->id + 1) ^ nvmg_now_ns();
	/* The reactor's pool: its arena is what the PCIe driver maps for
	 * the device, so these buffers are DMA'd in place, as the daemon's. */
	for (unsigned i = 0; i < j->o->qd; i++) {
		j->slots[i].job = j;
		j->slots[i].idx = i;
		j->slots[i].buf = nvmg_buf_get(pool, j->o->bs);
		if (!j->slots[i].buf) {
			fail(j, -ENOMEM, 0);
			finish(j);
			return;
		}
		memset(j->slots[i].buf, 0, j->o->bs);
	}
	issue(j, &j->slots[0], NVMG_BDEV_READ, 0);
}
