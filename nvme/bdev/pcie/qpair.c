/* Queue pairs: SQ/CQ rings in DMA memory, PRPs, splitting commands at
 * MDTS, and completions reaped by phase bit. An I/O queue pair belongs to
 * one reactor and is only touched on its thread (no locks); the admin
 * queue is used synchronously under the controller's admin lock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "lib/log.h"
#include "nvme/bdev/pcie/pcie.h"


#define POLL_NS 20000 /* polled mode (no MSI-X): re-check after 20 us */

static void notify_done(struct nvmg_ev *ev, int res, uint32_t flags);
static void qp_tick(struct nvmg_ticker *t, uint64_t now_ms);

#define PAGE_ROUND(x) (((x) + PCIE_PAGE - 1) & ~(size_t)(PCIE_PAGE - 1))

size_t pcie_qp_dma_len(uint16_t depth, bool io)
{
	size_t slot_bytes = io ? (size_t)PCIE_PAGE + PCIE_CHUNK : 0;

	return PAGE_ROUND((size_t)depth * sizeof(struct nvmg_sqe)) +
	       PAGE_ROUND((size_t)depth * sizeof(struct nvmg_cqe)) + slot_bytes * depth;
}

int pcie_qp_alloc(struct pcie_ctrlr *c, struct pcie_qpair *qp, uint16_t qid, uint16_t depth,
		  bool io, char *err, size_t errlen)
{
	size_t cq_bytes = (size_t)depth * sizeof(struct nvmg_cqe);
	size_t ring_bytes = pcie_qp_dma_len(depth, false);
	size_t slot_bytes = io ? (size_t)PCIE_PAGE + PCIE_CHUNK : 0;
	int ret;

	memset(qp, 0, sizeof(*qp));
	STAILQ_INIT(&qp->wait);
	qp->c = c;
	qp->qid = qid;
	qp->depth = depth;
	qp->efd = -1;
	qp->phase = 1;
	atomic_init(&qp->armed, false);
	qp->sq_db = 0x1000 + (2u * qid) * c->dstrd;
	qp->cq_db = 0x1000 + (2u * qid + 1) * c->dstrd;
	qp->slots = calloc(depth, sizeof(*qp->slots));
	qp->done = calloc(depth, sizeof(*qp->done));
	if (!qp->slots || !qp->done) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ret = nvmg_dma_alloc(&c->vfio, pcie_qp_dma_len(depth, io), &qp->mem, err, errlen);
	if (ret)
		goto fail;
	qp->sq = (struct nvmg_sqe *)qp->mem.va;
	qp->sq_iova = qp->mem.iova;
	qp->cq = (volatile struct nvmg_cqe *)(qp->mem.va + ring_bytes - PAGE_ROUND(cq_bytes));
	qp->cq_iova = nvmg_dma_iova(&qp->mem, (const void *)qp->cq);
	/* One slot short of the ring: a full SQ would look empty (tail == head). */
	for (uint16_t i = 0; i < depth; i++) {
		struct pcie_slot *s = &qp->slots[i];

		s->next_free = i + 1 < depth - 1 ? i + 1 : UINT16_MAX;
		if (io) {
			uint8_t *base = qp->mem.va + ring_bytes + (size_t)i * slot_bytes;

			s->prp_list = (uint64_t *)base;
			s->prp_iova = nvmg_dma_iova(&qp->mem, base);
			s->bounce = base + PCIE_PAGE;
			s->bounce_iova = nvmg_dma_iova(&qp->mem, s->bounce);
		}
	}
	qp->free_head = depth > 1 ? 0 : UINT16_MAX;
	qp->ev.fn = notify_done;
	qp->ticker.fn = qp_tick;
	return 0;
fail:
	free(qp->slots);
	free(qp->done);
	qp->slots = NULL;
	qp->done = NULL;
	return ret;
}

void pcie_qp_free(struct pcie_qpair *qp)
{
	if (qp->zc_base)
		nvmg_vfio_unmap(&qp->c->vfio, qp->zc_iova, qp->zc_size);
	qp->zc_base = NULL;
	nvmg_dma_free(&qp->c->vfio, &qp->mem);
	free(qp->slots);
	free(qp->done);
	qp->slots = NULL;
	qp->done = NULL;
}

