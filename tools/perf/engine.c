/* nvmegate-perf I/O engine: one thread, one io_uring, several NVMe/TCP
 * I/O queues. Per queue there is at most one recv and one sendmsg in
 * flight. Outgoing PDUs are gathered as iovecs pointing into preallocated
 * per-slot headers and data buffers and flushed with one sendmsg per queue
 * per loop turn. The receive side is engine_recv.c. Nothing is allocated
 * per I/O. */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <liburing.h>

#include "net/tcp_frame.h"
#include "tools/perf/engine.h"
#include "tools/perf/tls.h"

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rnd(struct engine *e)
{
	/* xorshift64* */
	uint64_t x = e->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	e->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(struct engine *e, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rnd(e) * n) >> 64);
}

void q_fatal(struct ioq *q, const char *fmt, ...)
{
	va_list ap;
	char buf[768];

	if (q->dead)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	perf_err("qid %u: %s", q->qid, buf);
	q->dead = true;
	q->e->fatal = true;
	atomic_store(&q->e->sh->failed, 1);
	atomic_store(&q->e->sh->stop, true);
}

static bool may_report(struct engine *e)
{
	return atomic_fetch_add(&e->sh->err_reports, 1) < MAX_REPORTS;
}

struct io_uring_sqe *get_sqe(struct engine *e)
{
	struct io_uring_sqe *s = io_uring_get_sqe(&e->ring);

	if (!s) {
		io_uring_submit(&e->ring);
		s = io_uring_get_sqe(&e->ring);
	}
	return s;
}

void iov_push(struct ioq *q, void *base, size_t len)
{
	if (!len)
		return;
	if (q->iov_tail == q->iov_cap) {
		q_fatal(q, "internal error: send iovec array overflow (%u entries)", q->iov_cap);
		return;
	}
	q->iov[q->iov_tail++] = (struct iovec){ base, len };
}

/* ---- verify state ----------------------------------------------------- */

static bool unit_lock(struct perf_shared *sh, uint64_t u, uint32_t *gen)
{
	uint32_t v = atomic_load_explicit(&sh->ustate[u], memory_order_relaxed);

	if (v & VSTATE_LOCK)
		return false;
	if (!atomic_compare_exchange_strong_explicit(&sh->ustate[u], &v, v | VSTATE_LOCK,
						     memory_order_acquire, memory_order_relaxed))
		return false;
	*gen = v & VSTATE_GEN_MASK;
	return true;
}

static void unit_unlock(struct perf_shared *sh, uint64_t u, uint32_t gen)
{
	atomic_store_explicit(&sh->ustate[u], gen & VSTATE_GEN_MASK, memory_order_release);
}

/* ---- sending -------------------------------------------------------------- */

static void q_flush(struct ioq *q)
{
	struct io_uring_sqe *sqe;
	unsigned n;

	if (q->tls) {
		const uint8_t *p;
		size_t len;

		if (q->send_busy || q->dead)
			return;
		/* The whole batch into records, then one send of the ciphertext. */
		if (tls_chan_writev(q->tls, q->iov + q->iov_head, (int)(q->iov_tail - q->iov_head))) {
			q_fatal(q, "TLS encryption failed");
			return;
		}
		q->iov_head = q->iov_tail = 0;
		len = tls_chan_pending(q->tls, &p);
		if (!len || !(sqe = get_sqe(q->e)))
			return;
		io_uring_prep_send(sqe, q->fd, p, len, MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)q | OP_SEND);
		q->send_busy = true;
		return;
	}
	if (q->send_busy || q->dead || q->iov_head == q->iov_tail)
		return;
	n = q->iov_tail - q->iov_head;
	if (n > IOV_MAX)
		n = IOV_MAX;
	sqe = get_sqe(q->e);
	if (!sqe)
		return;
	memset(&q->msg, 0, sizeof(q->msg));
	q->msg.msg_iov = q->iov + q->iov_head;
	q->msg.msg_iovlen = n;
	io_uring_prep_sendmsg(sqe, q->fd, &q->msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)q | OP_SEND);
	q->send_busy = true;
	q->send_n = n;
}

