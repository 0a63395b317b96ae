/* NVMe/TCP connections, receive side. By default, and always for TLS,
 * a connection takes single receives into its own buffer (rbuf), many
 * PDUs per receive, and parses them there. With NVMEGATED_RECV_MULTISHOT=1
 * (Linux 6.0+), plain connections keep a multishot receive armed into the
 * reactor's provided-buffer ring instead and parse PDUs in place in those
 * buffers, giving each back as soon as it is parsed; only a header split
 * across two buffers is copied together (into rbuf). Either way large data
 * (a big H2CData) is received straight into the command's buffer: the
 * multishot receive is cancelled for it and armed again after. The
 * framing checks are net/tcp_frame.h's; a framing error becomes a
 * C2HTermReq. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "net/tcp_conn.h"
#include "net/tcp_frame.h"
#include "net/tcp_tls.h"

static int cmd_get_buf(struct tcp_cmd *cmd)
{
	uint32_t len = cmd->req.data_len;

	if (!len)
		return 0;
	cmd->buf = nvmg_buf_get(nvmg_reactor_bufpool(cmd->conn->r), len);
	if (!cmd->buf)
		return -ENOMEM;
	cmd->buf_cap = len;
	cmd->req.buf = cmd->buf;
	return 0;
}

static void rx_start_data(struct tcp_conn *c, enum rx_kind kind, uint8_t *dst, uint32_t len)
{
	c->rx_kind = kind;
	c->rx_dst = dst;
	c->rx_len = len;
	c->rx_done = 0;
	c->rx_crc = NVMG_CRC32C_INIT;
	c->ddgst_got = 0;
	c->rx_state = c->pad_left ? RX_PAD : RX_DATA;
}

static void cmd_fail(struct tcp_cmd *cmd, uint16_t status)
{
	nvmg_req_complete(&cmd->req, status);
}

static void cmd_execute(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;

	/* Over TLS, Connect must name the host and subsystem the PSK
	 * identity named: a host's key admits that host only. */
	if (c->tls && c->state != CS_LIVE) {
		uint16_t status = tcp_tls_check_connect(c, &cmd->req);

		if (status) {
			cmd_fail(cmd, status);
			return;
		}
	}
	cmd->state = CMD_EXEC;
	cmd->req.execute(&cmd->req);
}

/* Whole data of a capsule or H2CData PDU has arrived (digest checked). */
static void rx_data_done(struct tcp_conn *c, bool digest_ok)
{
	struct tcp_cmd *cmd = c->rx_cmd;

	c->rx_state = RX_HDR;
	c->rx_cmd = NULL;
	if (c->rx_kind == RXK_DISCARD) {
		if (cmd && cmd->early_status)
			cmd_fail(cmd, cmd->early_status);
		return;
	}
	if (!digest_ok)
		cmd->ddgst_err = true;
	if (c->rx_kind == RXK_H2C) {
		cmd->h2c_done += c->rx_len;
		if (cmd->h2c_done < cmd->req.data_len)
			return;
	}
	/* A data digest error fails only this command (transient: retry). */
	if (cmd->ddgst_err)
		cmd_fail(cmd, NVMG_SC_GENERIC(NVME_SC_TRAN_TPORT_ERROR));
	else
		cmd_execute(cmd);
}

