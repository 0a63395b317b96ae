/* NVMe/TCP connections, send side: the PDUs the target sends (R2T,
 * C2HData, CapsuleResp, C2HTermReq) and the send queue. Responses are
 * batched per loop turn and leave in one sendmsg with the PDU header and
 * data side by side. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include "lib/log.h"
#include "net/tcp_conn.h"
#include "net/tcp_frame.h"
#include "net/tcp_tls.h"

/* Zeros sent as padding before C2HData payloads (HPDA <= 31: < 128 bytes). */
static const uint8_t pdu_pad[128];

void tcp_send_enqueue(struct tcp_conn *c, struct send_item *it)
{
	if (it->linked) {
		/* Queuing an item twice would loop the list: a bug, not a peer. */
		log_err("%s: send item queued twice, dropping", c->peer);
		return;
	}
	it->first = 0;
	it->linked = true;
	STAILQ_INSERT_TAIL(&c->send_q, it, link);
	nvmg_reactor_defer(c->r, &c->flush_defer);
}

void tcp_send_unlink(struct tcp_conn *c, struct send_item *it)
{
	if (!it->linked)
		return;
	STAILQ_REMOVE(&c->send_q, it, send_item, link);
	it->linked = false;
}

/* A send item is done: what it frees depends on what it carried. */
static void send_item_done(struct tcp_conn *c, struct send_item *it)
{
	it->linked = false;
	if (it == &c->ctl || it == &c->term)
		return;
	struct tcp_cmd *cmd = nvmg_container_of(it, struct tcp_cmd, send);

	if (cmd->state == CMD_SEND)
		tcp_cmd_release(cmd);
	/* An R2T leaves the command waiting for its H2CData. */
}

void tcp_send_drop_all(struct tcp_conn *c)
{
	struct send_item *it;

	while ((it = STAILQ_FIRST(&c->send_q))) {
		STAILQ_REMOVE_HEAD(&c->send_q, link);
		send_item_done(c, it);
	}
}

static void poll_out(struct tcp_conn *c)
{
	struct io_uring_sqe *sqe = nvmg_reactor_sqe(c->r);

	io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
	io_uring_sqe_set_data(sqe, &c->poll_ev);
	c->poll_inflight = true;
}

/* The queue is empty: a TermReq's connection closes, and so does one
 * whose host left once nothing is running. */
static void send_idle(struct tcp_conn *c)
{
	if (c->state == CS_TERMINATING)
		tcp_conn_close(c, "fatal transport error");
	else if (c->rx_stopped && !c->closing && c->nr_busy == 0)
		tcp_conn_close(c, "host closed the connection");
}

/* TLS: the whole batch is encrypted (the items are done once their bytes
 * are in records), then the ciphertext leaves in as few sends as the
 * socket takes. Encryption pauses while a backlog waits for the socket. */
static void tls_conn_send(struct tcp_conn *c, struct tls_chan *ch)
{
	struct send_item *it;
	const uint8_t *p;
	size_t n;

	if (c->poll_inflight)
		return;
	/* Batches of items as for sendmsg, each sealed in as few records as
	 * it fills. */
	while (c->tls->established && !STAILQ_EMPTY(&c->send_q) &&
	       tls_chan_pending(ch, &p) < TLS_BACKLOG_MAX) {
		struct iovec iov[MAX_IOV];
		int n = 0, items = 0;

		for (it = STAILQ_FIRST(&c->send_q); it && n + 5 <= MAX_IOV;
		     it = STAILQ_NEXT(it, link), items++)
			for (int i = it->first; i < it->niov; i++)
				iov[n++] = it->iov[i];
		if (tls_chan_writev(ch, iov, n))
			goto fail;
		while (items--) {
			it = STAILQ_FIRST(&c->send_q);
			STAILQ_REMOVE_HEAD(&c->send_q, link);
			send_item_done(c, it);
		}
	}
	while ((n = tls_chan_pending(ch, &p))) {
		ssize_t sent = send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (sent < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				poll_out(c);
				return;
			}
			goto fail;
		}
		tls_chan_sent(ch, (size_t)sent);
		/* More of the queue fits now that the backlog went out. */
		if (!tls_chan_pending(ch, &p) && !STAILQ_EMPTY(&c->send_q)) {
			tls_conn_send(c, ch);
			return;
		}
	}
	if (STAILQ_EMPTY(&c->send_q))
		send_idle(c);
	return;
