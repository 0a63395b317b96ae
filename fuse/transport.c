/* The FUSE front end as an NVMe transport.
 *
 * Each subsystem gets a local controller (nvmg_ctrl_create_local) with one
 * I/O queue per reactor. A FUSE worker thread turns a request into an op,
 * splits it at stripe boundaries into commands, and hands each command to
 * the reactor that owns its stripe through a lock-free inbox (and an
 * eventfd, when that reactor may be waiting); the reactor runs the command through nvmg_req_init() and
 * req->execute() like any transport, and the core's completion comes back
 * through queue_response(). The last command of an op replies to FUSE.
 *
 * Unaligned writes are read-modify-write: the partial first and last
 * blocks are read and merged before the whole blocks are written. A
 * block's writes land on its stripe's reactor, which orders them by
 * itself: a command that rewrites bytes it was not given waits for every
 * overlapping write started before it, and later overlapping writes wait
 * for it. Aligned writes never wait for each other. On the io_uring path
 * a whole-block write may instead run on the reactor it arrived on; then
 * it passes its stripe's gate (gate.c), which RMWs hold while they run.
 *
 * No allocation on the hot path: ops and their commands are preallocated,
 * an op keeps its data buffer between uses (grown, rarely, by the worker
 * that owns it then), and RMW scratch blocks come from the reactor's
 * bufpool on the reactor's own thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fuse.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "lib/log.h"
#include "lib/reactor.h"
#include "fuse/internal.h"

TAILQ_HEAD(fuse_cmd_list, fuse_cmd);

struct fuse_reactor {
	struct nvmg_fuse *fs;
	struct nvmg_reactor *r;
	_Atomic(struct fuse_cmd *) inbox; /* pushed by any thread, taken whole */
	/* False only while the reactor is in a loop turn that will end with
	 * run_ready(), which looks at the inbox: a push then needs no ring. */
	atomic_bool asleep;
	int efd;
	uint64_t efd_val;
	struct nvmg_ev efd_ev;
	atomic_bool stopping;
	bool armed;
	sem_t stopped;
	/* The reactor's thread only: */
	STAILQ_HEAD(, fuse_cmd) ready;
	struct nvmg_defer run;
	struct fuse_cmd_list writes;          /* write commands started, not finished */
	struct fuse_cmd_list waits;           /* waiting for an overlapping one, FIFO */
	STAILQ_HEAD(, fuse_cmd) drains;       /* RMWs waiting for away writes to leave */
	atomic_bool kicked;                   /* kick sent, not yet run */
	struct nvmg_msg kick;                 /* recheck drains: an away write left */
};

static void run_ready(struct nvmg_defer *d);
static void ready_add(struct fuse_reactor *fr, struct fuse_cmd *c);

/* ------------------------------------------------------------ op pool */

static struct fuse_op *op_get(struct nvmg_fuse *fs)
{
	struct fuse_op *op;

	pthread_mutex_lock(&fs->pool_lock);
	/* The kernel queues far fewer requests than there are ops; if it
	 * ever does not, the worker waits instead of failing the request. */
	while (!fs->free_ops)
		pthread_cond_wait(&fs->pool_cond, &fs->pool_lock);
	op = fs->free_ops;
	fs->free_ops = op->next_free;
	fs->nr_free_ops--;
	pthread_mutex_unlock(&fs->pool_lock);
	return op;
}

static void op_put(struct fuse_op *op)
{
	struct nvmg_fuse *fs = op->fs;

	op->freq = NULL;
	op->ent = NULL;
	op->inplace = NULL;
	pthread_mutex_lock(&fs->pool_lock);
	op->next_free = fs->free_ops;
	fs->free_ops = op;
	fs->nr_free_ops++;
	pthread_cond_broadcast(&fs->pool_cond);
	pthread_mutex_unlock(&fs->pool_lock);
}

/* Grow the op's buffer; the op is owned by the calling thread. Page
 * aligned so the file backend can use O_DIRECT. Sizes are rounded up so a
 * mix of request sizes settles after a few growths. */
static int op_reserve(struct fuse_op *op, size_t len)
{
	void *p;

	if (op->cap >= len)
		return 0;
	if (len <= (64u << 10)) {
		size_t pow2 = 4096;

		while (pow2 < len)
			pow2 <<= 1;
		len = pow2;
	} else {
		len = (len + (256u << 10) - 1) & ~(size_t)((256u << 10) - 1);
	}
	if (posix_memalign(&p, 4096, len))
		return -ENOMEM;
	free(op->buf);
	op->buf = p;
	op->cap = len;
	return 0;
}