static void handle_icreq(struct tcp_conn *c)
{
	const struct nvmg_tcp_icreq *req = (const void *)c->hdr;
	struct nvmg_tcp_icresp *rsp = (struct nvmg_tcp_icresp *)c->ctl_buf;

	if (nvmg_pdu_check_no_data(&req->hdr, c->hdr_total)) {
		tcp_conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, offsetof(struct nvmg_tcp_hdr, plen), req, sizeof(*req));
		return;
	}
	if (le16toh(req->pfv) != 0) {
		tcp_conn_fatal(c, NVMG_TCP_FES_UNSUPPORTED_PARAM, offsetof(struct nvmg_tcp_icreq, pfv), req, sizeof(*req));
		return;
	}
	if (req->hpda > 31) {
		tcp_conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, offsetof(struct nvmg_tcp_icreq, hpda), req, sizeof(*req));
		return;
	}
	c->c2h_align = (req->hpda + 1u) * 4;
	c->hdgst = req->digest & NVMG_TCP_HDGST_ENABLE;
	c->ddgst = req->digest & NVMG_TCP_DDGST_ENABLE;
	memset(rsp, 0, sizeof(*rsp));
	nvmg_pdu_init_hdr(&rsp->hdr, NVMG_TCP_ICRESP, false, false, 0, 0);
	rsp->pfv = 0;
	rsp->cpda = 0; /* Linux hosts refuse anything else */
	rsp->digest = req->digest & (NVMG_TCP_HDGST_ENABLE | NVMG_TCP_DDGST_ENABLE);
	rsp->maxh2cdata = htole32(MAXH2CDATA);
	c->ctl.iov[0] = (struct iovec){ rsp, sizeof(*rsp) };
	c->ctl.niov = 1;
	tcp_send_enqueue(c, &c->ctl);
	c->state = CS_WAIT_CONNECT;
	tcp_conn_progress(c);
	log_debug("%s: ICReq (hdgst %d, ddgst %d)", c->peer, c->hdgst, c->ddgst);
}

/* Data length carried by a PDU and its padding, validated against PLEN.
 * Any error in them is reported at PLEN (FEI 4), as hosts expect. */
static bool pdu_data_len(struct tcp_conn *c, const struct nvmg_tcp_hdr *h, uint32_t *len)
{
	return nvmg_pdu_data_span(h, c->hdr_total, c->ddgst, &c->pad_left, len) == NVMG_PDU_OK;
}

static void handle_capsule(struct tcp_conn *c)
{
	const struct nvmg_tcp_cmd *pdu = (const void *)c->hdr;
	uint32_t in_len, max_in;
	struct tcp_cmd *cmd;
	uint16_t status, sgl_status;

	tcp_conn_check_live(c);
	if (!pdu_data_len(c, &pdu->hdr, &in_len)) {
		tcp_conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, offsetof(struct nvmg_tcp_hdr, plen), c->hdr, c->hdr_total);
		return;
	}
	cmd = tcp_cmd_alloc(c);
	if (!cmd) {
		/* The host overran the queue size it asked for. */
		tcp_conn_fatal(c, NVMG_TCP_FES_PDU_SEQUENCE, 0, c->hdr, c->hdr_total);
		return;
	}
	cmd->req.cmd = pdu->sqe;
	/* Before Connect the queue is unknown: Connect data (1 KiB) always
	 * fits the admin queue's 8 KiB. */
	max_in = c->state == CS_LIVE ? c->sq.incapsule_max : NVMG_ADMIN_INCAPSULE;
	sgl_status = nvmg_pdu_capsule_sgl(&pdu->sqe.dptr, in_len, max_in, &cmd->req.sgl_len);
	status = nvmg_req_init(&cmd->req);
	if (!status && sgl_status)
		status = sgl_status;
	/* Until a Connect succeeds the queue takes one command at a time:
	 * a second Connect racing the first would bind the socket twice. */
	if (!status && c->state != CS_LIVE && c->nr_busy > 1)
		status = NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR;
	if (!status && in_len && cmd->req.dir != NVMG_DIR_FROM_HOST)
		status = NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVME_SC_DNR;
	if (!status && cmd_get_buf(cmd))
		status = NVMG_SC_GENERIC(NVME_SC_INTERNAL);
	if (status) {
		if (in_len) {
			/* Skip the data, then answer. */
			cmd->early_status = status;
			c->rx_cmd = cmd;
			rx_start_data(c, RXK_DISCARD, NULL, in_len);
		} else {
			cmd_fail(cmd, status);
		}
		return;
	}
	if (in_len) {
		c->rx_cmd = cmd;
		rx_start_data(c, RXK_CAPSULE, cmd->buf, in_len);
		return;
	}
	if (cmd->req.dir == NVMG_DIR_FROM_HOST && cmd->req.data_len) {
		cmd->state = CMD_WAIT_H2C;
		tcp_queue_r2t(cmd);
		return;
	}
	cmd_execute(cmd);
}

