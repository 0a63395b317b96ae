/* nvmegate-perf I/O engine: one thread, one io_uring, several NVMe/TCP
 * I/O queues. Per queue there is at most one recv and one sendmsg in
 * flight. Outgoing PDUs are gathered as iovecs pointing into preallocated
 * per-slot headers and data buffers and flushed with one sendmsg per queue
 * per loop turn; incoming bytes land in a per-queue receive buffer that is
 * parsed for as many PDUs as it holds (large C2HData payloads are received
 * straight into the slot's buffer). Nothing is allocated per I/O. */
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

#include "net/crc32c.h"
#include "tools/perf/perf.h"

#define RBUF_SIZE (256u * 1024)
#define DIRECT_MIN (16u * 1024)  /* receive payloads this big in place */
#define MAX_REPORTS 10           /* per-I/O error messages per run */
#define OP_SEND 1ull

struct cmd_hdr {
	struct nvmg_tcp_cmd pdu;
	uint32_t hdgst;
	uint32_t ddgst;
} __attribute__((packed));

struct h2c_hdr {
	struct nvmg_tcp_data pdu;
	uint32_t hdgst;
	uint32_t ddgst;
} __attribute__((packed));

struct slot {
	struct cmd_hdr cmd;
	uint16_t cid;
	bool busy;
	bool write;
	bool incap;
	bool data_last;
	bool prefill;
	uint32_t len;
	uint32_t data_rcvd;
	uint32_t r2t_bytes;
	uint64_t unit;
	uint64_t slba;
	uint32_t gen;
	uint64_t t_start;
	uint8_t *buf;
	struct h2c_hdr *h2c;
};

enum pstate { PS_HDR, PS_DATA, PS_DDGST };

struct engine;

struct ioq {
	struct engine *e;
	int fd;
	uint16_t qid;
	bool hdgst, ddgst;
	uint32_t hd, dd;
	uint32_t maxh2c;
	uint32_t incap_max;
	unsigned qd;
	struct slot *slots;
	uint8_t *bufs;
	struct h2c_hdr *h2cs;
	unsigned outstanding;
	uint16_t *idle;
	unsigned nidle;
	bool dead;

	/* send side */
	struct iovec *iov;
	unsigned iov_head, iov_tail, iov_cap, send_n;
	bool send_busy;
	struct msghdr msg;

	/* receive side */
	uint8_t *rbuf;
	uint32_t rstart, rend;
	bool recv_busy;
	bool direct;

	/* PDU parser */
	enum pstate ps;
	struct slot *cur;
	uint8_t cur_flags;
	uint32_t cur_len, cur_off;
	uint8_t *dst;
	uint32_t data_left;
	uint32_t crc;
	uint8_t ddg[4];
	unsigned ddg_have;

	uint64_t seq_next;
};

struct engine {
	struct perf_thread *t;
	struct perf_shared *sh;
	const struct perf_opts *o;
	struct io_uring ring;
	bool ring_ok;
	struct ioq *q;
	unsigned nq;
	uint64_t now;
	uint64_t measure_start, end;
	bool running;
	bool prefill;
	bool fatal;
	uint64_t rng;
	uint32_t lba_size;
};

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