/* The op's data: its own buffer, or an io_uring entry's payload. */
static uint8_t *op_data(const struct fuse_op *op)
{
	return op->inplace ? op->inplace : op->buf;
}

/* ------------------------------------------------------ status, reply */

static int status_errno(uint16_t status)
{
	unsigned sct = (status >> NVME_SCT_SHIFT) & NVME_SCT_MASK, sc = status & NVME_SC_MASK;

	if (!status)
		return 0;
	if (sct == NVME_SCT_GENERIC) {
		switch (sc) {
		case NVME_SC_NS_WRITE_PROTECTED:
			return EROFS;
		case NVME_SC_INVALID_NS:
			return ENXIO; /* removed by a reload while the file was open */
		case NVME_SC_LBA_RANGE:
		case NVME_SC_CAP_EXCEEDED:
			return ENOSPC;
		case NVME_SC_INVALID_OPCODE:
			return EOPNOTSUPP;
		default:
			break;
		}
	}
	return EIO;
}

static void op_finish(struct fuse_op *op)
{
	int err = atomic_load(&op->err);

	if (op->ent) {
		struct fuse_write_out wout = { .size = (uint32_t)op->len };

		if (err)
			nvmg_fuse_uring_reply(op->ent, err, NULL, 0);
		else if (op->kind == FOP_READ)
			nvmg_fuse_uring_reply(op->ent, 0, op_data(op) + (op->off - op->aoff), op->len);
		else if (op->kind == FOP_WRITE)
			nvmg_fuse_uring_reply(op->ent, 0, &wout, sizeof(wout));
		else
			nvmg_fuse_uring_reply(op->ent, 0, NULL, 0);
	} else if (err) {
		fuse_reply_err(op->freq, err);
	} else if (op->kind == FOP_READ) {
		fuse_reply_buf(op->freq, (const char *)op->buf + (op->off - op->aoff), op->len);
	} else if (op->kind == FOP_WRITE) {
		fuse_reply_write(op->freq, op->len);
	} else {
		fuse_reply_err(op->freq, 0);
	}
	op_put(op);
}

/* ------------------------------------------------------------ chunks */

static bool zero_kind(const struct fuse_op *op)
{
	return op->kind == FOP_ZERO || op->kind == FOP_DEALLOC;
}

/* Where the command starting at byte cur ends: at the stripe's end, and
 * for zeroing, also around a partial block so it is a command of its own. */
static uint64_t chunk_end(const struct fuse_op *op, uint64_t cur)
{
	uint64_t lmask = (1ull << op->geo.lba_shift) - 1;
	uint64_t e = (cur / NVMG_FUSE_STRIPE + 1) * NVMG_FUSE_STRIPE;

	if (op->kind == FOP_FLUSH)
		return op->end;
	if (e > op->end)
		e = op->end;
	if (zero_kind(op)) {
		if (cur & lmask) {
			if ((cur | lmask) + 1 < e)
				e = (cur | lmask) + 1;
		} else if ((e & lmask) && (e & ~lmask) > cur) {
			e &= ~lmask;
		}
	}
	return e;
}