static void handle_h2c(struct tcp_conn *c)
{
	const struct nvmg_tcp_data *pdu = (const void *)c->hdr;
	uint16_t ttag = le16toh(pdu->ttag);
	uint32_t off = le32toh(pdu->offset), len = le32toh(pdu->length), plen_data;
	struct tcp_cmd *cmd;

	if (!pdu_data_len(c, &pdu->hdr, &plen_data) || nvmg_pdu_check_datal(pdu, plen_data)) {
		tcp_conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, offsetof(struct nvmg_tcp_hdr, plen), c->hdr, c->hdr_total);
		return;
	}
	if (ttag >= NR_CMDS || c->cmds[ttag].state != CMD_WAIT_H2C || c->cmds[ttag].req.cmd.cid != pdu->cccid) {
		tcp_conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, offsetof(struct nvmg_tcp_data, ttag), c->hdr, c->hdr_total);
		return;
	}
	cmd = &c->cmds[ttag];
	if (cmd->send.linked) {
		/* Data for an R2T we have not finished sending. */
		tcp_conn_fatal(c, NVMG_TCP_FES_PDU_SEQUENCE, 0, c->hdr, c->hdr_total);
		return;
	}
	if (len > MAXH2CDATA) {
		tcp_conn_fatal(c, NVMG_TCP_FES_R2T_LIMIT, offsetof(struct nvmg_tcp_data, length), c->hdr, c->hdr_total);
		return;
	}
	if (off != cmd->h2c_done || off + (uint64_t)len > cmd->req.data_len) {
		tcp_conn_fatal(c, NVMG_TCP_FES_DATA_OUT_OF_RANGE, offsetof(struct nvmg_tcp_data, offset), c->hdr, c->hdr_total);
		return;
	}
	c->rx_cmd = cmd;
	rx_start_data(c, RXK_H2C, (uint8_t *)cmd->buf + off, len);
}

/* A complete header is in c->hdr: dispatch on its type. */
static void handle_header(struct tcp_conn *c)
{
	const struct nvmg_tcp_hdr *h = (const void *)c->hdr;

	if (nvmg_pdu_check_hdgst(h, c->hdgst)) {
		tcp_conn_fatal(c, NVMG_TCP_FES_HDGST_ERROR, 0, c->hdr, c->hdr_total);
		return;
	}
	switch (h->type) {
	case NVMG_TCP_ICREQ:
		handle_icreq(c);
		return;
	case NVMG_TCP_CMD:
		handle_capsule(c);
		return;
	case NVMG_TCP_H2C_DATA:
		handle_h2c(c);
		return;
	case NVMG_TCP_H2C_TERM: {
		const struct nvmg_tcp_term *t = (const void *)c->hdr;

		log_warn("%s: host terminated the connection (FES %#x)", c->peer, le16toh(t->fes));
		c->rx_stopped = true;
		tcp_conn_close(c, "H2CTermReq");
		return;
	}
	}
}

/* The FEI of a common header error: the offset of the field at fault. */
static uint32_t hdr_fei(enum nvmg_pdu_err err)
{
	switch (err) {
	case NVMG_PDU_ETYPE:
		return offsetof(struct nvmg_tcp_hdr, type);
	case NVMG_PDU_EFLAGS:
		return offsetof(struct nvmg_tcp_hdr, flags);
	case NVMG_PDU_EHLEN:
		return offsetof(struct nvmg_tcp_hdr, hlen);
	default:
		return offsetof(struct nvmg_tcp_hdr, plen);
	}
}