static void q_send_done(struct ioq *q, int res)
{
	unsigned i = q->iov_head, end = q->iov_head + q->send_n;
	size_t left;

	q->send_busy = false;
	if (q->dead)
		return;
	if (res < 0) {
		q_fatal(q, "send: %s", strerror(-res));
		return;
	}
	if (q->tls) {
		tls_chan_sent(q->tls, (size_t)res);
		q_flush(q);
		return;
	}
	left = (size_t)res;
	while (i < end && left >= q->iov[i].iov_len) {
		left -= q->iov[i].iov_len;
		i++;
	}
	if (i < end && left) {
		q->iov[i].iov_base = (uint8_t *)q->iov[i].iov_base + left;
		q->iov[i].iov_len -= left;
	}
	q->iov_head = i;
	/* Nothing is in flight now: compact. */
	if (q->iov_head == q->iov_tail) {
		q->iov_head = q->iov_tail = 0;
	} else if (q->iov_head) {
		memmove(q->iov, q->iov + q->iov_head,
			(q->iov_tail - q->iov_head) * sizeof(*q->iov));
		q->iov_tail -= q->iov_head;
		q->iov_head = 0;
	}
}

/* ---- issuing I/O -------------------------------------------------------- */

static bool pick(struct engine *e, struct ioq *q, struct slot *s)
{
	const struct perf_opts *o = e->o;
	struct perf_shared *sh = e->sh;
	uint32_t gen = 0;
	uint64_t unit;

	if (e->prefill) {
		unit = atomic_fetch_add(&sh->prefill_next, 1);
		if (unit >= sh->units)
			return false;
		if (sh->ustate && !unit_lock(sh, unit, &gen))
			return false; /* cannot happen: units are handed out once */
		s->write = true;
	} else {
		s->write = o->rw == RW_WRITE ||
			   (o->rw == RW_MIXED && rnd_below(e, 100) >= o->read_pct);
		for (unsigned tries = 0;; tries++) {
			if (tries == 32)
				return false;
			if (o->random) {
				unit = rnd_below(e, sh->units);
			} else {
				unit = q->seq_next;
				q->seq_next = unit + 1 == sh->units ? 0 : unit + 1;
			}
			if (!sh->ustate || unit_lock(sh, unit, &gen))
				break;
		}
	}
	s->unit = unit;
	s->gen = gen;
	if (s->write && sh->ustate)
		s->gen = gen >= VSTATE_GEN_MASK ? 1 : gen + 1;
	else if (s->write && e->prefill)
		s->gen = 1; /* pattern for a later --verify run */
	return true;
}

static void q_start_io(struct engine *e, struct ioq *q, struct slot *s)
{
	const struct perf_opts *o = e->o;
	struct perf_shared *sh = e->sh;
	struct nvmg_sqe *c = &s->cmd.pdu.sqe;
	struct nvmg_tcp_hdr *h = &s->cmd.pdu.hdr;
	uint32_t lpu = sh->lbas_per_unit, hl;

	if (!pick(e, q, s)) {
		q->idle[q->nidle++] = s->cid;
		return;
	}
	s->busy = true;
	s->prefill = e->prefill;
	s->slba = s->unit * lpu;
	s->len = o->bs;
	s->data_rcvd = 0;
	s->r2t_bytes = 0;
	s->data_last = false;
	s->incap = s->write && s->len <= q->incap_max;
	s->t_start = e->now;
	if (s->write && (sh->ustate || s->prefill))
		verify_fill(s->buf, s->len, e->lba_size, s->slba, s->gen, o->seed);

	memset(c, 0, sizeof(*c));
	c->opcode = s->write ? nvme_cmd_write : nvme_cmd_read;
	c->flags = NVMG_PSDT_SGL_MPTR_CONTIG;
	c->cid = htole16(s->cid);
	c->nsid = htole32(o->nsid);
	c->dptr.addr = 0;
	c->dptr.length = htole32(s->len);
	c->dptr.type = s->incap ? NVMG_SGL_DATA_BLOCK_OFFSET : NVMG_SGL_TRANSPORT_DATA_BLOCK;
	c->cdw10 = htole32((uint32_t)s->slba);
	c->cdw11 = htole32((uint32_t)(s->slba >> 32));
	c->cdw12 = htole32(lpu - 1);

	/* In-capsule data right after the header: the target's CPDA is 0. */
	hl = nvmg_pdu_init_hdr(h, NVMG_TCP_CMD, q->hdgst, q->ddgst,
			       nvmg_pdu_hdr_total(NVMG_TCP_CMD, q->hdgst), s->incap ? s->len : 0);
	nvmg_pdu_put_hdgst(h);
	iov_push(q, &s->cmd, hl);
	if (s->incap) {
		iov_push(q, s->buf, s->len);
		if (q->ddgst) {
			s->cmd.ddgst = nvmg_pdu_ddgst(s->buf, s->len);
			iov_push(q, &s->cmd.ddgst, 4);
		}
	}
	q->outstanding++;
}

