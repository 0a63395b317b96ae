/* nvmegate-perf I/O engine, receive side: incoming bytes land in a
 * per-queue receive buffer that is parsed for as many PDUs as it holds
 * (large C2HData payloads are received straight into the slot's buffer).
 * The framing checks are net/tcp_frame.h's, read strictly: a target that
 * strays from the spec is reported, not tolerated. R2Ts are answered
 * here with H2CData. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "net/tcp_frame.h"
#include "tools/perf/engine.h"
#include "tools/perf/tls.h"

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

		uint32_t hl;

		memset(&h->pdu, 0, sizeof(h->pdu));
		hl = nvmg_pdu_init_hdr(&h->pdu.hdr, NVMG_TCP_H2C_DATA, q->hdgst, q->ddgst,
				       nvmg_pdu_hdr_total(NVMG_TCP_H2C_DATA, q->hdgst), dl);
		if (dl == len)
			h->pdu.hdr.flags |= NVMG_TCP_F_DATA_LAST;
		h->pdu.cccid = r->cccid;
		h->pdu.ttag = r->ttag;
		h->pdu.offset = htole32(off);
		h->pdu.length = htole32(dl);
		nvmg_pdu_put_hdgst(&h->pdu.hdr);
		iov_push(q, h, hl);
		iov_push(q, s->buf + off, dl);
		if (q->ddgst) {
			h->ddgst = nvmg_pdu_ddgst(s->buf + off, dl);
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

static void q_pdu_fatal(struct ioq *q, enum nvmg_pdu_err err, const struct nvmg_tcp_hdr *h)
{
	char buf[192];

	q_fatal(q, "%s", nvmg_pdu_err_str(err, h, q->hdgst, q->ddgst, buf, sizeof(buf)));
}

/* A checked header of need bytes (padding included) is in at p; a
 * C2HData's data, datal bytes, follows. */