static void chunk_setup(struct fuse_op *op, struct fuse_cmd *c, uint64_t cur, uint64_t next)
{
	struct nvmg_fuse *fs = op->fs;
	uint8_t shift = op->geo.lba_shift;
	uint64_t lmask = (1ull << shift) - 1, b0 = cur >> shift, b1 = (next + lmask) >> shift;
	uint64_t stripe = cur / NVMG_FUSE_STRIPE;
	unsigned qi = (unsigned)((stripe + op->geo.nsid) % fs->nr_queues);
	/* On the io_uring path a read up to a stripe runs on the reactor it
	 * arrived on, with no hand-off (4 KiB QD16: about a third of the CPU
	 * per read of going to the stripe's reactor), while a larger one still
	 * spreads its stripes over the reactors (1 MiB: ~20% more throughput
	 * in parallel). Whole-block writes of any size run where they arrived
	 * (daemon CPU per write vs the hand-off, 4 KiB QD16: 0.45-0.65x; 1 MiB
	 * QD4: 0.55-0.85x, the payload is in this CPU's cache) and pass their stripe's
	 * gate (gate.c); read-modify-writes stay on the stripe's reactor,
	 * which orders them. */
	bool here = op->home >= 0 && (unsigned)op->home != qi &&
		    (op->kind == FOP_WRITE || op->len <= NVMG_FUSE_STRIPE);

	c->op = op;
	c->owner = &fs->subs[op->geo.sub].queues[qi];
	c->q = c->owner;
	c->gate = NULL;
	c->away = c->entered = c->held = false;
	c->state = FCS_NEW;
	c->stage = 0;
	c->status = 0;
	c->rmw = false;
	c->tracked = false;
	c->slba = b0;
	c->nlb = (uint32_t)(b1 - b0);
	c->data = NULL;
	c->head_fill = c->tail_fill = 0;
	switch (op->kind) {
	case FOP_READ:
		c->kind = FC_READ;
		c->data = op_data(op) + ((b0 << shift) - op->aoff);
		if (here)
			c->q = &fs->subs[op->geo.sub].queues[op->home];
		break;
	case FOP_WRITE:
		c->kind = FC_WRITE;
		c->data = op_data(op) + ((b0 << shift) - op->aoff);
		c->head_fill = (uint32_t)(cur & lmask);
		c->tail_fill = (next & lmask) ? (uint32_t)(lmask + 1 - (next & lmask)) : 0;
		c->rmw = c->head_fill || c->tail_fill;
		c->away = here && !c->rmw;
		if (c->away)
			c->q = &fs->subs[op->geo.sub].queues[op->home];
		break;
	case FOP_ZERO:
	case FOP_DEALLOC:
		if ((cur | next) & lmask) {
			c->kind = FC_ZPART;
			c->nlb = 1;
			c->zoff = (uint32_t)(cur & lmask);
			c->zlen = (uint32_t)(next - cur);
			c->rmw = true;
		} else {
			/* PUNCH_HOLE promises zeros: Deallocate only where DLFEAT
			 * says deallocated blocks read back as zeros. */
			c->kind = op->kind == FOP_DEALLOC && op->geo.dealloc_zeroes ? FC_DSM : FC_WZ;
		}
		break;
	case FOP_FLUSH:
		c->kind = FC_FLUSH;
		break;
	}
	if (c->away || c->rmw)
		c->gate = nvmg_fuse_gate(fs, op->geo.sub, op->geo.nsid, stripe);
}

/* Claim the next byte range of op for c; any thread. */
static bool chunk_claim(struct fuse_op *op, struct fuse_cmd *c)
{
	uint_fast64_t cur = atomic_load(&op->cursor), next;

	do {
		if (cur >= op->end)
			return false;
		next = chunk_end(op, cur);
	} while (!atomic_compare_exchange_weak(&op->cursor, &cur, next));
	chunk_setup(op, c, cur, next);
	return true;
}

/* ------------------------------------------------------------ handoff */

static void inbox_push(struct fuse_reactor *fr, struct fuse_cmd *c)
{
	struct fuse_cmd *old = atomic_load_explicit(&fr->inbox, memory_order_relaxed);
	uint64_t one = 1;

	do {
		c->lnext = old;
	} while (!atomic_compare_exchange_weak(&fr->inbox, &old, c));
	/* Ring only a reactor that may be waiting, and only once per batch:
	 * one that is awake takes the inbox at the end of its turn, and a
	 * non-empty inbox was rung for already. Push then load, both seq_cst,
	 * against run_ready()'s store then load: one side sees the other. */
	if (!old && atomic_load(&fr->asleep) && write(fr->efd, &one, sizeof(one)) != sizeof(one))
		log_err("FUSE: waking reactor %u: %s", nvmg_reactor_id(fr->r), strerror(errno));
}

/* Reactor thread: move what other threads pushed to the ready list. */
static void inbox_take(struct fuse_reactor *fr)
{
	struct fuse_cmd *list = atomic_exchange(&fr->inbox, NULL), *rev = NULL;

	while (list) { /* pushed newest first: restore arrival order */
		struct fuse_cmd *next = list->lnext;

		list->lnext = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct fuse_cmd *next = rev->lnext;

		ready_add(fr, rev);
		rev = next;
	}
}

/* Reactor thread: we are awake for this turn; run_ready() will look. */
static void awake(struct fuse_reactor *fr)
{
	atomic_store_explicit(&fr->asleep, false, memory_order_relaxed);
	nvmg_reactor_defer(fr->r, &fr->run);
}

/* Reactor thread: run c on this reactor's next pass. */
static void ready_add(struct fuse_reactor *fr, struct fuse_cmd *c)
{
	STAILQ_INSERT_TAIL(&fr->ready, c, rlink);
	nvmg_reactor_defer(fr->r, &fr->run);
}

/* Reactor thread: send c to the reactor of its queue. */
static void route(struct fuse_reactor *from, struct fuse_cmd *c)
{
	if (c->q->fr == from)
		ready_add(from, c);
	else
		inbox_push(c->q->fr, c);
}

static void efd_arm(struct fuse_reactor *fr)
{
	struct io_uring_sqe *sqe = nvmg_reactor_sqe(fr->r);

	io_uring_prep_read(sqe, fr->efd, &fr->efd_val, sizeof(fr->efd_val), 0);
	io_uring_sqe_set_data(sqe, &fr->efd_ev);
}

