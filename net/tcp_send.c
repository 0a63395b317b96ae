/* NVMe/TCP connections, send side: the PDUs the target sends (R2T,
 * C2HData, CapsuleResp, C2HTermReq) and the send queue. Responses are
 * batched per loop turn and leave in one sendmsg with the PDU headers,
 * data and completions side by side. A batch that carries a payload of
 * ZC_MIN bytes or more leaves by IORING_OP_SENDMSG_ZC instead (Linux
 * 6.0+): the kernel sends the pages where they are (a RAM namespace's own
 * memory for a Read, see nvmg_bdev_io.lend) and says in a second CQE when
 * it is done with them; until then the commands keep their buffers. Not
 * where OpenSSL makes the records (tls_conn_send): kernel TLS takes the
 * plain path, and the kernel copies into its records there. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "lib/log.h"
#include "net/tcp_conn.h"
#include "net/tcp_frame.h"
#include "net/tcp_tls.h"

/* Linux 6.2+: the notification says whether the kernel copied after all
 * (loopback does, as do devices without scatter-gather); liburing 2.3's
 * header predates them. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif
/* ZC_AUTO judges the path by this many notifications: when the kernel
 * copied for most of them, a zero-copy send only adds the notification
 * and page pinning to a copy, and plain sendmsg is faster. */
#define ZC_PROBE 16

/* Zeros sent as padding before C2HData payloads (HPDA <= 31: < 128 bytes). */
static const uint8_t pdu_pad[128];

static void zc_cqe(struct nvmg_ev *ev, int res, uint32_t flags);

/* Whether the host runs on this machine (loopback, or our own address):
 * the kernel then copies every zero-copy send anyway, and only once the
 * host's socket takes the bytes, so a host that stops reading would hold
 * the commands (and a shutdown) until it reads or closes. */
static bool peer_is_local(int fd)
{
	struct sockaddr_storage l, p;
	socklen_t ll = sizeof(l), pl = sizeof(p);

	if (getsockname(fd, (struct sockaddr *)&l, &ll) || getpeername(fd, (struct sockaddr *)&p, &pl) ||
	    l.ss_family != p.ss_family)
		return false;
	if (p.ss_family == AF_INET) {
		const struct in_addr *la = &((struct sockaddr_in *)&l)->sin_addr;
		const struct in_addr *pa = &((struct sockaddr_in *)&p)->sin_addr;

		return (ntohl(pa->s_addr) >> 24) == 127 || la->s_addr == pa->s_addr;
	}
	if (p.ss_family == AF_INET6) {
		const struct in6_addr *la = &((struct sockaddr_in6 *)&l)->sin6_addr;
		const struct in6_addr *pa = &((struct sockaddr_in6 *)&p)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(pa) || (IN6_IS_ADDR_V4MAPPED(pa) && pa->s6_addr[12] == 127) ||
		       IN6_ARE_ADDR_EQUAL(la, pa);
	}
	return false;
}

void tcp_send_init(struct tcp_conn *c)
{
	STAILQ_INIT(&c->zc_hold);
	for (int i = 0; i < ZC_SLOTS; i++) {
		c->zc_ops[i].ev.fn = zc_cqe;
		c->zc_ops[i].conn = c;
	}
	c->zc_report = true;
	/* "0": never (to measure or test the copying path), "always": even
	 * where the kernel copies anyway (to test this one on loopback). */
	if (!nvmg_reactor_features(c->r)->send_zc || nvmg_env_is("NVMEGATED_SEND_ZC", "0"))
		c->zc = ZC_OFF;
	else if (nvmg_env_is("NVMEGATED_SEND_ZC", "always"))
		c->zc = ZC_ALWAYS;
	else if (peer_is_local(c->fd))
		c->zc = ZC_OFF;
	else
		c->zc = ZC_AUTO;
}

/* Does a zero-copy send up to seq still have the kernel's attention? */
static bool zc_pending_upto(const struct tcp_conn *c, uint32_t seq)
{
	for (int i = 0; i < ZC_SLOTS; i++) {
		const struct zc_op *op = &c->zc_ops[i];

		if ((op->result_pending || op->notif_pending) && (int32_t)(op->seq - seq) <= 0)
			return true;
	}
	return false;
}

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
	/* The ICResp and TermReq live as long as the connection. */
	if (it == &c->ctl || it == &c->term)
		return;
	struct tcp_cmd *cmd = nvmg_container_of(it, struct tcp_cmd, send);

	/* An R2T leaves the command waiting for its H2CData. */
	if (cmd->state != CMD_SEND)
		return;
	/* The kernel may still read its data, headers (an R2T's too: the
	 * same slot's) or the namespace memory it lent. */
	if (it->zc_used && zc_pending_upto(c, it->zc_seq)) {
		it->held = true;
		STAILQ_INSERT_TAIL(&c->zc_hold, it, link);
		return;
	}
	tcp_cmd_release(cmd);
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

/* sent bytes left: retire the items they finish, trim a partly sent one
 * in place. */
static void send_retire(struct tcp_conn *c, size_t sent)
{
	struct send_item *it;

	while (sent > 0 && (it = STAILQ_FIRST(&c->send_q))) {
		while (sent > 0 && it->first < it->niov) {
			struct iovec *v = &it->iov[it->first];

			if (sent >= v->iov_len) {
				sent -= v->iov_len;
				it->first++;
			} else {
				v->iov_base = (uint8_t *)v->iov_base + sent;
				v->iov_len -= sent;
				sent = 0;
			}
		}
		if (it->first == it->niov) {
			STAILQ_REMOVE_HEAD(&c->send_q, link);
			send_item_done(c, it);
		}
	}
}

/* The kernel is done with the pages of every send up to some point:
 * release what waited for it. */