/* Check the common header as soon as its 8 bytes are in. */
static bool check_common_header(struct tcp_conn *c, const struct nvmg_tcp_hdr *h)
{
	enum nvmg_pdu_err err;

	/* ICReq first and only first. */
	if ((c->state == CS_WAIT_ICREQ) != (h->type == NVMG_TCP_ICREQ)) {
		tcp_conn_fatal(c, NVMG_TCP_FES_PDU_SEQUENCE, 0, h, sizeof(*h));
		return false;
	}
	/* Lenient as Linux's nvmet: HDGSTF set with digests off is let by. */
	err = nvmg_pdu_check_hdr(h, NVMG_PDU_TO_CTRL, c->hdgst, false, &c->hdr_total);
	if (err) {
		tcp_conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, hdr_fei(err), h, sizeof(*h));
		return false;
	}
	return true;
}

static void rx_consume_data(struct tcp_conn *c, const uint8_t *src, uint32_t n)
{
	if (c->rx_dst)
		memcpy(c->rx_dst + c->rx_done, src, n);
	if (c->ddgst)
		c->rx_crc = nvmg_crc32c_update(c->rx_crc, src, n);
	c->rx_done += n;
}

static void rx_data_complete(struct tcp_conn *c)
{
	if (c->ddgst) {
		c->rx_state = RX_DDGST;
		c->ddgst_got = 0;
	} else {
		rx_data_done(c, true);
	}
}

/* Parses PDUs out of [base, base + len); returns the bytes consumed. It
 * stops short at a header not wholly there (or when receiving stopped). */
static uint32_t rx_parse(struct tcp_conn *c, const uint8_t *base, uint32_t len)
{
	uint32_t off = 0;

	while (!c->rx_stopped && off < len) {
		uint32_t avail = len - off, n;
		const uint8_t *p = base + off;

		switch (c->rx_state) {
		case RX_HDR:
			if (avail < sizeof(struct nvmg_tcp_hdr))
				return off;
			if (!check_common_header(c, (const struct nvmg_tcp_hdr *)p))
				return off;
			if (avail < c->hdr_total)
				return off;
			/* Handled where it lies: nothing keeps it after. */
			c->hdr = p;
			off += c->hdr_total;
			c->pad_left = 0;
			handle_header(c);
			c->hdr = NULL;
			break;
		case RX_PAD:
			n = avail < c->pad_left ? avail : c->pad_left;
			off += n;
			c->pad_left -= n;
			if (!c->pad_left)
				c->rx_state = RX_DATA;
			break;
		case RX_DATA:
			n = c->rx_len - c->rx_done;
			if (n > avail)
				n = avail;
			rx_consume_data(c, p, n);
			off += n;
			if (c->rx_done == c->rx_len)
				rx_data_complete(c);
			break;
		case RX_DDGST:
			n = 4 - c->ddgst_got;
			if (n > avail)
				n = avail;
			memcpy(c->ddgst_buf + c->ddgst_got, p, n);
			c->ddgst_got += n;
			off += n;
			if (c->ddgst_got == 4)
				rx_data_done(c, !nvmg_pdu_check_ddgst(c->rx_crc, c->ddgst_buf));
			break;
		}
	}
	return off;
}