fail:
	tcp_send_drop_all(c);
	tcp_conn_close(c, "TLS send failed");
}

static void conn_send(struct tcp_conn *c)
{
	struct tls_chan *ch;
	struct iovec iov[MAX_IOV];

	if (c->tls) {
		/* Before the first plaintext would be sealed: the kernel or
		 * our record layer may take the send direction over. */
		tcp_tls_handover(c);
		if ((ch = tcp_tls_tx_chan(c->tls))) {
			tls_conn_send(c, ch);
			return;
		}
	}

	while (!STAILQ_EMPTY(&c->send_q) && !c->poll_inflight) {
		struct msghdr msg = { .msg_iov = iov };
		struct send_item *it;
		int n = 0;
		ssize_t sent;

		for (it = STAILQ_FIRST(&c->send_q); it && n + 5 <= MAX_IOV; it = STAILQ_NEXT(it, link))
			for (int i = it->first; i < it->niov; i++)
				iov[n++] = it->iov[i];
		msg.msg_iovlen = (size_t)n;
		sent = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (sent < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				poll_out(c);
				return;
			}
			tcp_send_drop_all(c);
			tcp_conn_close(c, "send failed");
			return;
		}
		/* Retire what went out; trim a partly sent item in place. */
		while (sent > 0 && (it = STAILQ_FIRST(&c->send_q))) {
			while (sent > 0 && it->first < it->niov) {
				struct iovec *v = &it->iov[it->first];

				if ((size_t)sent >= v->iov_len) {
					sent -= (ssize_t)v->iov_len;
					it->first++;
				} else {
					v->iov_base = (uint8_t *)v->iov_base + sent;
					v->iov_len -= (size_t)sent;
					sent = 0;
				}
			}
			if (it->first == it->niov) {
				STAILQ_REMOVE_HEAD(&c->send_q, link);
				send_item_done(c, it);
			}
		}
	}
	if (STAILQ_EMPTY(&c->send_q))
		send_idle(c);
}

void tcp_conn_flush(struct nvmg_defer *d)
{
	struct tcp_conn *c = nvmg_container_of(d, struct tcp_conn, flush_defer);

	c->hold++;
	conn_send(c);
	c->hold--;
	tcp_conn_maybe_free(c);
}

void tcp_poll_done(struct nvmg_ev *ev, int res, uint32_t flags)
{
	struct tcp_conn *c = nvmg_container_of(ev, struct tcp_conn, poll_ev);

	(void)flags;
	c->poll_inflight = false;
	if (c->closing) {
		tcp_send_drop_all(c);
		tcp_conn_maybe_free(c);
		return;
	}
	if (res < 0 && res != -EINTR) {
		tcp_send_drop_all(c);
		tcp_conn_close(c, "poll failed");
		return;
	}
	tcp_conn_flush(&c->flush_defer);
}

void tcp_queue_r2t(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;
	struct pdu_hd *p = &cmd->data_pdu;
	uint32_t hl;

	memset(p, 0, sizeof(*p));
	hl = nvmg_pdu_init_hdr(&p->h.hdr, NVMG_TCP_R2T, c->hdgst, c->ddgst, 0, 0);
	p->h.cccid = cmd->req.cmd.cid;
	p->h.ttag = htole16(cmd->ttag);
	p->h.offset = 0;
	p->h.length = htole32(cmd->req.data_len);
	nvmg_pdu_put_hdgst(&p->h.hdr);
	cmd->send.iov[0] = (struct iovec){ p, hl };
	cmd->send.niov = 1;
	tcp_send_enqueue(c, &cmd->send);
}