static void efd_done(struct nvmg_ev *ev, int res, uint32_t flags)
{
	struct fuse_reactor *fr = nvmg_container_of(ev, struct fuse_reactor, efd_ev);

	(void)flags;
	if (res < 0 && res != -EINTR && res != -EAGAIN)
		log_err("FUSE: reactor %u: eventfd read: %s", nvmg_reactor_id(fr->r), strerror(-res));
	if (atomic_load(&fr->stopping)) {
		sem_post(&fr->stopped);
		return;
	}
	efd_arm(fr);
	awake(fr);
}

static void arm_msg(void *arg)
{
	efd_arm(arg);
}

static void barrier_msg(void *arg)
{
	struct fuse_reactor *fr = arg;

	sem_post(&fr->stopped);
}

/* --------------------------------------------------- write ordering */

static bool is_write(const struct fuse_cmd *c)
{
	return c->kind == FC_WRITE || c->kind == FC_ZPART || c->kind == FC_WZ || c->kind == FC_DSM;
}

/* Two writes must not overlap in time where one of them rewrites bytes it
 * was not given: it would put back stale bytes over the other's. */
static bool conflict(const struct fuse_cmd *a, const struct fuse_cmd *b)
{
	/* Same queue on this reactor: same subsystem. */
	return (a->rmw || b->rmw) && a->q == b->q &&
	       a->op->geo.nsid == b->op->geo.nsid && a->slba < b->slba + b->nlb &&
	       b->slba < a->slba + a->nlb;
}

static bool conflicts_before(const struct fuse_cmd_list *list, const struct fuse_cmd *stop,
			     const struct fuse_cmd *c)
{
	const struct fuse_cmd *o;

	TAILQ_FOREACH(o, list, wlink) {
		if (o == stop)
			break;
		if (conflict(o, c))
			return true;
	}
	return false;
}

static void writes_add(struct fuse_reactor *fr, struct fuse_cmd *c)
{
	TAILQ_INSERT_HEAD(&fr->writes, c, wlink);
	c->tracked = true;
}

static void writes_del(struct fuse_reactor *fr, struct fuse_cmd *c)
{
	TAILQ_REMOVE(&fr->writes, c, wlink);
	c->tracked = false;
}

/* Any thread: have fr recheck its RMWs waiting for away writes. */
static void kick(struct fuse_reactor *fr)
{
	if (!atomic_exchange(&fr->kicked, true))
		nvmg_reactor_send(fr->r, &fr->kick);
}

/* Reactor thread: c is admitted to run; an RMW also holds its gate, and
 * waits (false) while writes run away from this reactor on its stripe. */
static bool gate_hold(struct fuse_reactor *fr, struct fuse_cmd *c)
{
	if (!c->rmw)
		return true;
	c->held = true;
	if (nvmg_fuse_gate_hold(c->gate))
		return true;
	STAILQ_INSERT_TAIL(&fr->drains, c, rlink);
	return false;
}

/* An away write left a gate that an RMW of ours holds: start the RMWs
 * whose gate has no away write in any more. */
static void kick_msg(void *arg)
{
	struct fuse_reactor *fr = arg;
	STAILQ_HEAD(, fuse_cmd) still = STAILQ_HEAD_INITIALIZER(still);

	/* Cleared before looking: a leave after this sends another kick. */
	atomic_store(&fr->kicked, false);
	while (!STAILQ_EMPTY(&fr->drains)) {
		struct fuse_cmd *c = STAILQ_FIRST(&fr->drains);

		STAILQ_REMOVE_HEAD(&fr->drains, rlink);
		if (nvmg_fuse_gate_clear(c->gate))
			ready_add(fr, c);
		else
			STAILQ_INSERT_TAIL(&still, c, rlink);
	}
	STAILQ_CONCAT(&fr->drains, &still);
	awake(fr);
}

/* A write finished: start the waiting ones it no longer blocks, in order. */
static void wake_waiters(struct fuse_reactor *fr)
{
	struct fuse_cmd *c, *next;

	for (c = TAILQ_FIRST(&fr->waits); c; c = next) {
		next = TAILQ_NEXT(c, wlink);
		if (conflicts_before(&fr->writes, NULL, c) || conflicts_before(&fr->waits, c, c))
			continue;
		TAILQ_REMOVE(&fr->waits, c, wlink);
		writes_add(fr, c);
		c->state = FCS_RUN;
		if (gate_hold(fr, c))
			ready_add(fr, c);
	}
}