/* The bytes in rbuf (single receives, TLS). */
static void rx_process(struct tcp_conn *c)
{
	c->roff += rx_parse(c, c->rbuf + c->roff, c->rlen - c->roff);
	if (c->roff == c->rlen) {
		c->roff = c->rlen = 0;
	} else if (c->roff && c->rlen - c->roff < MAX_HDR) {
		/* Keep room for a whole header at the end of the buffer. */
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
}

/* n bytes in a provided buffer, parsed in place. What rbuf holds then is
 * the start of a header the last buffer ended in (roff is 0): it is
 * completed from this buffer's first bytes, parsed there, and the rest is
 * parsed in place again. */
static void rx_feed(struct tcp_conn *c, const uint8_t *p, uint32_t n)
{
	uint32_t used;

	if (c->rlen) {
		uint32_t had = c->rlen, k = n < MAX_HDR ? n : MAX_HDR;

		memcpy(c->rbuf + had, p, k);
		c->rlen = had + k;
		used = rx_parse(c, c->rbuf, c->rlen);
		if (c->rx_stopped || used <= had) {
			/* Still a partial header: all of p is in rbuf (k == n,
			 * as MAX_HDR bytes hold any header). */
			if (c->rx_stopped)
				c->rlen = 0;
			return;
		}
		c->rlen = 0;
		p += used - had;
		n -= used - had;
	}
	used = rx_parse(c, p, n);
	if (used < n && !c->rx_stopped) {
		memcpy(c->rbuf, p + used, n - used);
		c->rlen = n - used;
	}
}

static void recv_handle(struct tcp_conn *c, int res);

static void mshot_done(struct tcp_conn *c, int res, uint32_t flags);

void tcp_recv_done(struct nvmg_ev *ev, int res, uint32_t flags)
{
	struct tcp_conn *c = nvmg_container_of(ev, struct tcp_conn, recv_ev);

	if (c->recv_mshot) {
		mshot_done(c, res, flags);
		return;
	}
	c->recv_inflight = false;
	if (c->closing) {
		if (c->recv_direct && c->rx_cmd &&
		    (c->rx_cmd->state == CMD_RX || c->rx_cmd->state == CMD_WAIT_H2C))
			tcp_cmd_release(c->rx_cmd);
		c->recv_direct = false;
		c->rx_cmd = NULL;
		tcp_conn_maybe_free(c);
		return;
	}
	c->hold++;
	recv_handle(c, res);
	c->hold--;
	tcp_conn_maybe_free(c);
}

/* The host closed (or the receive failed): running commands finish,
 * then the socket closes. */
static void rx_eof(struct tcp_conn *c)
{
	c->rx_stopped = true;
	c->deadline_ms = nvmg_now_ms() + c->tr->tcp->opts.handshake_timeout_ms;
	/* Commands already running finish; then the socket closes. */
	for (unsigned i = 0; i < NR_CMDS; i++) {
		enum cmd_state s = c->cmds[i].state;

		if (s == CMD_RX || s == CMD_WAIT_H2C)
			tcp_cmd_release(&c->cmds[i]);
	}
	if (c->sq.ctrl && c->sq.qid == 0)
		nvmg_ctrl_abort_aers(c->sq.ctrl, NVMG_SC_GENERIC(NVME_SC_ABORT_QUEUE));
	nvmg_reactor_defer(c->r, &c->flush_defer);
}

/* n bytes of a PDU's data landed at rx_dst (a direct receive). */
static void rx_direct_done(struct tcp_conn *c, uint32_t n)
{
	if (c->ddgst)
		c->rx_crc = nvmg_crc32c_update(c->rx_crc, c->rx_dst + c->rx_done, n);
	c->rx_done += n;
	if (c->rx_done == c->rx_len)
		rx_data_complete(c);
}

/* The first bytes of a TLS port's connection: a TLS record (handshake,
 * 0x16) starts the session; anything else is plain NVMe/TCP, which a
 * port with treq "required" refuses as the Linux target does. Returns
 * true when the bytes were taken (or the connection closed). */
static bool tls_peek(struct tcp_conn *c)
{
	c->tls_peek = false;
	if (c->rbuf[0] == 0x16) {
		uint32_t n = c->rlen;

		c->rlen = 0;
		if (tcp_tls_start(c, c->rbuf, n)) {
			tcp_conn_close(c, "TLS handshake failed");
			return true;
		}
		tcp_conn_arm_recv(c);
		return true;
	}
	if (__atomic_load_n(&c->sq.port->tls_required, __ATOMIC_RELAXED)) {
		log_warn("%s: port %u requires TLS, the host spoke in the clear: closing", c->peer,
			 c->sq.port->portid);
		tcp_conn_close(c, "TLS required");
		return true;
	}
	return false;
}

/* Ciphertext arrived: handshake, then plaintext into the parser. Large
 * data is decrypted straight into the command's buffer. */
static void tls_recv(struct tcp_conn *c, uint32_t res)
{
	int n = 0;

	if (tcp_tls_feed(c, res)) {
		tcp_conn_close(c, "TLS handshake failed");
		return;
	}
	if (c->tls->established)
		tcp_conn_progress(c);
	while (!c->rx_stopped && c->tls->established) {
		if (c->rx_state == RX_DATA && c->rx_dst && c->roff == c->rlen &&
		    c->rx_len - c->rx_done >= DIRECT_RECV_MIN) {
			n = tcp_tls_read(c, c->rx_dst + c->rx_done, c->rx_len - c->rx_done);
			if (n <= 0)
				break;
			rx_direct_done(c, (uint32_t)n);
		} else {
			n = tcp_tls_read(c, c->rbuf + c->rlen, RBUF_SIZE - c->rlen);
			if (n <= 0)
				break;
			c->rlen += (uint32_t)n;
		}
		rx_process(c);
	}
	if (n == -EPIPE) {
		rx_eof(c);
		return;
	}
	if (n < 0) {
		tcp_conn_close(c, "bad TLS record");
		return;
	}
	tcp_tls_handover(c);
	tcp_conn_arm_recv(c);
}

static void recv_handle(struct tcp_conn *c, int res)
{
	if (res == -EINTR || res == -EAGAIN) {
		tcp_conn_arm_recv(c);
		return;
	}
	if (res <= 0 && c->tls && c->tls->ktls_rx && (res == -EIO || res == -EBADMSG)) {
		/* The kernel opened no data: a record that is not application
		 * data (the host's close_notify or another alert), or one that
		 * fails authentication. Either way the session is over. */
		if (res == -EBADMSG)
			log_warn("%s: a TLS record failed authentication", c->peer);
		rx_eof(c);
		return;
	}
	if (res <= 0) {
		if (res < 0 && res != -ECONNRESET)
			log_warn("%s: receive: %s", c->peer, strerror(-res));
		rx_eof(c);
		return;
	}
	if (tcp_tls_rx_chan(c->tls)) {
		tls_recv(c, (uint32_t)res);
		return;
	}
	if (c->recv_direct) {
		c->recv_direct = false;
		rx_direct_done(c, (uint32_t)res);
	} else {
		c->rlen += (uint32_t)res;
		if (c->tls_peek && tls_peek(c))
			return;
	}
	rx_process(c);
	tcp_conn_arm_recv(c);
}

/* The next bytes are many of one PDU's data: worth a receive straight
 * into the command's buffer. */
static bool want_direct(const struct tcp_conn *c)
{
	return c->rx_state == RX_DATA && c->rx_dst && c->roff == c->rlen &&
	       c->rx_len - c->rx_done >= DIRECT_RECV_MIN;
}

/* Provided buffers, given back as soon as parsed: few enough to stay in
 * cache (the ring hands them out in turn, so all are touched), large
 * enough for a batch of 4 KiB writes per CQE. NVMEGATED_RECV_BUFS (a
 * power of two) shrinks the ring for tests that run it dry. */
#define MSHOT_BUFS 16
#define MSHOT_BUF_SIZE (64u << 10)

/* Whether the connections of c's reactor receive by multishot: decided on
 * first use, on the reactor's thread (the ring belongs to it). */
static struct nvmg_bufring *mshot_ring(struct tcp_conn *c)
{
	struct tcp_reactor *tr = c->tr;

	if (!tr->mshot) {
		const char *nb = getenv("NVMEGATED_RECV_BUFS");
		uint32_t nbufs = nb ? (uint32_t)strtoul(nb, NULL, 0) : MSHOT_BUFS;

		/* Off unless asked for: over loopback it measured slower for
		 * 4 KiB QD32 writes than single receives into rbuf. */
		tr->mshot = -1;
		if (nvmg_env_is("NVMEGATED_RECV_MULTISHOT", "1")) {
			tr->bufring = nvmg_reactor_bufring(c->r, nbufs, MSHOT_BUF_SIZE);
			if (tr->bufring)
				tr->mshot = 1;
		}
		log_debug("reactor %u: NVMe/TCP receives %s", nvmg_reactor_id(c->r),
			  tr->mshot > 0 ? "by multishot into provided buffers" : "one at a time");
	}
	return tr->mshot > 0 ? tr->bufring : NULL;
}

static void mshot_cancel(struct tcp_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->mshot_cancel)
		return;
	sqe = nvmg_reactor_sqe(c->r);
	io_uring_prep_cancel(sqe, &c->recv_ev, 0);
	io_uring_sqe_set_data(sqe, NULL); /* its own CQE is of no interest */
	c->mshot_cancel = true;
}