static void q_retry_idle(struct engine *e, struct ioq *q)
{
	while (q->nidle && e->running && !q->dead) {
		unsigned before = q->nidle;
		struct slot *s = &q->slots[q->idle[--q->nidle]];

		q_start_io(e, q, s);
		if (q->nidle == before)
			break; /* could not pick a unit; try again later */
	}
}

/* ---- completion ------------------------------------------------------------ */

static void verify_read(struct engine *e, struct ioq *q, struct slot *s)
{
	struct perf_stats *st = &e->t->st;
	uint32_t seed = s->gen ? e->o->seed : (e->o->seed_set ? e->o->seed : 0);
	char why[160];

	for (uint32_t off = 0; off < s->len; off += e->lba_size) {
		uint64_t lba = s->slba + off / e->lba_size;
		enum vresult r = verify_block(s->buf + off, e->lba_size, lba, s->gen, seed,
					      why, sizeof(why));

		st->verified++;
		if (r == V_UNWRITTEN) {
			st->unwritten++;
		} else if (r == V_MISMATCH) {
			st->verify_errors++;
			if (may_report(e))
				perf_err("verify: qid %u cid %u LBA %" PRIu64 ": %s", q->qid, s->cid,
					 lba, why);
		}
	}
}

void q_complete(struct engine *e, struct ioq *q, struct slot *s, uint16_t sf, const char *detail)
{
	struct perf_stats *st = &e->t->st;
	struct perf_shared *sh = e->sh;
	int dir = s->write ? 1 : 0;

	s->busy = false;
	q->outstanding--;
	if (sf || detail) {
		char sbuf[128];

		st->errors++;
		if (may_report(e))
			perf_err("I/O error: %s qid %u cid %u slba %" PRIu64 " nlb %u: %s",
				 s->write ? "write" : "read", q->qid, s->cid, s->slba,
				 sh->lbas_per_unit,
				 detail ? detail : perf_status_str(sf, sbuf, sizeof(sbuf)));
		if (sh->ustate)
			unit_unlock(sh, s->unit, s->write ? 0 : s->gen);
	} else {
		if (sh->ustate) {
			if (!s->write)
				verify_read(e, q, s);
			unit_unlock(sh, s->unit, s->gen);
		}
		if (!s->prefill && e->now >= e->measure_start && e->now <= e->end) {
			st->ios[dir]++;
			st->bytes[dir] += s->len;
			hist_add(&st->hist[dir], e->now - s->t_start);
		}
	}
	if (e->running && !q->dead)
		q_start_io(e, q, s);
	else
		q->idle[q->nidle++] = s->cid;
}

static void handle_cqe(struct engine *e, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct ioq *q = (struct ioq *)(uintptr_t)(ud & ~OP_SEND);

	if (ud & OP_SEND)
		q_send_done(q, cqe->res);
	else
		q_recv_done(e, q, cqe->res);
}

/* ---- setup / teardown ------------------------------------------------------ */

static int ring_init(struct engine *e)
{
	unsigned entries = 8;
	unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int rc = -EINVAL;

	while (entries < 2 * e->nq + 8)
		entries <<= 1;
	for (unsigned i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = flag_sets[i];
		rc = io_uring_queue_init_params(entries, &e->ring, &p);
		if (rc == 0) {
			e->ring_ok = true;
			return 0;
		}
		if (rc != -EINVAL)
			break;
	}
	perf_err("io_uring_queue_init: %s", strerror(-rc));
	return -1;
}