void tcp_queue_response(struct nvmg_req *req)
{
	struct tcp_cmd *cmd = (struct tcp_cmd *)req;
	struct tcp_conn *c = cmd->conn;
	bool data = req->dir == NVMG_DIR_TO_HOST && req->data_len && !req->cqe.status;
	bool success_flag = data && c->sq.sqfc_disabled;
	int n = 0;

	cmd->state = CMD_SEND;
	if (c->closing || c->state == CS_TERMINATING) {
		tcp_cmd_release(cmd);
		tcp_conn_maybe_free(c);
		return;
	}
	if (data) {
		struct pdu_hd *p = &cmd->data_pdu;
		/* HPDA: the host wants data at a multiple of (HPDA+1)*4 bytes. */
		uint32_t pdo = nvmg_pdu_data_offset(nvmg_pdu_hdr_total(NVMG_TCP_C2H_DATA, c->hdgst),
						    c->c2h_align);
		uint32_t hl;

		memset(p, 0, sizeof(*p));
		hl = nvmg_pdu_init_hdr(&p->h.hdr, NVMG_TCP_C2H_DATA, c->hdgst, c->ddgst, pdo,
				       req->data_len);
		p->h.hdr.flags |= NVMG_TCP_F_DATA_LAST;
		/* SUCCESS replaces the CapsuleResp only where the host turned
		 * SQ flow control off; otherwise it needs SQHD. */
		if (success_flag)
			p->h.hdr.flags |= NVMG_TCP_F_DATA_SUCCESS;
		p->h.cccid = req->cmd.cid;
		p->h.offset = 0;
		p->h.length = htole32(req->data_len);
		nvmg_pdu_put_hdgst(&p->h.hdr);
		cmd->send.iov[n++] = (struct iovec){ p, hl };
		if (pdo > hl)
			cmd->send.iov[n++] = (struct iovec){ (void *)pdu_pad, pdo - hl };
		cmd->send.iov[n++] = (struct iovec){ req->buf, req->data_len };
		if (c->ddgst) {
			cmd->ddgst = nvmg_pdu_ddgst(req->buf, req->data_len);
			cmd->send.iov[n++] = (struct iovec){ &cmd->ddgst, 4 };
		}
	}
	if (!success_flag) {
		struct pdu_rsp *p = &cmd->rsp;
		uint32_t hl = nvmg_pdu_init_hdr(&p->h.hdr, NVMG_TCP_RSP, c->hdgst, c->ddgst, 0, 0);

		p->h.cqe = req->cqe;
		nvmg_pdu_put_hdgst(&p->h.hdr);
		cmd->send.iov[n++] = (struct iovec){ p, hl };
	}
	cmd->send.niov = n;
	tcp_send_enqueue(c, &cmd->send);
}

void tcp_conn_fatal(struct tcp_conn *c, uint16_t fes, uint32_t fei, const void *hdr, size_t hdr_len)
{
	struct nvmg_tcp_term *t = (struct nvmg_tcp_term *)c->term_buf;

	if (c->state == CS_TERMINATING || c->closing)
		return;
	log_warn("%s: fatal NVMe/TCP error (FES %#x, FEI %u), closing", c->peer, fes, fei);
	if (hdr_len > NVMG_TCP_TERM_MAX_DATA)
		hdr_len = NVMG_TCP_TERM_MAX_DATA;
	nvmg_pdu_init_term(t, NVMG_TCP_C2H_TERM, fes, fei, (uint32_t)hdr_len);
	memcpy(c->term_buf + sizeof(*t), hdr, hdr_len);
	c->term.iov[0] = (struct iovec){ c->term_buf, sizeof(*t) + hdr_len };
	c->term.niov = 1;
	c->state = CS_TERMINATING;
	c->rx_stopped = true;
	tcp_send_enqueue(c, &c->term);
	/* Give the TermReq a moment to leave even if the peer stalls. */
	c->deadline_ms = nvmg_now_ms() + 1000;
}