/* ---------------------------------------------------------- commands */

/* The next NVMe command c needs, or false when it is done. */
static bool cmd_next_io(struct fuse_cmd *c, uint8_t *opcode, uint64_t *slba, uint32_t *nlb,
			void **buf)
{
	for (;;) {
		switch (c->kind) {
		case FC_READ:
			if (c->stage)
				return false;
			*opcode = nvme_cmd_read, *slba = c->slba, *nlb = c->nlb, *buf = c->data;
			return true;
		case FC_WRITE:
			if (c->stage == 0 && c->head_fill) {
				*opcode = nvme_cmd_read, *slba = c->slba, *nlb = 1, *buf = c->scratch;
				return true;
			}
			/* One block with both edges partial was read whole at stage 0. */
			if (c->stage == 1 && c->tail_fill && !(c->nlb == 1 && c->head_fill)) {
				*opcode = nvme_cmd_read, *slba = c->slba + c->nlb - 1, *nlb = 1;
				*buf = c->scratch;
				return true;
			}
			if (c->stage == 2) {
				*opcode = nvme_cmd_write, *slba = c->slba, *nlb = c->nlb, *buf = c->data;
				return true;
			}
			if (c->stage > 2)
				return false;
			c->stage++;
			continue;
		case FC_ZPART:
			if (c->stage > 1)
				return false;
			*opcode = c->stage ? nvme_cmd_write : nvme_cmd_read;
			*slba = c->slba, *nlb = 1, *buf = c->scratch;
			return true;
		case FC_WZ:
		case FC_DSM:
		case FC_FLUSH:
			if (c->stage)
				return false;
			*opcode = c->kind == FC_WZ ? nvme_cmd_write_zeroes
						   : c->kind == FC_DSM ? nvme_cmd_dsm : nvme_cmd_flush;
			*slba = c->slba, *nlb = c->nlb, *buf = c->kind == FC_DSM ? (void *)&c->dsm : NULL;
			return true;
		}
		return false;
	}
}

/* Reactor thread: merge what an RMW read brought in, move to the next stage. */
static void cmd_stage_done(struct fuse_cmd *c)
{
	uint32_t lba = 1u << c->op->geo.lba_shift;
	uint8_t *s = c->scratch;

	if (c->kind == FC_WRITE && c->stage == 0 && c->head_fill) {
		memcpy(c->data, s, c->head_fill);
		if (c->nlb == 1 && c->tail_fill)
			memcpy(c->data + lba - c->tail_fill, s + lba - c->tail_fill, c->tail_fill);
	} else if (c->kind == FC_WRITE && c->stage == 1) {
		uint8_t *last = c->data + (size_t)(c->nlb - 1) * lba;

		memcpy(last + lba - c->tail_fill, s + lba - c->tail_fill, c->tail_fill);
	} else if (c->kind == FC_ZPART && c->stage == 0) {
		memset(s + c->zoff, 0, c->zlen);
	}
	c->stage++;
}

static void cmd_done(struct fuse_reactor *fr, struct fuse_cmd *c);

/* Reactor thread: issue the next NVMe command of c through the core. */
static void cmd_issue(struct fuse_reactor *fr, struct fuse_cmd *c)
{
	struct nvmg_req *req = &c->req;
	uint8_t opcode = 0;
	uint64_t slba = 0;
	uint32_t nlb = 0, len;
	void *buf = NULL;
	uint16_t status;

	if (c->rmw && !c->scratch) {
		c->scratch = nvmg_buf_get(nvmg_reactor_bufpool(fr->r), 1u << c->op->geo.lba_shift);
		if (!c->scratch) {
			c->status = NVMG_SC_GENERIC(NVME_SC_INTERNAL);
			cmd_done(fr, c);
			return;
		}
	}
	if (c->status || !cmd_next_io(c, &opcode, &slba, &nlb, &buf)) {
		cmd_done(fr, c);
		return;
	}
	memset(&req->cmd, 0, sizeof(req->cmd));
	req->cmd.opcode = opcode;
	req->cmd.flags = NVMG_PSDT_SGL_MPTR_CONTIG;
	req->cmd.cid = htole16((uint16_t)(c - c->op->cmds));
	req->cmd.nsid = htole32(c->op->geo.nsid);
	len = 0;
	switch (opcode) {
	case nvme_cmd_read:
	case nvme_cmd_write:
		len = nlb << c->op->geo.lba_shift;
		/* fallthrough */
	case nvme_cmd_write_zeroes:
		req->cmd.cdw10 = htole32((uint32_t)slba);
		req->cmd.cdw11 = htole32((uint32_t)(slba >> 32));
		req->cmd.cdw12 = htole32((nlb - 1) |
					 (opcode == nvme_cmd_write && c->op->fua ? (uint32_t)NVME_IO_FUA << 16 : 0));
		break;
	case nvme_cmd_dsm:
		c->dsm.cattr = 0;
		c->dsm.nlb = htole32(nlb);
		c->dsm.slba = htole64(slba);
		req->cmd.cdw10 = 0; /* one range */
		req->cmd.cdw11 = htole32(NVME_DSMGMT_AD);
		len = sizeof(c->dsm);
		break;
	default: /* flush */
		break;
	}
	req->sq = &c->q->sq;
	req->sgl_len = len;
	status = nvmg_req_init(req);
	if (status) {
		nvmg_req_complete(req, status);
		return;
	}
	req->buf = buf;
	req->execute(req);
}