static int engine_init(struct engine *e)
{
	const struct perf_opts *o = e->o;
	struct perf_thread *t = e->t;
	unsigned total_q = o->queues;

	e->nq = t->nq;
	e->lba_size = e->sh->ctrl->lba_size;
	e->rng = 0x9e3779b97f4a7c15ull * (t->idx + 1) ^ ((uint64_t)o->seed << 17) ^ perf_now_ns();
	if (!e->rng)
		e->rng = 1;
	for (unsigned w = 0; w < 4; w++)
		rnd(e);
	e->q = calloc(e->nq, sizeof(*e->q));
	if (!e->q)
		goto nomem;
	for (unsigned i = 0; i < e->nq; i++) {
		struct ioq *q = &e->q[i];
		struct perf_conn *c = &t->conns[i];
		uint32_t nchunks;

		q->e = e;
		q->fd = c->fd;
		q->tls = c->tls;
		q->qid = c->qid;
		q->hdgst = c->hdgst;
		q->ddgst = c->ddgst;
		q->maxh2c = c->maxh2cdata & ~3u;
		q->incap_max = e->sh->ctrl->incap_max;
		q->qd = o->qd;
		q->seq_next = (uint64_t)(((unsigned __int128)t->gq[i] * e->sh->units) / total_q);
		nchunks = (o->bs + q->maxh2c - 1) / q->maxh2c;
		q->slots = calloc(q->qd, sizeof(*q->slots));
		q->idle = calloc(q->qd, sizeof(*q->idle));
		q->h2cs = calloc((size_t)q->qd * nchunks, sizeof(*q->h2cs));
		q->iov_cap = IOV_MAX + q->qd * (3 + 3 * nchunks) + 64;
		q->iov = calloc(q->iov_cap, sizeof(*q->iov));
		q->rbuf = malloc(RBUF_SIZE);
		if (posix_memalign((void **)&q->bufs, 4096, (size_t)q->qd * o->bs))
			q->bufs = NULL;
		if (!q->slots || !q->idle || !q->h2cs || !q->iov || !q->rbuf || !q->bufs)
			goto nomem;
		memset(q->bufs, 0, (size_t)q->qd * o->bs);
		for (unsigned k = 0; k < q->qd; k++) {
			struct slot *s = &q->slots[k];

			s->cid = (uint16_t)k;
			s->buf = q->bufs + (size_t)k * o->bs;
			s->h2c = q->h2cs + (size_t)k * nchunks;
		}
	}
	return ring_init(e);
nomem:
	perf_err("thread %u: out of memory", t->idx);
	return -1;
}

static void engine_fini(struct engine *e)
{
	if (e->ring_ok)
		io_uring_queue_exit(&e->ring);
	for (unsigned i = 0; e->q && i < e->nq; i++) {
		struct ioq *q = &e->q[i];

		free(q->slots);
		free(q->idle);
		free(q->h2cs);
		free(q->iov);
		free(q->rbuf);
		free(q->bufs);
	}
	free(e->q);
}

/* ---- main loop ---------------------------------------------------------------- */

static const char *slot_state(const struct slot *s, char *buf, size_t len)
{
	if (s->write && !s->incap)
		snprintf(buf, len, "write, R2Ts for %u of %u bytes received", s->r2t_bytes, s->len);
	else if (s->write)
		snprintf(buf, len, "write with in-capsule data, waiting for CapsuleResp");
	else
		snprintf(buf, len, "read, %u of %u data bytes received%s", s->data_rcvd, s->len,
			 s->data_last ? ", waiting for CapsuleResp" : "");
	return buf;
}

static void check_timeouts(struct engine *e)
{
	uint64_t limit = (uint64_t)(e->o->io_timeout_s * 1e9);

	for (unsigned i = 0; i < e->nq; i++) {
		struct ioq *q = &e->q[i];

		for (unsigned k = 0; k < q->qd && !q->dead; k++) {
			struct slot *s = &q->slots[k];
			char buf[128];

			if (s->busy && e->now - s->t_start > limit)
				q_fatal(q, "I/O timeout: CID %u slba %" PRIu64 " outstanding for %.1f s (%s)",
					s->cid, s->slba, (double)(e->now - s->t_start) / 1e9,
					slot_state(s, buf, sizeof(buf)));
		}
	}
}