static void zc_release(struct tcp_conn *c)
{
	struct send_item *it = STAILQ_FIRST(&c->zc_hold), *next;

	for (; it; it = next) {
		next = STAILQ_NEXT(it, link);
		if (zc_pending_upto(c, it->zc_seq))
			continue;
		STAILQ_REMOVE(&c->zc_hold, it, send_item, link);
		it->held = false;
		tcp_cmd_release(nvmg_container_of(it, struct tcp_cmd, send));
	}
}

/* Queue iov[0..n) (the first items of send_q) as one zero-copy send.
 * When every slot still waits for a notification, the queue waits too:
 * the notification flushes it. */
static void zc_submit(struct tcp_conn *c, const struct iovec *iov, int n)
{
	struct zc_op *op = NULL;
	struct io_uring_sqe *sqe;
	struct send_item *it;
	int left = n;

	for (int i = 0; i < ZC_SLOTS && !op; i++)
		if (!c->zc_ops[i].result_pending && !c->zc_ops[i].notif_pending)
			op = &c->zc_ops[i];
	if (!op) {
		c->zc_wait_slot = true;
		return;
	}
	if (!c->zc_seq)
		log_debug("%s: payloads of %u KiB and more leave by zero-copy send", c->peer,
			  ZC_MIN >> 10);
	memcpy(op->iov, iov, (size_t)n * sizeof(*iov));
	op->msg = (struct msghdr){ .msg_iov = op->iov, .msg_iovlen = (size_t)n };
	op->seq = c->zc_seq++;
	op->result_pending = true;
	c->zc_busy++;
	c->zc_sending = true;
	/* Whatever this send carries stays until its notification. */
	for (it = STAILQ_FIRST(&c->send_q); it && left > 0; it = STAILQ_NEXT(it, link)) {
		left -= it->niov - it->first;
		it->zc_used = true;
		it->zc_seq = op->seq;
	}
	sqe = nvmg_reactor_sqe(c->r);
	/* WAITALL: io_uring sends the rest of a short send itself. */
	io_uring_prep_sendmsg_zc(sqe, c->fd, &op->msg, MSG_NOSIGNAL | MSG_WAITALL);
	if (c->zc_report)
		sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
	io_uring_sqe_set_data(sqe, &op->ev);
}

static void zc_notif(struct tcp_conn *c, struct zc_op *op, int res)
{
	op->notif_pending = false;
	c->zc_busy--;
	if (c->zc == ZC_AUTO && c->zc_report && c->zc_notifs < ZC_PROBE) {
		c->zc_notifs++;
		if ((uint32_t)res & IORING_NOTIF_USAGE_ZC_COPIED)
			c->zc_copied++;
		if (c->zc_notifs == ZC_PROBE && c->zc_copied > ZC_PROBE / 2) {
			log_debug("%s: the kernel copies zero-copy sends here: plain sends from now",
				  c->peer);
			c->zc = ZC_OFF;
		}
	}
	zc_release(c);
	/* A queue waiting for a slot goes on; a connection waiting for its
	 * last commands to close may now. */
	if (c->zc_wait_slot || c->rx_stopped || c->state == CS_TERMINATING) {
		c->zc_wait_slot = false;
		if (!c->closing)
			nvmg_reactor_defer(c->r, &c->flush_defer);
	}
}

/* Both CQEs of a zero-copy send come here: the result (with F_MORE when a
 * notification follows) and the notification (F_NOTIF). */
static void zc_cqe(struct nvmg_ev *ev, int res, uint32_t flags)
{
	struct zc_op *op = nvmg_container_of(ev, struct zc_op, ev);
	struct tcp_conn *c = op->conn;

	c->hold++;
	if (flags & IORING_CQE_F_NOTIF) {
		zc_notif(c, op, res);
		goto out;
	}
	op->result_pending = false;
	c->zc_sending = false;
	if (flags & IORING_CQE_F_MORE)
		op->notif_pending = true;
	else
		c->zc_busy--;
	if (c->closing) {
		zc_release(c);
		goto out;
	}
	if (res == -EINVAL && c->zc_report) {
		/* Linux 6.0/6.1 know no usage report: nothing was sent. */
		c->zc_report = false;
	} else if (res == -EINVAL || res == -EOPNOTSUPP) {
		log_debug("%s: zero-copy send refused (%d): plain sends from now", c->peer, res);
		c->zc = ZC_OFF;
	} else if (res < 0 && res != -EINTR && res != -EAGAIN) {
		tcp_send_drop_all(c);
		tcp_conn_close(c, "send failed");
		goto out;
	} else if (res > 0) {
		send_retire(c, (size_t)res);
	}
	if (!op->notif_pending)
		zc_release(c);
	nvmg_reactor_defer(c->r, &c->flush_defer);
out:
	c->hold--;
	tcp_conn_maybe_free(c);
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

	/* A zero-copy send in flight keeps the rest behind it, in order. */
	while (!STAILQ_EMPTY(&c->send_q) && !c->poll_inflight && !c->zc_sending) {
		struct msghdr msg = { .msg_iov = iov };
		struct send_item *it;
		bool large = false;
		int n = 0;
		ssize_t sent;

		for (it = STAILQ_FIRST(&c->send_q); it && n + 5 <= MAX_IOV; it = STAILQ_NEXT(it, link))
			for (int i = it->first; i < it->niov; i++) {
				large |= it->iov[i].iov_len >= ZC_MIN;
				iov[n++] = it->iov[i];
			}
		if (large && c->zc != ZC_OFF) {
			zc_submit(c, iov, n);
			return;
		}
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
		send_retire(c, (size_t)sent);
	}
	if (STAILQ_EMPTY(&c->send_q) && !c->zc_sending)
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