static void ring_sq(struct pcie_qpair *qp)
{
	/* The SQEs must be in memory before the device sees the new tail. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	nvmg_vfio_wr32(&qp->c->vfio, qp->sq_db, qp->sq_tail);
}

static void post(struct pcie_qpair *qp, const struct nvmg_sqe *cmd)
{
	memcpy(&qp->sq[qp->sq_tail], cmd, sizeof(*cmd));
	if (++qp->sq_tail == qp->depth)
		qp->sq_tail = 0;
}

/* PRP1/PRP2 for a buffer contiguous in IOVA space; the slot's list page
 * holds the entries after the first page (at most 1 MiB: 256 entries). */
static void build_prp(struct pcie_slot *s, struct nvmg_sqe *cmd, uint64_t iova, uint64_t len)
{
	uint64_t first = PCIE_PAGE - (iova & (PCIE_PAGE - 1));
	uint64_t next = iova + first;

	if (len <= first) {
		pcie_sqe_prp(cmd, iova, 0);
		return;
	}
	if (len <= first + PCIE_PAGE) {
		pcie_sqe_prp(cmd, iova, next);
		return;
	}
	unsigned n = 0;

	for (uint64_t left = len - first; left; n++) {
		s->prp_list[n] = htole64(next + (uint64_t)n * PCIE_PAGE);
		left = left > PCIE_PAGE ? left - PCIE_PAGE : 0;
	}
	pcie_sqe_prp(cmd, iova, s->prp_iova);
}

/* Our buffers are contiguous in IOVA space: one SGL Data Block
 * descriptor describes any transfer. Like Linux (sgl_threshold), small
 * transfers keep PRPs, which controllers handle at least as fast. */
static void build_dptr(const struct pcie_qpair *qp, struct pcie_slot *s, struct nvmg_sqe *cmd,
		       uint64_t iova, uint64_t len)
{
	if (!qp->c->use_sgl || len < PCIE_SGL_THRESHOLD) {
		build_prp(s, cmd, iova, len);
		return;
	}
	cmd->flags = (uint8_t)((cmd->flags & ~NVMG_PSDT_MASK) | NVMG_PSDT_SGL_MPTR_CONTIG);
	cmd->dptr.addr = htole64(iova);
	cmd->dptr.length = htole32((uint32_t)len);
	memset(cmd->dptr.rsvd, 0, sizeof(cmd->dptr.rsvd));
	cmd->dptr.type = 0; /* Data Block descriptor, address subtype */
}

static bool all_sent(const struct nvmg_bdev_io *io)
{
	return io->len ? io->done >= io->len : io->priv.pcie.sent;
}

static bool finished(const struct nvmg_bdev_io *io)
{
	return !io->priv.pcie.parts && !io->priv.pcie.waiting && (io->priv.pcie.err || all_sent(io));
}

/* Does io's whole buffer lie in the device-mapped arena? */
static bool zero_copy(const struct pcie_qpair *qp, const struct nvmg_bdev_io *io)
{
	const uint8_t *b = io->buf;

	return qp->zc_base && b >= qp->zc_base && io->len <= qp->zc_size &&
	       (size_t)(b - qp->zc_base) <= qp->zc_size - io->len;
}

/* Bytes the next command of io may cover. */
static uint64_t part_len(const struct pcie_qpair *qp, const struct pcie_ns *ns,
			 const struct nvmg_bdev_io *io)
{
	uint64_t left = io->len - io->done, max;

	switch (io->op) {
	case NVMG_BDEV_WRITE_ZEROES:
		max = ns->has_wz ? 65536ull << ns->lba_shift : PCIE_CHUNK;
		break;
	case NVMG_BDEV_DEALLOCATE:
		max = 1ull << (31 + ns->lba_shift); /* NLB is 32 bits */
		break;
	default:
		/* In place: up to MDTS; bounced: up to the slot's buffer. */
		max = qp->c->max_xfer;
		if (!zero_copy(qp, io) && max > PCIE_CHUNK)
			max = PCIE_CHUNK;
		break;
	}
	return left < max ? left : max;
}

/* Post the next command of io into a free slot. */
static void post_part(struct pcie_qpair *qp, struct pcie_ns *ns, struct nvmg_bdev_io *io)
{
	uint16_t cid = qp->free_head;
	struct pcie_slot *s = &qp->slots[cid];
	uint64_t len = io->len ? part_len(qp, ns, io) : 0, off = io->offset + io->done;
	uint64_t slba = off >> ns->lba_shift, nlb = len >> ns->lba_shift;
	struct nvmg_sqe cmd;
	bool zc = (io->op == NVMG_BDEV_READ || io->op == NVMG_BDEV_WRITE) && zero_copy(qp, io);
	uint64_t data_iova = zc ? qp->zc_iova + (uint64_t)((uint8_t *)io->buf + io->done - qp->zc_base)
				: s->bounce_iova;

	qp->free_head = s->next_free;
	memset(&cmd, 0, sizeof(cmd));
	cmd.cid = htole16(cid);
	cmd.nsid = htole32(ns->nsid);
	cmd.cdw10 = htole32((uint32_t)slba);
	cmd.cdw11 = htole32((uint32_t)(slba >> 32));
	switch (io->op) {
	case NVMG_BDEV_READ:
		cmd.opcode = nvme_cmd_read;
		cmd.cdw12 = htole32((uint32_t)(nlb - 1));
		build_dptr(qp, s, &cmd, data_iova, len);
		break;
	case NVMG_BDEV_WRITE:
		cmd.opcode = nvme_cmd_write;
		if (!zc)
			memcpy(s->bounce, (uint8_t *)io->buf + io->done, len);
		cmd.cdw12 = htole32((uint32_t)(nlb - 1) | (io->fua ? 1u << 30 : 0));
		build_dptr(qp, s, &cmd, data_iova, len);
		break;
	case NVMG_BDEV_WRITE_ZEROES:
		if (ns->has_wz) {
			cmd.opcode = nvme_cmd_write_zeroes;
			cmd.cdw12 = htole32((uint32_t)(nlb - 1));
		} else {
			/* No Write Zeroes on this device: write a zeroed buffer. */
			cmd.opcode = nvme_cmd_write;
			memset(s->bounce, 0, len);
			cmd.cdw12 = htole32((uint32_t)(nlb - 1));
			build_dptr(qp, s, &cmd, s->bounce_iova, len);
		}
		break;
	case NVMG_BDEV_DEALLOCATE: {
		struct nvme_dsm_range *r = (struct nvme_dsm_range *)s->prp_list;

		cmd.opcode = nvme_cmd_dsm;
		cmd.cdw10 = 0; /* one range */
		cmd.cdw11 = htole32(NVME_DSMGMT_AD);
		memset(r, 0, sizeof(*r));
		r->nlb = htole32((uint32_t)nlb);
		r->slba = htole64(slba);
		pcie_sqe_prp(&cmd, s->prp_iova, 0);
		break;
	}
	case NVMG_BDEV_FLUSH:
		cmd.opcode = nvme_cmd_flush;
		cmd.cdw10 = cmd.cdw11 = 0;
		io->priv.pcie.sent = true;
		break;
	}
	s->io = io;
	s->off = io->done;
	s->len = len;
	s->start_ms = nvmg_now_ms();
	s->aborted = false;
	s->zc = zc;
	io->done += len;
	io->priv.pcie.parts++;
	qp->outstanding++;
	post(qp, &cmd);
}

/* Post as much of io as free slots allow; true if nothing is left. */
static bool pump(struct pcie_qpair *qp, struct nvmg_bdev_io *io)
{
	struct pcie_ns *ns = (struct pcie_ns *)io->bdev;

	while (!io->priv.pcie.err && !all_sent(io) && qp->free_head != UINT16_MAX)
		post_part(qp, ns, io);
	return io->priv.pcie.err || all_sent(io);
}

static int status_to_errno(uint16_t sf)
{
	uint8_t sct = (sf >> 8) & 7, sc = sf & 0xff;

	if (!sct && !sc)
		return 0;
	if (sct == NVME_SCT_GENERIC) {
		switch (sc) {
		case NVME_SC_LBA_RANGE:
		case NVME_SC_CAP_EXCEEDED:
			return sc == NVME_SC_LBA_RANGE ? -ERANGE : -ENOSPC;
		case NVME_SC_NS_WRITE_PROTECTED:
			return -EROFS;
		case NVME_SC_INVALID_NS:
			return -ENODEV;
		case NVME_SC_ABORT_REQ:
		case NVME_SC_ABORT_QUEUE:
			return -ETIMEDOUT;
		default:
			break;
		}
	}
	return -EIO;
}

static void arm(struct pcie_qpair *qp)
{
	struct io_uring_sqe *sqe = nvmg_reactor_sqe(qp->r);

	if (qp->efd >= 0) {
		io_uring_prep_read(sqe, qp->efd, &qp->efd_val, sizeof(qp->efd_val), 0);
	} else {
		qp->poll_ts.tv_sec = 0;
		qp->poll_ts.tv_nsec = POLL_NS;
		io_uring_prep_timeout(sqe, &qp->poll_ts, 0, 0);
	}
	io_uring_sqe_set_data(sqe, &qp->ev);
}

/* Called whenever commands may have been posted outside notify_done. */
static void after_post(struct pcie_qpair *qp)
{
	if (!qp->outstanding)
		return;
	ring_sq(qp);
	if (!atomic_load_explicit(&qp->armed, memory_order_relaxed)) {
		atomic_store_explicit(&qp->armed, true, memory_order_relaxed);
		arm(qp);
	}
	if (!qp->ticking) {
		qp->ticking = true;
		nvmg_reactor_add_ticker(qp->r, &qp->ticker);
	}
}

static void wait_push(struct pcie_qpair *qp, struct nvmg_bdev_io *io)
{
	io->priv.pcie.waiting = true;
	STAILQ_INSERT_TAIL(&qp->wait, io, priv.pcie.wait);
}

void pcie_qp_submit(struct pcie_qpair *qp, struct pcie_ns *ns, struct nvmg_bdev_io *io)
{
	uint64_t mask = (1ull << ns->lba_shift) - 1;
	uint16_t tail0 = qp->sq_tail;
	int res;

	io->done = 0;
	io->priv.pcie.sent = false;
	io->priv.pcie.waiting = false;
	io->priv.pcie.parts = 0;
	io->priv.pcie.err = 0;
	if ((res = pcie_ctrlr_unusable(qp->c))) {
		io->complete(io, res);
		return;
	}
	if (io->op == NVMG_BDEV_FLUSH) {
		io->len = 0;
		if (!ns->b.volatile_cache) { /* nothing cached: nothing to flush */
			io->complete(io, 0);
			return;
		}
	} else if ((io->offset | io->len) & mask || !io->len) {
		io->complete(io, -EINVAL);
		return;
	} else if (io->op == NVMG_BDEV_DEALLOCATE && !ns->has_dsm) {
		/* Deallocate is a hint, and dealloc_zeroes is false here. */
		io->complete(io, 0);
		return;
	}
	if (!STAILQ_EMPTY(&qp->wait) || !pump(qp, io))
		wait_push(qp, io);
	if (qp->sq_tail != tail0)
		after_post(qp);
}

/* Reap completions; returns how many bdev_ios finished (in qp->done). */
static unsigned reap(struct pcie_qpair *qp)
{
	unsigned nfin = 0, seen = 0;

	for (;;) {
		volatile struct nvmg_cqe *e = &qp->cq[qp->cq_head];
		uint16_t st = le16toh(e->status), cid;
		struct pcie_slot *s;
		struct nvmg_bdev_io *io;

		if ((st & 1) != qp->phase)
			break;
		/* The rest of the entry is only valid once the phase flipped. */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		cid = le16toh(e->cid);
		seen++;
		if (++qp->cq_head == qp->depth) {
			qp->cq_head = 0;
			qp->phase ^= 1;
		}
		if (cid >= qp->depth || !qp->slots[cid].io) {
			log_err("pcie %s: queue %u: completion for unknown command id %u ignored",
				qp->c->bdf, qp->qid, cid);
			continue;
		}
		s = &qp->slots[cid];
		io = s->io;
		int res = status_to_errno(st >> 1);

		if (res)
			log_warn("pcie %s: queue %u: command %u (%s) failed: status 0x%x",
				 qp->c->bdf, qp->qid, cid, nvmg_bdev_op_name(io->op), st >> 1);
		else if (io->op == NVMG_BDEV_READ && !s->zc)
			memcpy((uint8_t *)io->buf + s->off, s->bounce, s->len);
		if (res && !io->priv.pcie.err)
			io->priv.pcie.err = res;
		s->io = NULL;
		s->next_free = qp->free_head;
		qp->free_head = cid;
		qp->outstanding--;
		io->priv.pcie.parts--;
		if (finished(io)) {
			qp->done[nfin].io = io;
			qp->done[nfin].res = io->priv.pcie.err;
			nfin++;
		}
	}
	if (seen)
		nvmg_vfio_wr32(&qp->c->vfio, qp->cq_db, qp->cq_head);
	/* Freed slots go to waiting commands, oldest first. */
	while (!STAILQ_EMPTY(&qp->wait) && qp->free_head != UINT16_MAX) {
		struct nvmg_bdev_io *io = STAILQ_FIRST(&qp->wait);

		if (!pump(qp, io))
			break;
		STAILQ_REMOVE_HEAD(&qp->wait, priv.pcie.wait);
		io->priv.pcie.waiting = false;
		if (finished(io)) {
			qp->done[nfin].io = io;
			qp->done[nfin].res = io->priv.pcie.err;
			nfin++;
		}
	}
	return nfin;
}

static void finish_all(struct pcie_qpair *qp, unsigned nfin)
{
	/* Callbacks may submit again (same queue, same thread): they find
	 * armed still set and leave the re-arming to notify_done. */
	for (unsigned i = 0; i < nfin; i++)
		qp->done[i].io->complete(qp->done[i].io, qp->done[i].res);
}

static void notify_done(struct nvmg_ev *ev, int res, uint32_t flags)
{
	struct pcie_qpair *qp = nvmg_container_of(ev, struct pcie_qpair, ev);
	uint16_t tail0 = qp->sq_tail;
	unsigned nfin;

	(void)flags;
	if (res < 0 && res != -ETIME && res != -EINTR && res != -EAGAIN && res != -ECANCELED)
		log_err("pcie %s: queue %u: completion notification: %s", qp->c->bdf, qp->qid,
			strerror(-res));
	if (pcie_ctrlr_unusable(qp->c)) {
		/* No register access now: the service thread's abort message
		 * completes what is outstanding. */
		nfin = 0;
	} else {
		nfin = reap(qp);
		if (qp->sq_tail != tail0)
			ring_sq(qp);
	}
	finish_all(qp, nfin);
	if (qp->outstanding) {
		arm(qp);
		return;
	}
	if (qp->ticking) {
		qp->ticking = false;
		nvmg_reactor_del_ticker(qp->r, &qp->ticker);
	}
	/* Last touch of qp: teardown on another thread waits for this. */
	atomic_store_explicit(&qp->armed, false, memory_order_release);
}

void pcie_qp_reset_rings(struct pcie_qpair *qp)
{
	qp->sq_tail = qp->cq_head = 0;
	qp->phase = 1;
	memset((void *)qp->cq, 0, (size_t)qp->depth * sizeof(struct nvmg_cqe));
}

void pcie_qp_abort_all(struct pcie_qpair *qp, int res, bool reset_rings)
{
	STAILQ_HEAD(, nvmg_bdev_io) waiting;
	struct nvmg_bdev_io *io;
	unsigned nfin = 0;

	if (qp->outstanding || !STAILQ_EMPTY(&qp->wait))
		log_warn("pcie %s: queue %u: failing %u outstanding command%s (%s)", qp->c->bdf, qp->qid,
			 qp->outstanding, qp->outstanding == 1 ? "" : "s", strerror(-res));
	for (uint16_t i = 0; i < qp->depth; i++) {
		struct pcie_slot *s = &qp->slots[i];

		if (!(io = s->io))
			continue;
		s->io = NULL;
		s->next_free = qp->free_head;
		qp->free_head = i;
		if (!io->priv.pcie.err)
			io->priv.pcie.err = res;
		if (!--io->priv.pcie.parts && !io->priv.pcie.waiting)
			qp->done[nfin++] = (typeof(qp->done[0])){ io, io->priv.pcie.err };
	}
	/* The wait list has no bound (reactors sharing this queue feed it
	 * too), so its commands are completed from the list, not done[]. */
	STAILQ_INIT(&waiting);
	STAILQ_CONCAT(&waiting, &qp->wait);
	STAILQ_FOREACH(io, &waiting, priv.pcie.wait) {
		io->priv.pcie.waiting = false;
		if (!io->priv.pcie.err)
			io->priv.pcie.err = res;
	}
	qp->outstanding = 0;
	if (reset_rings)
		pcie_qp_reset_rings(qp);
	if (qp->ticking) {
		qp->ticking = false;
		nvmg_reactor_del_ticker(qp->r, &qp->ticker);
	}
	/* Nothing outstanding, but the eventfd read stays armed (a removed
	 * device never interrupts again): cancel it, so its handler runs and
	 * lets go of qp instead of teardown waiting for it. */
	if (atomic_load_explicit(&qp->armed, memory_order_relaxed) && qp->efd >= 0) {
		struct io_uring_sqe *sqe = nvmg_reactor_sqe(qp->r);

		io_uring_prep_cancel(sqe, &qp->ev, 0);
		io_uring_sqe_set_data(sqe, NULL);
	}
	finish_all(qp, nfin);
	while ((io = STAILQ_FIRST(&waiting))) {
		STAILQ_REMOVE_HEAD(&waiting, priv.pcie.wait);
		if (!io->priv.pcie.parts)
			io->complete(io, io->priv.pcie.err);
	}
}

/* Every 500 ms while commands are outstanding: device gone, controller
 * fatal status, lost interrupts and timed-out commands. */
static void qp_tick(struct nvmg_ticker *t, uint64_t now_ms)
{
	struct pcie_qpair *qp = nvmg_container_of(t, struct pcie_qpair, ticker);
	struct pcie_ctrlr *c = qp->c;
	uint32_t csts;
	uint64_t one = 1;

	if (pcie_ctrlr_unusable(c))
		return;
	csts = nvmg_vfio_rd32(&c->vfio, NVME_REG_CSTS);

	if (csts == UINT32_MAX) {
		/* Surprise removal: the service thread fails I/O and lets go. */
		pcie_ctrlr_request_reset(c, "registers read all ones (device removed?)");
		return;
	}
	if (NVME_CSTS_CFS(csts)) {
		pcie_ctrlr_request_reset(c, "controller fatal status (CSTS.CFS)");
		return;
	}
	if ((le16toh(qp->cq[qp->cq_head].status) & 1) == qp->phase && qp->efd >= 0) {
		/* A completion is waiting but no interrupt came: kick. */
		if (write(qp->efd, &one, sizeof(one)) != sizeof(one))
			log_err("pcie %s: queue %u: eventfd kick failed", c->bdf, qp->qid);
		return;
	}
	for (uint16_t i = 0; i < qp->depth; i++) {
		struct pcie_slot *s = &qp->slots[i];

		if (!s->io || now_ms - s->start_ms < c->io_timeout_ms)
			continue;
		if (s->aborted) {
			pcie_ctrlr_request_reset(c, "a command timed out again after Abort");
			return;
		}
		log_warn("pcie %s: queue %u: command %u timed out after %u ms, aborting", c->bdf,
			 qp->qid, i, c->io_timeout_ms);
		/* Sent by the service thread: the admin queue may be slow too,
		 * and this reactor serves other connections meanwhile. */
		pcie_ctrlr_request_abort(c, qp->qid, i);
		s->aborted = true;
		s->start_ms = now_ms;
	}
}

int pcie_qp_sync(struct pcie_qpair *qp, struct nvmg_sqe *cmd, uint32_t timeout_ms, uint32_t *cdw0)
{
	uint64_t deadline = nvmg_now_ms() + timeout_ms;
	struct timespec ts = { 0, 10000 };

	/* One command at a time (the admin lock): the SQ slot is a unique
	 * CID, so a late completion of a timed-out one is told apart. */
	cmd->cid = htole16(qp->sq_tail);
	post(qp, cmd);
	ring_sq(qp);
	for (;;) {
		volatile struct nvmg_cqe *e = &qp->cq[qp->cq_head];
		uint16_t st = le16toh(e->status);

		if ((st & 1) == qp->phase) {
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			uint16_t got = le16toh(e->cid);
			uint32_t dw0 = (uint32_t)le64toh(e->result);

			if (++qp->cq_head == qp->depth) {
				qp->cq_head = 0;
				qp->phase ^= 1;
			}
			nvmg_vfio_wr32(&qp->c->vfio, qp->cq_db, qp->cq_head);
			if (got != le16toh(cmd->cid))
				continue; /* a stale completion of an earlier timed-out command */
			if (cdw0)
				*cdw0 = dw0;
			return (st >> 1) & 0x7fff;
		}
		if (nvmg_now_ms() > deadline)
			return -ETIMEDOUT;
		if (nvmg_vfio_rd32(&qp->c->vfio, NVME_REG_CSTS) == UINT32_MAX)
			return -ENODEV;
		nanosleep(&ts, NULL);
	}
}

void pcie_qp_detach(struct pcie_qpair *qp)
{
	uint64_t one = 1, deadline = nvmg_now_ms() + 2000;
	struct timespec ts = { 0, 1000000 };

	/* A notification may still be armed on the owning reactor: make it
	 * fire, and wait until its handler let go of qp. */
	if (!atomic_load_explicit(&qp->armed, memory_order_acquire))
		return;
	if (qp->efd >= 0 && write(qp->efd, &one, sizeof(one)) != sizeof(one))
		return;
	while (atomic_load_explicit(&qp->armed, memory_order_acquire) && nvmg_now_ms() < deadline)
		nanosleep(&ts, NULL);
}