static void q_hdr(struct engine *e, struct ioq *q, const uint8_t *p, uint32_t need, uint32_t datal)
{
	const struct nvmg_tcp_hdr *h = (const void *)p;

	if (h->type == NVMG_TCP_RSP) {
		struct nvmg_tcp_rsp r;

		memcpy(&r, p, sizeof(r));
		q->rstart += need;
		q_rsp(e, q, &r);
		return;
	}

	struct nvmg_tcp_data d;

	memcpy(&d, p, sizeof(d));
	if (h->type == NVMG_TCP_R2T) {
		q->rstart += need;
		q_r2t(q, &d);
		return;
	}

	/* C2HData */
	uint32_t off = le32toh(d.offset);
	enum nvmg_pdu_err err = nvmg_pdu_check_datal(&d, datal);
	struct slot *s;

	if (err) {
		q_pdu_fatal(q, err, h);
		return;
	}
	s = q_slot(q, le16toh(d.cccid), "C2HData");
	if (!s)
		return;
	if (s->write) {
		q_fatal(q, "C2HData for CID %u, a write", s->cid);
		return;
	}
	if (off != s->data_rcvd || (uint64_t)off + datal > s->len || s->data_last) {
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
	if (datal < DIRECT_MIN)
		q->hdr_only = false;
}

/* What an I/O queue receives; ICResp came before, during setup. */
#define IO_PDUS                                                                     \
	(NVMG_PDU_BIT(NVMG_TCP_RSP) | NVMG_PDU_BIT(NVMG_TCP_C2H_DATA) |              \
	 NVMG_PDU_BIT(NVMG_TCP_R2T) | NVMG_PDU_BIT(NVMG_TCP_C2H_TERM))

/* The common header is in: check it and work out how many header bytes
 * to wait for. Returns false if the queue died or more bytes are needed. */
static bool q_check_hdr(struct ioq *q, const uint8_t *p, uint32_t avail, uint32_t *need,
			uint32_t *datal)
{
	const struct nvmg_tcp_hdr *h = (const void *)p;
	enum nvmg_pdu_err err = nvmg_pdu_check_hdr(h, IO_PDUS, q->hdgst, true, need);
	uint32_t pad = 0;

	*datal = 0;
	if (!err && h->type == NVMG_TCP_C2H_TERM) {
		struct nvmg_tcp_term t;

		if (avail < le32toh(h->plen))
			return false;
		memcpy(&t, p, sizeof(t));
		q_fatal(q, "target sent C2HTermReq: %s (FES 0x%x, FEI 0x%x)",
			nvmg_pdu_fes_name(le16toh(t.fes)), le16toh(t.fes), le32toh(t.fei));
		return false;
	}
	if (!err && h->type == NVMG_TCP_C2H_DATA)
		err = nvmg_pdu_data_span(h, *need, q->ddgst, &pad, datal);
	else if (!err)
		err = nvmg_pdu_check_no_data(h, *need);
	if (err) {
		q_pdu_fatal(q, err, h);
		return false;
	}
	/* The padding up to PDO is read as part of the header. */
	*need += pad;
	if (avail < *need)
		return false;
	err = nvmg_pdu_check_hdgst(h, q->hdgst);
	if (err) {
		q_pdu_fatal(q, err, h);
		return false;
	}
	return true;
}

static void q_parse(struct engine *e, struct ioq *q)
{
	while (!q->dead) {
		uint32_t avail = q->rend - q->rstart;
		const uint8_t *p = q->rbuf + q->rstart;

		switch (q->ps) {
		case PS_HDR: {
			uint32_t need, datal;

			if (avail < sizeof(struct nvmg_tcp_hdr))
				return;
			if (!q_check_hdr(q, p, avail, &need, &datal))
				return;
			q_hdr(e, q, p, need, datal);
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
			if (nvmg_pdu_check_ddgst(q->crc, q->ddg)) {
				memcpy(&have, q->ddg, 4);
				exp = nvmg_crc32c_final(q->crc);
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

/* What is left unparsed moves to the front of rbuf, before more lands. */
static void rbuf_compact(struct ioq *q)
{
	if (q->rstart == q->rend) {
		q->rstart = q->rend = 0;
	} else if (q->rstart) {
		memmove(q->rbuf, q->rbuf + q->rstart, q->rend - q->rstart);
		q->rend -= q->rstart;
		q->rstart = 0;
	}
}

/* The bytes that surely follow the current C2HData's payload: its data
 * digest, and the header of a next PDU unless this one may end the
 * command (LAST_PDU with SUCCESS: no CapsuleResp comes). */
static uint32_t data_tail(const struct ioq *q)
{
	bool end = (q->cur_flags & NVMG_TCP_F_DATA_LAST) && (q->cur_flags & NVMG_TCP_F_DATA_SUCCESS);

	return (q->ddgst ? NVMG_PDU_DGST_LEN : 0) + (end ? 0 : PDU_HDR_MIN);
}

/* Where the next clear-text receive lands (q->rmsg): a large payload in
 * place, and what surely follows it in rbuf by the same receive (WAITALL
 * cannot wait for bytes that may never come); else rbuf. */
static void recv_target(struct ioq *q)
{
	if (q->ps == PS_DATA && q->rstart == q->rend && q->data_left >= DIRECT_MIN) {
		q->direct = true;
		q->hdr_only = true;
		q->rstart = q->rend = 0;
		q->riov[0] = (struct iovec){ q->dst, q->data_left };
		q->riov[1] = (struct iovec){ q->rbuf, data_tail(q) };
		q->rmsg = (struct msghdr){ .msg_iov = q->riov, .msg_iovlen = q->riov[1].iov_len ? 2 : 1 };
	} else {
		uint32_t hl = PDU_HDR_MIN + (q->hdgst ? NVMG_PDU_DGST_LEN : 0), len;

		q->direct = false;
		rbuf_compact(q);
		len = RBUF_SIZE - q->rend;
		/* While large payloads flow, a header alone: a larger receive
		 * would take the payload behind it into rbuf, to be copied out
		 * again (that copy cost a fifth of this side's CPU at 128 KiB). */
		if (q->hdr_only && q->ps == PS_HDR && q->rend < hl)
			len = hl - q->rend;
		q->riov[0] = (struct iovec){ q->rbuf + q->rend, len };
		q->rmsg = (struct msghdr){ .msg_iov = q->riov, .msg_iovlen = 1 };
	}
}

void q_arm_recv(struct ioq *q)
{
	struct io_uring_sqe *sqe;
	uint8_t *tls_in = NULL;
	size_t tls_room = 0;

	if (q->recv_busy || q->dead || q_polls_recv(q))
		return;
	/* Over TLS, ciphertext lands after what OpenSSL has not read yet. */
	if (q->tls && !(tls_room = tls_chan_rx_space(q->tls, &tls_in))) {
		q_fatal(q, "TLS: receive buffer full");
		return;
	}
	sqe = get_sqe(q->e);
	if (!sqe) {
		q_fatal(q, "io_uring submission queue full");
		return;
	}
	if (q->tls) {
		q->direct = false;
		io_uring_prep_recv(sqe, q->fd, tls_in, tls_room, 0);
	} else {
		recv_target(q);
		io_uring_prep_recvmsg(sqe, q->fd, &q->rmsg, q->direct ? MSG_WAITALL : 0);
	}
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)q);
	q->recv_busy = true;
}

bool q_polls_recv(const struct ioq *q)
{
	return q->e->o->poll && !q->tls;
}

void q_poll_recv(struct engine *e, struct ioq *q)
{
	ssize_t r;

	if (q->dead)
		return;
	recv_target(q);
	r = recvmsg(q->fd, &q->rmsg, MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	q_recv_done(e, q, r < 0 ? -errno : (int)r);
}

/* n bytes of a C2HData's payload landed at dst (received or decrypted
 * in place). */
static void direct_done(struct engine *e, struct ioq *q, uint32_t n)
{
	if (q->ddgst)
		q->crc = nvmg_crc32c_update(q->crc, q->dst, n);
	q->dst += n;
	q->data_left -= n;
	if (!q->data_left)
		q_data_done(e, q);
}

/* Ciphertext arrived: plaintext into the parser, large data decrypted
 * in place as it is received in place in the clear. */
static void tls_recv_done(struct engine *e, struct ioq *q, size_t res)
{
	tls_chan_received(q->tls, res);
	for (;;) {
		int n;

		if (q->ps == PS_DATA && q->rstart == q->rend && q->data_left >= DIRECT_MIN) {
			n = tls_chan_read(q->tls, q->dst, q->data_left);
			if (n > 0)
				direct_done(e, q, (uint32_t)n);
		} else {
			rbuf_compact(q);
			n = tls_chan_read(q->tls, q->rbuf + q->rend, RBUF_SIZE - q->rend);
			if (n > 0)
				q->rend += (uint32_t)n;
		}
		if (n < 0) {
			q_fatal(q, "TLS: bad record or session closed by target");
			return;
		}
		if (n == 0)
			break;
		q_parse(e, q);
		if (q->dead)
			return;
	}
	q->recv_again = true;
}

void q_recv_done(struct engine *e, struct ioq *q, int res)
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
	if (q->tls) {
		tls_recv_done(e, q, (size_t)res);
		return;
	}
	if (q->direct) {
		uint32_t n = (uint32_t)res < q->data_left ? (uint32_t)res : q->data_left;

		/* Beyond the payload: the tail, at the start of rbuf. */
		q->rend = (uint32_t)res - n;
		direct_done(e, q, n);
	} else {
		q->rend += (uint32_t)res;
	}
	q_parse(e, q);
	q->recv_again = true;
}