/* Reactor thread: c has its reactor's attention (new, or between stages). */
static void cmd_step(struct fuse_reactor *fr, struct fuse_cmd *c)
{
	if (c->state == FCS_NEW) {
		if (c->away) {
			bool wake;

			if (!nvmg_fuse_gate_enter(c->gate, &wake)) {
				/* An RMW holds the stripe: be ordered by its reactor. */
				if (wake)
					kick(c->owner->fr);
				c->away = false;
				c->q = c->owner;
				route(fr, c);
				return;
			}
			c->entered = true;
		} else if (is_write(c)) {
			if (conflicts_before(&fr->writes, NULL, c) ||
			    conflicts_before(&fr->waits, NULL, c)) {
				TAILQ_INSERT_TAIL(&fr->waits, c, wlink);
				return;
			}
			writes_add(fr, c);
			if (!gate_hold(fr, c)) {
				c->state = FCS_RUN;
				return;
			}
		}
		c->state = FCS_RUN;
	}
	cmd_issue(fr, c);
}

/* Reactor thread: c is finished; account it to its op, which may hand it
 * the op's next range (large fallocates stream through their commands). */
static void cmd_done(struct fuse_reactor *fr, struct fuse_cmd *c)
{
	struct fuse_op *op = c->op;
	int err = status_errno(c->status), zero = 0;

	if (c->scratch) {
		nvmg_buf_put(nvmg_reactor_bufpool(fr->r), c->scratch, 1u << op->geo.lba_shift);
		c->scratch = NULL;
	}
	if (c->entered) {
		c->entered = false;
		if (nvmg_fuse_gate_leave(c->gate))
			kick(c->owner->fr);
	}
	if (c->held) {
		c->held = false;
		nvmg_fuse_gate_release(c->gate);
	}
	if (c->tracked) {
		writes_del(fr, c);
		wake_waiters(fr);
	}
	if (err)
		atomic_compare_exchange_strong(&op->err, &zero, err);
	if (!atomic_load(&op->err) && chunk_claim(op, c)) {
		route(fr, c);
		return;
	}
	/* acq_rel: the last one sees every other command's data. */
	if (atomic_fetch_sub_explicit(&op->pending, 1, memory_order_acq_rel) == 1)
		op_finish(op);
}

/* End of a loop turn: run everything ready, then declare the reactor
 * asleep -- it is about to wait in io_uring -- unless a push got in. */
static void run_ready(struct nvmg_defer *d)
{
	struct fuse_reactor *fr = nvmg_container_of(d, struct fuse_reactor, run);

	for (;;) {
		inbox_take(fr);
		while (!STAILQ_EMPTY(&fr->ready)) {
			struct fuse_cmd *c = STAILQ_FIRST(&fr->ready);

			STAILQ_REMOVE_HEAD(&fr->ready, rlink);
			cmd_step(fr, c);
		}
		atomic_store(&fr->asleep, true);
		if (!atomic_load(&fr->inbox))
			return;
		atomic_store_explicit(&fr->asleep, false, memory_order_relaxed);
	}
}

/* The core's completion: never start more work from here (a RAM backend
 * completes inside execute), just queue the command for this pass. */
static void fuse_queue_response(struct nvmg_req *req)
{
	struct fuse_cmd *c = (struct fuse_cmd *)req;
	uint16_t status = (uint16_t)(le16toh(req->cqe.status) >> 1);

	/* The core counted it in the queue's statistics. */
	if (status)
		c->status = status;
	else
		cmd_stage_done(c);
	ready_add(c->q->fr, c);
	awake(c->q->fr);
}

static void fuse_kill_queue(struct nvmg_sq *sq)
{
	/* Nothing to close: commands fail on their own once the controller
	 * is dead, and the front end unbinds its queues when it stops. */
	sq->closing = true;
}

/* Like the Linux target's loop: controllers inside the process, no port,
 * so no port calls and no discovery fields. */