static void q_fatal(struct ioq *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void q_fatal(struct ioq *q, const char *fmt, ...)
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

static struct io_uring_sqe *get_sqe(struct engine *e)
{
	struct io_uring_sqe *s = io_uring_get_sqe(&e->ring);

	if (!s) {
		io_uring_submit(&e->ring);
		s = io_uring_get_sqe(&e->ring);
	}
	return s;
}

static void iov_push(struct ioq *q, void *base, size_t len)
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
	uint32_t lpu = sh->lbas_per_unit;

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

	h->type = NVMG_TCP_CMD;
	h->flags = (q->hdgst ? NVMG_TCP_F_HDGST : 0) | (s->incap && q->ddgst ? NVMG_TCP_F_DDGST : 0);
	h->hlen = sizeof(s->cmd.pdu);
	h->pdo = s->incap ? (uint8_t)(sizeof(s->cmd.pdu) + q->hd) : 0;
	h->plen = htole32(sizeof(s->cmd.pdu) + q->hd + (s->incap ? s->len + q->dd : 0));
	if (q->hdgst)
		s->cmd.hdgst = htole32(nvmg_crc32c(&s->cmd.pdu, sizeof(s->cmd.pdu)));
	iov_push(q, &s->cmd, sizeof(s->cmd.pdu) + q->hd);
	if (s->incap) {
		iov_push(q, s->buf, s->len);
		if (q->ddgst) {
			s->cmd.ddgst = htole32(nvmg_crc32c(s->buf, s->len));
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

static void q_complete(struct engine *e, struct ioq *q, struct slot *s, uint16_t sf,
		       const char *detail)
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

static struct slot *q_slot(struct ioq *q, uint16_t cid, const char *pdu)
{
	if (cid >= q->qd || !q->slots[cid].busy) {
		q_fatal(q, "%s for CID %u, which is not outstanding", pdu, cid);
		return NULL;
	}
	return &q->slots[cid];
}

static void q_rsp(struct engine *e, struct ioq *q, const struct nvmg_tcp_rsp *r)
{
	struct slot *s = q_slot(q, le16toh(r->cqe.cid), "CapsuleResp");
	uint16_t sf = le16toh(r->cqe.status) >> 1;
	char detail[96];

	if (!s)
		return;
	if (!sf && !s->write && s->data_rcvd != s->len) {
		snprintf(detail, sizeof(detail),
			 "read completed successfully after %u of %u data bytes", s->data_rcvd, s->len);
		q_complete(e, q, s, 0, detail);
		return;
	}
	if (!sf && s->write && !s->incap && s->r2t_bytes != s->len) {
		snprintf(detail, sizeof(detail),
			 "write completed successfully after R2Ts for %u of %u bytes",
			 s->r2t_bytes, s->len);
		q_complete(e, q, s, 0, detail);
		return;
	}
	q_complete(e, q, s, sf, NULL);
}

static void q_r2t(struct ioq *q, const struct nvmg_tcp_data *r)
{
	struct slot *s = q_slot(q, le16toh(r->cccid), "R2T");
	uint32_t off, len;
	unsigned i = 0;

	if (!s)
		return;
	off = le32toh(r->offset);
	len = le32toh(r->length);
	if (!s->write || s->incap) {
		q_fatal(q, "R2T for CID %u, a %s", s->cid,
			s->write ? "write with in-capsule data" : "read");
		return;
	}
	if (!len || (uint64_t)off + len > s->len) {
		q_fatal(q, "R2T for CID %u out of range: R2TO %u R2TL %u, command length %u",
			s->cid, off, len, s->len);
		return;
	}
	s->r2t_bytes += len;
	while (len) {
		uint32_t dl = len < q->maxh2c ? len : q->maxh2c;
		struct h2c_hdr *h = &s->h2c[i++];

		memset(&h->pdu, 0, sizeof(h->pdu));
		h->pdu.hdr.type = NVMG_TCP_H2C_DATA;
		h->pdu.hdr.flags = (q->hdgst ? NVMG_TCP_F_HDGST : 0) |
				   (q->ddgst ? NVMG_TCP_F_DDGST : 0) |
				   (dl == len ? NVMG_TCP_F_DATA_LAST : 0);
		h->pdu.hdr.hlen = sizeof(h->pdu);
		h->pdu.hdr.pdo = (uint8_t)(sizeof(h->pdu) + q->hd);
		h->pdu.hdr.plen = htole32(sizeof(h->pdu) + q->hd + dl + q->dd);
		h->pdu.cccid = r->cccid;
		h->pdu.ttag = r->ttag;
		h->pdu.offset = htole32(off);
		h->pdu.length = htole32(dl);
		if (q->hdgst)
			h->hdgst = htole32(nvmg_crc32c(&h->pdu, sizeof(h->pdu)));
		iov_push(q, h, sizeof(h->pdu) + q->hd);
		iov_push(q, s->buf + off, dl);
		if (q->ddgst) {
			h->ddgst = htole32(nvmg_crc32c(s->buf + off, dl));
			iov_push(q, &h->ddgst, 4);
		}
		off += dl;
		len -= dl;
	}
}

/* ---- receiving ------------------------------------------------------------ */

static void q_c2h_finish(struct engine *e, struct ioq *q)
{
	struct slot *s = q->cur;

	q->ps = PS_HDR;
	q->cur = NULL;
	s->data_rcvd += q->cur_len;
	if (q->cur_flags & NVMG_TCP_F_DATA_LAST) {
		s->data_last = true;
		if (s->data_rcvd != s->len) {
			q_fatal(q, "C2HData with LAST_PDU for CID %u after %u of %u bytes", s->cid,
				s->data_rcvd, s->len);
			return;
		}
	}
	if (q->cur_flags & NVMG_TCP_F_DATA_SUCCESS) {
		if (!(q->cur_flags & NVMG_TCP_F_DATA_LAST)) {
			q_fatal(q, "C2HData with SUCCESS but without LAST_PDU for CID %u", s->cid);
			return;
		}
		q_complete(e, q, s, 0, NULL);
	}
}

static void q_data_done(struct engine *e, struct ioq *q)
{
	if (q->ddgst) {
		q->ps = PS_DDGST;
		q->ddg_have = 0;
	} else {
		q_c2h_finish(e, q);
	}
}

static void q_hdr(struct engine *e, struct ioq *q, const uint8_t *p, uint32_t need)
{
	const struct nvmg_tcp_hdr *h = (const void *)p;
	uint32_t plen = le32toh(h->plen);

	if (h->type == NVMG_TCP_RSP) {
		struct nvmg_tcp_rsp r;

		if (plen != 24 + q->hd || (h->flags & ~NVMG_TCP_F_HDGST)) {
			q_fatal(q, "malformed CapsuleResp: PLEN %u (expected %u) flags 0x%02x", plen,
				24 + q->hd, h->flags);
			return;
		}
		memcpy(&r, p, sizeof(r));
		q->rstart += need;
		q_rsp(e, q, &r);
		return;
	}

	struct nvmg_tcp_data d;

	memcpy(&d, p, sizeof(d));
	if (h->type == NVMG_TCP_R2T) {
		if (plen != 24 + q->hd || (h->flags & ~NVMG_TCP_F_HDGST)) {
			q_fatal(q, "malformed R2T: PLEN %u (expected %u) flags 0x%02x", plen,
				24 + q->hd, h->flags);
			return;
		}
		q->rstart += need;
		q_r2t(q, &d);
		return;
	}

	/* C2HData */
	uint32_t datal = le32toh(d.length), off = le32toh(d.offset);
	bool hasdd = h->flags & NVMG_TCP_F_DDGST;
	struct slot *s;

	if (hasdd != q->ddgst) {
		q_fatal(q, "C2HData DDGST flag %s, but data digest is %s", hasdd ? "set" : "clear",
			q->ddgst ? "enabled" : "disabled");
		return;
	}
	if (plen != h->pdo + datal + q->dd) {
		q_fatal(q, "C2HData PLEN %u != PDO %u + DATAL %u%s", plen, h->pdo, datal,
			q->ddgst ? " + 4 (data digest)" : "");
		return;
	}
	s = q_slot(q, le16toh(d.cccid), "C2HData");
	if (!s)
		return;
	if (s->write) {
		q_fatal(q, "C2HData for CID %u, a write", s->cid);
		return;
	}
	if (!datal || off != s->data_rcvd || (uint64_t)off + datal > s->len || s->data_last) {
		q_fatal(q, "C2HData for CID %u: DATAO %u DATAL %u, but %u of %u bytes received%s",
			s->cid, off, datal, s->data_rcvd, s->len,
			s->data_last ? " and LAST_PDU seen" : "");
		return;
	}
	q->rstart += need;
	q->cur = s;
	q->cur_flags = h->flags;
	q->cur_len = datal;
	q->cur_off = off;
	q->dst = s->buf + off;
	q->data_left = datal;
	q->crc = NVMG_CRC32C_INIT;
	q->ps = PS_DATA;
}

static void q_parse(struct engine *e, struct ioq *q)
{
	while (!q->dead) {
		uint32_t avail = q->rend - q->rstart;
		const uint8_t *p = q->rbuf + q->rstart;

		switch (q->ps) {
		case PS_HDR: {
			const struct nvmg_tcp_hdr *h = (const void *)p;
			uint32_t need, plen;

			if (avail < sizeof(*h))
				return;
			plen = le32toh(h->plen);
			if (h->type == NVMG_TCP_C2H_TERM) {
				struct nvmg_tcp_term t;

				if (h->hlen != sizeof(t) || plen < sizeof(t) ||
				    plen > sizeof(t) + NVMG_TCP_TERM_MAX_DATA) {
					q_fatal(q, "malformed C2HTermReq (hlen %u plen %u)", h->hlen, plen);
					return;
				}
				if (avail < plen)
					return;
				memcpy(&t, p, sizeof(t));
				q_fatal(q, "target sent C2HTermReq: %s (FES 0x%x, FEI 0x%x)",
					perf_fes_str(le16toh(t.fes)), le16toh(t.fes), le32toh(t.fei));
				return;
			}
			if (h->type != NVMG_TCP_RSP && h->type != NVMG_TCP_C2H_DATA &&
			    h->type != NVMG_TCP_R2T) {
				q_fatal(q, "unexpected %s PDU (type 0x%02x hlen %u plen %u)",
					perf_pdu_name(h->type), h->type, h->hlen, plen);
				return;
			}
			if (h->hlen != 24) {
				q_fatal(q, "%s PDU with HLEN %u, expected 24", perf_pdu_name(h->type),
					h->hlen);
				return;
			}
			if (!!(h->flags & NVMG_TCP_F_HDGST) != q->hdgst) {
				q_fatal(q, "%s PDU HDGST flag %s, but header digest is %s",
					perf_pdu_name(h->type),
					(h->flags & NVMG_TCP_F_HDGST) ? "set" : "clear",
					q->hdgst ? "enabled" : "disabled");
				return;
			}
			need = 24 + q->hd;
			if (h->type == NVMG_TCP_C2H_DATA) {
				if (h->pdo < need) {
					q_fatal(q, "C2HData PDO %u, expected at least %u", h->pdo, need);
					return;
				}
				need = h->pdo;
			}
			if (avail < need)
				return;
			if (q->hdgst) {
				uint32_t have, exp = nvmg_crc32c(p, 24);

				memcpy(&have, p + 24, 4);
				if (le32toh(have) != exp) {
					q_fatal(q, "header digest error in %s PDU: got 0x%08x, expected 0x%08x",
						perf_pdu_name(h->type), le32toh(have), exp);
					return;
				}
			}
			q_hdr(e, q, p, need);
			break;
		}
		case PS_DATA: {
			uint32_t n = avail < q->data_left ? avail : q->data_left;

			if (!n)
				return;
			memcpy(q->dst, p, n);
			if (q->ddgst)
				q->crc = nvmg_crc32c_update(q->crc, q->dst, n);
			q->dst += n;
			q->data_left -= n;
			q->rstart += n;
			if (q->data_left)
				return;
			q_data_done(e, q);
			break;
		}
		case PS_DDGST: {
			uint32_t n = 4 - q->ddg_have, have, exp;

			if (avail < n)
				n = avail;
			if (!n)
				return;
			memcpy(q->ddg + q->ddg_have, p, n);
			q->ddg_have += n;
			q->rstart += n;
			if (q->ddg_have < 4)
				return;
			memcpy(&have, q->ddg, 4);
			exp = nvmg_crc32c_final(q->crc);
			if (le32toh(have) != exp) {
				q_fatal(q, "data digest error in C2HData for CID %u (DATAO %u DATAL %u): got 0x%08x, expected 0x%08x",
					q->cur->cid, q->cur_off, q->cur_len, le32toh(have), exp);
				return;
			}
			q_c2h_finish(e, q);
			break;
		}
		}
	}
}

static void q_arm_recv(struct ioq *q)
{
	struct io_uring_sqe *sqe;

	if (q->recv_busy || q->dead)
		return;
	sqe = get_sqe(q->e);
	if (!sqe) {
		q_fatal(q, "io_uring submission queue full");
		return;
	}
	if (q->ps == PS_DATA && q->rstart == q->rend && q->data_left >= DIRECT_MIN) {
		q->direct = true;
		q->rstart = q->rend = 0;
		io_uring_prep_recv(sqe, q->fd, q->dst, q->data_left, MSG_WAITALL);
	} else {
		q->direct = false;
		if (q->rstart == q->rend) {
			q->rstart = q->rend = 0;
		} else if (q->rstart) {
			memmove(q->rbuf, q->rbuf + q->rstart, q->rend - q->rstart);
			q->rend -= q->rstart;
			q->rstart = 0;
		}
		io_uring_prep_recv(sqe, q->fd, q->rbuf + q->rend, RBUF_SIZE - q->rend, 0);
	}
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)q);
	q->recv_busy = true;
}

static void q_recv_done(struct engine *e, struct ioq *q, int res)
{
	q->recv_busy = false;
	if (q->dead)
		return;
	if (res == 0) {
		q_fatal(q, "connection closed by target");
		return;
	}
	if (res < 0) {
		q_fatal(q, "recv: %s", strerror(-res));
		return;
	}
	if (q->direct) {
		uint32_t n = (uint32_t)res;

		if (q->ddgst)
			q->crc = nvmg_crc32c_update(q->crc, q->dst, n);
		q->dst += n;
		q->data_left -= n;
		if (!q->data_left)
			q_data_done(e, q);
	} else {
		q->rend += (uint32_t)res;
	}
	q_parse(e, q);
	q_arm_recv(q);
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
		q->qid = c->qid;
		q->hdgst = c->hdgst;
		q->ddgst = c->ddgst;
		q->hd = c->hdgst ? 4 : 0;
		q->dd = c->ddgst ? 4 : 0;
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

		for (unsigned i = 0; i < e->nq; i++) {
			q_flush(&e->q[i]);
			outstanding += e->q[i].outstanding;
			idle |= e->q[i].nidle > 0;
		}
		if (e->running && idle && !outstanding && !prefill)
			ts.tv_nsec = 1000000; /* all units busy elsewhere: poll */
		r = io_uring_submit_and_wait_timeout(&e->ring, &cqe, 1, &ts, NULL);
		if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			perf_err("thread %u: io_uring_submit_and_wait: %s", e->t->idx, strerror(-r));
			e->fatal = true;
			atomic_store(&e->sh->failed, 1);
			atomic_store(&e->sh->stop, true);
			break;
		}
		e->now = perf_now_ns();
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