static void run_phase(struct engine *e, bool prefill)
{
	const struct perf_opts *o = e->o;
	uint64_t t0 = perf_now_ns(), last_check;

	e->prefill = prefill;
	e->running = true;
	e->now = t0;
	last_check = t0;
	if (prefill) {
		e->measure_start = e->end = UINT64_MAX;
	} else {
		e->measure_start = t0 + (uint64_t)(o->ramp_s * 1e9);
		e->end = e->measure_start + (uint64_t)(o->time_s * 1e9);
	}
	for (unsigned i = 0; i < e->nq; i++) {
		struct ioq *q = &e->q[i];

		q->nidle = 0;
		for (unsigned k = 0; k < q->qd; k++)
			q_start_io(e, q, &q->slots[k]);
	}

	for (;;) {
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 100000000 };
		struct io_uring_cqe *cqe;
		unsigned head, n = 0, outstanding = 0;
		bool idle = false;
		int r;

		/* Sends before receives: the kernel issues SQEs in order, and
		 * a recv that finds no data arms a poll first, which would
		 * delay the next command by that much at QD1. */
		for (unsigned i = 0; i < e->nq; i++) {
			struct ioq *q = &e->q[i];

			q_flush(q);
			if (q->recv_again) {
				q->recv_again = false;
				q_arm_recv(q);
			}
			outstanding += q->outstanding;
			idle |= e->q[i].nidle > 0;
		}
		if (e->running && idle && !outstanding && !prefill)
			ts.tv_nsec = 1000000; /* all units busy elsewhere: poll */
		if (e->o->poll) {
			/* Enter without waiting: submits (and runs the task
			 * work that turns socket readiness into CQEs over TLS),
			 * then receive from the sockets directly. */
			r = io_uring_submit_and_get_events(&e->ring);
		} else {
			r = io_uring_submit_and_wait_timeout(&e->ring, &cqe, 1, &ts, NULL);
		}
		if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			perf_err("thread %u: io_uring_submit_and_wait: %s", e->t->idx, strerror(-r));
			e->fatal = true;
			atomic_store(&e->sh->failed, 1);
			atomic_store(&e->sh->stop, true);
			break;
		}
		e->now = perf_now_ns();
		if (e->o->poll)
			for (unsigned i = 0; i < e->nq; i++)
				if (q_polls_recv(&e->q[i]))
					q_poll_recv(e, &e->q[i]);
		io_uring_for_each_cqe(&e->ring, head, cqe) {
			handle_cqe(e, cqe);
			n++;
		}
		io_uring_cq_advance(&e->ring, n);
		if (e->fatal)
			break;
		if (atomic_load_explicit(&e->sh->stop, memory_order_relaxed))
			e->running = false;
		if (!prefill && e->now >= e->end)
			e->running = false;
		outstanding = 0;
		for (unsigned i = 0; i < e->nq; i++) {
			q_retry_idle(e, &e->q[i]);
			outstanding += e->q[i].outstanding;
		}
		if (!outstanding && (!e->running || prefill))
			break;
		if (e->now - last_check >= 1000000000ull) {
			last_check = e->now;
			check_timeouts(e);
			if (e->fatal)
				break;
		}
	}
	if (!prefill) {
		uint64_t stop = e->now < e->end ? e->now : e->end;

		e->t->st.runtime_s = stop > e->measure_start ?
			(double)(stop - e->measure_start) / 1e9 : 0;
	}
}

void *engine_thread(void *arg)
{
	struct perf_thread *t = arg;
	struct perf_shared *sh = t->sh;
	struct engine e;
	int rc;

	memset(&e, 0, sizeof(e));
	e.t = t;
	e.sh = sh;
	e.o = sh->o;
	hist_init(&t->st.hist[0]);
	hist_init(&t->st.hist[1]);
	rc = engine_init(&e);
	if (rc < 0) {
		atomic_store(&sh->failed, 1);
		atomic_store(&sh->stop, true);
	}
	pthread_barrier_wait(sh->barrier);
	if (!atomic_load(&sh->stop)) {
		for (unsigned i = 0; i < e.nq; i++)
			q_arm_recv(&e.q[i]);
		if (e.o->prefill) {
			run_phase(&e, true);
			pthread_barrier_wait(sh->prefill_barrier);
		}
		if (!atomic_load(&sh->stop))
			run_phase(&e, false);
	} else if (e.o->prefill) {
		pthread_barrier_wait(sh->prefill_barrier);
	}
	t->rc = e.fatal || rc < 0 ? -1 : 0;
	engine_fini(&e);
	atomic_fetch_add(&sh->threads_done, 1);
	return NULL;
}