const struct nvmg_transport nvmg_fuse_transport = {
	.name = "local",
	.queue_response = fuse_queue_response,
	.kill_queue = fuse_kill_queue,
};

/* ------------------------------------------------------- worker side */

void nvmg_fuse_submit(struct nvmg_fuse *fs, struct fuse_reply_to to, enum fuse_op_kind kind,
		      const struct fuse_geo *g, uint64_t off, uint64_t len, const void *wdata, bool fua)
{
	struct fuse_op *op = op_get(fs);
	uint64_t lmask = (1ull << g->lba_shift) - 1;
	unsigned n = 0;

	op->freq = to.req;
	op->ent = to.ent;
	op->home = to.ent ? (int)nvmg_fuse_uring_home(to.ent) : -1;
	op->kind = kind;
	op->fua = fua;
	op->geo = *g;
	op->off = off;
	op->len = len;
	op->end = kind == FOP_FLUSH ? 1 : off + len;
	op->aoff = kind == FOP_FLUSH ? 0 : off & ~lmask;
	atomic_store(&op->cursor, kind == FOP_FLUSH ? 0 : off);
	atomic_store(&op->err, 0);
	if ((kind == FOP_READ || kind == FOP_WRITE) && to.inplace) {
		/* Whole blocks from the payload's start: the commands read into
		 * and write from the entry's payload itself. */
		op->inplace = to.inplace;
	} else if (kind == FOP_READ || kind == FOP_WRITE) {
		if (op_reserve(op, ((op->end + lmask) & ~lmask) - op->aoff)) {
			op->err = ENOMEM;
			op_finish(op);
			return;
		}
		if (kind == FOP_WRITE)
			memcpy(op->buf + (off - op->aoff), wdata, len);
	}
	while (n < NVMG_FUSE_CMDS_PER_OP && chunk_claim(op, &op->cmds[n]))
		n++;
	if (!n) {
		op_finish(op);
		return;
	}
	/* Counted before any is handed over: one may finish at once. */
	atomic_store(&op->pending, n);
	for (unsigned i = 0; i < n; i++) {
		struct fuse_reactor *fr = op->cmds[i].q->fr;

		/* On the io_uring path we may be that reactor already. */
		if (op->ent && nvmg_reactor_self() == fr->r)
			ready_add(fr, &op->cmds[i]);
		else
			inbox_push(fr, &op->cmds[i]);
	}
}

/* --------------------------------------------------------- life cycle */

int nvmg_fuse_sub_attach(struct nvmg_fuse *fs, struct fuse_sub *sub, char *err, size_t errlen)
{
	struct nvmg_target *t = fs->tgt;
	uint16_t status = 0;

	sub->queues = calloc(fs->nr_queues, sizeof(*sub->queues));
	if (!sub->queues) {
		snprintf(err, errlen, "FUSE: out of memory");
		return -ENOMEM;
	}
	sub->ctrl = nvmg_ctrl_create_local(t, sub->s, NVMG_FUSE_HOSTNQN, &status);
	if (!sub->ctrl) {
		snprintf(err, errlen, "FUSE: no controller for %s (status %#x)", sub->s->nqn, status);
		return -EBUSY;
	}
	for (unsigned i = 0; i < fs->nr_queues; i++) {
		struct fuse_queue *q = &sub->queues[i];

		q->fr = &fs->reactors[i];
		q->sq.tgt = t;
		q->sq.reactor = q->fr->r;
		q->sq.transport = &nvmg_fuse_transport;
		q->sq.qid = (uint16_t)(i + 1);
		status = nvmg_ctrl_install_sq(sub->ctrl, &q->sq);
		if (status) {
			snprintf(err, errlen, "FUSE: queue %u of %s: status %#x", i + 1, sub->s->nqn,
				 status);
			return -EBUSY;
		}
	}
	return 0;
}

void nvmg_fuse_sub_detach(struct fuse_sub *sub)
{
	if (sub->ctrl)
		nvmg_ctrl_destroy_local(sub->ctrl);
	sub->ctrl = NULL;
	free(sub->queues);
	sub->queues = NULL;
}