/* A multishot receive's CQE: data in a provided buffer while F_MORE says
 * it stays armed; without F_MORE it ended (EOF, an error, the ring ran
 * dry, or our cancel) and is armed again as the state then wants. */
static void mshot_done(struct tcp_conn *c, int res, uint32_t flags)
{
	struct nvmg_bufring *b = c->tr->bufring;
	bool more = flags & IORING_CQE_F_MORE;
	uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);

	if (!more) {
		c->recv_inflight = false;
		c->recv_mshot = false;
		c->mshot_cancel = false;
	}
	c->hold++;
	if (flags & IORING_CQE_F_BUFFER) {
		/* Bytes after a TermReq or the close are dropped. */
		if (res > 0 && !c->closing && !c->rx_stopped)
			rx_feed(c, nvmg_bufring_buf(b, bid), (uint32_t)res);
		nvmg_bufring_put(b, bid);
	}
	if (more) {
		/* Stop it for a large payload, or when nothing more is read
		 * (backpressure, a TermReq, closing). */
		if (c->closing || c->rx_stopped || want_direct(c))
			mshot_cancel(c);
	} else if (res > 0 || res == -ECANCELED) {
		tcp_conn_arm_recv(c);
	} else if (res == -ENOBUFS) {
		/* Nothing was lost: the bytes wait in the socket. One single
		 * receive into rbuf keeps this connection moving even if the
		 * ring stays dry; multishot resumes after it. */
		log_debug("%s: receive buffers ran dry, one single receive", c->peer);
		c->mshot_nobufs = true;
		tcp_conn_arm_recv(c);
	} else if (res == -EINVAL) {
		/* A kernel with buffer rings but not multishot receive. */
		log_info("reactor %u: no multishot receive, receiving one at a time", nvmg_reactor_id(c->r));
		c->tr->mshot = -1;
		tcp_conn_arm_recv(c);
	} else if (!c->closing) {
		recv_handle(c, res); /* EOF or an error */
	}
	c->hold--;
	tcp_conn_maybe_free(c);
}

void tcp_conn_arm_recv(struct tcp_conn *c)
{
	struct io_uring_sqe *sqe;
	struct tls_chan *ch;
	struct nvmg_bufring *b;

	if (c->recv_inflight || c->rx_stopped || c->closing)
		return;
	if ((ch = tcp_tls_rx_chan(c->tls))) {
		/* Ciphertext lands after what OpenSSL has not read yet. */
		uint8_t *p;
		size_t room = tls_chan_rx_space(ch, &p);

		if (!room) {
			tcp_conn_close(c, "TLS receive buffer full");
			return;
		}
		sqe = nvmg_reactor_sqe(c->r);
		io_uring_prep_recv(sqe, c->fd, p, room, 0);
	} else if (want_direct(c)) {
		sqe = nvmg_reactor_sqe(c->r);
		c->recv_direct = true;
		io_uring_prep_recv(sqe, c->fd, c->rx_dst + c->rx_done, c->rx_len - c->rx_done, 0);
	} else if (!c->tls && !c->tls_peek && !c->mshot_nobufs && (b = mshot_ring(c))) {
		sqe = nvmg_reactor_sqe(c->r);
		io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = b->bgid;
		c->recv_mshot = true;
	} else {
		c->mshot_nobufs = false;
		sqe = nvmg_reactor_sqe(c->r);
		io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen, 0);
	}
	io_uring_sqe_set_data(sqe, &c->recv_ev);
	c->recv_inflight = true;
}