int nvmg_fuse_transport_start(struct nvmg_fuse *fs, char *err, size_t errlen)
{
	struct nvmg_target *t = fs->tgt;

	fs->nr_queues = t->nr_reactors < NVMG_MAX_IO_QUEUES ? t->nr_reactors : NVMG_MAX_IO_QUEUES;
	fs->reactors = calloc(fs->nr_queues, sizeof(*fs->reactors));
	fs->ops = calloc(NVMG_FUSE_NR_OPS, sizeof(*fs->ops));
	if (!fs->reactors || !fs->ops || nvmg_fuse_gates_init(fs)) {
		snprintf(err, errlen, "FUSE: out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&fs->pool_lock, NULL);
	pthread_cond_init(&fs->pool_cond, NULL);
	for (unsigned i = NVMG_FUSE_NR_OPS; i-- > 0;) {
		struct fuse_op *op = &fs->ops[i];

		op->fs = fs;
		op->next_free = fs->free_ops;
		fs->free_ops = op;
		fs->nr_free_ops++;
	}
	for (unsigned i = 0; i < fs->nr_queues; i++) {
		fs->reactors[i].efd = -1;
		atomic_init(&fs->reactors[i].asleep, true);
		STAILQ_INIT(&fs->reactors[i].ready);
		TAILQ_INIT(&fs->reactors[i].writes);
		TAILQ_INIT(&fs->reactors[i].waits);
		STAILQ_INIT(&fs->reactors[i].drains);
		sem_init(&fs->reactors[i].stopped, 0, 0);
	}
	for (unsigned i = 0; i < fs->nr_queues; i++) {
		struct fuse_reactor *fr = &fs->reactors[i];

		fr->fs = fs;
		fr->r = t->reactors[i];
		fr->efd_ev.fn = efd_done;
		fr->run.fn = run_ready;
		fr->kick.fn = kick_msg;
		fr->kick.arg = fr;
		fr->efd = eventfd(0, EFD_CLOEXEC);
		if (fr->efd < 0) {
			int e = errno;

			snprintf(err, errlen, "FUSE: eventfd: %s", strerror(e));
			return -e;
		}
	}
	for (size_t s = 0; s < fs->nr_subs; s++) {
		int ret = nvmg_fuse_sub_attach(fs, &fs->subs[s], err, errlen);

		if (ret)
			return ret;
	}
	/* Each ring has a single submitter: arm on the reactor itself. */
	for (unsigned i = 0; i < fs->nr_queues; i++) {
		int ret = nvmg_reactor_post(fs->reactors[i].r, arm_msg, &fs->reactors[i]);

		if (ret) {
			snprintf(err, errlen, "FUSE: reactor %u: %s", i, strerror(-ret));
			return ret;
		}
		fs->reactors[i].armed = true;
	}
	return 0;
}

void nvmg_fuse_transport_stop(struct nvmg_fuse *fs)
{
	unsigned waited = 0;

	if (!fs->ops) {
		free(fs->reactors); /* start failed before the pool existed */
		fs->reactors = NULL;
		return;
	}
	/* The session loop has ended: no new ops. Those in flight finish on
	 * the reactors, which still run. */
	pthread_mutex_lock(&fs->pool_lock);
	while (fs->nr_free_ops < NVMG_FUSE_NR_OPS) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5;
		if (pthread_cond_timedwait(&fs->pool_cond, &fs->pool_lock, &ts) == ETIMEDOUT)
			log_warn("FUSE: %u request%s still in flight after %u s",
				 NVMG_FUSE_NR_OPS - fs->nr_free_ops,
				 NVMG_FUSE_NR_OPS - fs->nr_free_ops == 1 ? "" : "s", waited += 5);
	}
	pthread_mutex_unlock(&fs->pool_lock);
	for (size_t s = 0; s < fs->nr_subs; s++)
		nvmg_fuse_sub_detach(&fs->subs[s]);
	for (unsigned i = 0; i < fs->nr_queues; i++) {
		struct fuse_reactor *fr = &fs->reactors[i];
		uint64_t one = 1;

		if (fr->efd < 0)
			continue;
		/* A kick sent by a write that has finished may still be queued:
		 * messages run in order, so after this one it has run. */
		if (fr->armed && !nvmg_reactor_post(fr->r, barrier_msg, fr))
			sem_wait(&fr->stopped);
		/* The armed read completes and, seeing stopping, is not re-armed. */
		atomic_store(&fr->stopping, true);
		if (fr->armed && write(fr->efd, &one, sizeof(one)) == sizeof(one))
			sem_wait(&fr->stopped);
		close(fr->efd);
	}
	for (unsigned i = 0; i < NVMG_FUSE_NR_OPS; i++)
		free(fs->ops[i].buf);
	free(fs->ops);
	fs->ops = NULL;
	for (unsigned i = 0; i < fs->nr_queues; i++)
		sem_destroy(&fs->reactors[i].stopped);
	free(fs->reactors);
	fs->reactors = NULL;
	nvmg_fuse_gates_free(fs);
	pthread_cond_destroy(&fs->pool_cond);
	pthread_mutex_destroy(&fs->pool_lock);
}
