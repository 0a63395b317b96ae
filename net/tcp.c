/* NVMe/TCP connections: PDU parsing, data movement and responses.
 *
 * One connection is one queue and belongs to one reactor. Receives go
 * through io_uring into a per-connection buffer, and many PDUs are parsed
 * per receive; large data is received straight into the command's buffer.
 * Responses are batched per loop turn and leave in one sendmsg with the
 * PDU header and data side by side. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "lib/log.h"
#include "net/crc32c.h"
#include "net/tcp_internal.h"
#include "net/tcp_pdu.h"

#define RBUF_SIZE (128u << 10)
#define MAXH2CDATA (1u << 20)
#define NR_CMDS (NVMG_MQES + 1 + NVMG_AERL + 1 + 4)
#define DIRECT_RECV_MIN 8192
#define MAX_IOV 64
#define MAX_HDR (sizeof(struct nvmg_tcp_icreq) + 4)

enum conn_state {
	CS_WAIT_ICREQ,
	CS_WAIT_CONNECT, /* ICResp sent, no queue yet */
	CS_LIVE,
	CS_TERMINATING,  /* TermReq queued: close once it is out */
};

enum rx_state { RX_HDR, RX_PAD, RX_DATA, RX_DDGST };
enum rx_kind { RXK_CAPSULE, RXK_H2C, RXK_DISCARD };

enum cmd_state { CMD_FREE, CMD_RX, CMD_WAIT_H2C, CMD_EXEC, CMD_SEND };

struct send_item {
	struct send_item *next;
	struct iovec iov[5];
	int niov;
	int first; /* first iov not fully sent */
	bool linked;
};

struct pdu_hd {
	struct nvmg_tcp_data h;
	uint32_t hdgst;
} __attribute__((packed));

struct pdu_rsp {
	struct nvmg_tcp_rsp h;
	uint32_t hdgst;
} __attribute__((packed));

struct tcp_cmd {
	struct nvmg_req req;
	struct tcp_conn *conn;
	uint16_t ttag;
	enum cmd_state state;
	void *buf;
	uint32_t buf_cap;
	uint32_t h2c_done;   /* data bytes received via H2CData */
	bool ddgst_err;
	uint16_t early_status; /* failure found while receiving data */
	struct tcp_cmd *next_free;
	struct send_item send;
	struct pdu_hd c2h;   /* C2HData or R2T */
	uint32_t ddgst;
	struct pdu_rsp rsp;
};

struct tcp_conn {
	struct nvmg_sq sq; /* first: the core's queue */
	struct tcp_reactor *tr;
	struct nvmg_reactor *r;
	struct tcp_conn *prev, *next;
	int fd;
	char peer[64];
	enum conn_state state;
	bool hdgst, ddgst;
	uint32_t c2h_align;  /* host PDU data alignment, from ICReq HPDA */
	bool rx_stopped;     /* no more PDUs will be read */
	bool closing;        /* socket shut down, freeing when idle */
	bool recv_inflight, poll_inflight, recv_direct;
	bool pending_counted;
	unsigned hold;       /* callbacks on the stack: don't free yet */
	uint64_t deadline_ms;
	unsigned nr_busy;    /* command slots in use */

	struct nvmg_ev recv_ev, poll_ev;
	struct nvmg_defer flush_defer;
	struct nvmg_ticker ticker;

	/* receive */
	uint8_t *rbuf;
	uint32_t rlen, roff;
	enum rx_state rx_state;
	enum rx_kind rx_kind;
	uint8_t hdr[MAX_HDR];
	uint32_t hdr_total;  /* header bytes incl. digest */
	uint32_t pad_left;
	uint8_t *rx_dst;     /* NULL: discard */
	uint32_t rx_len, rx_done;
	uint32_t rx_crc;
	uint8_t ddgst_buf[4];
	uint32_t ddgst_got;
	struct tcp_cmd *rx_cmd;

	/* send */
	struct send_item *send_head, *send_tail;
	struct send_item ctl;   /* ICResp */
	uint8_t ctl_buf[sizeof(struct nvmg_tcp_icresp)];
	struct send_item term;  /* C2HTermReq: its own item, the ICResp may still be queued */
	uint8_t term_buf[sizeof(struct nvmg_tcp_term) + NVMG_TCP_TERM_MAX_DATA];

	struct tcp_cmd cmds[NR_CMDS];
	struct tcp_cmd *free_cmds;
};

/* Zeros sent as padding before C2HData payloads (HPDA <= 31: < 128 bytes). */
static const uint8_t pdu_pad[128];

static void conn_close(struct tcp_conn *c, const char *why);
static void conn_check_live(struct tcp_conn *c);
static void conn_maybe_free(struct tcp_conn *c);
static void conn_arm_recv(struct tcp_conn *c);
static void cmd_execute(struct tcp_cmd *cmd);

static struct tcp_conn *sq_to_conn(struct nvmg_sq *sq)
{
	return (struct tcp_conn *)sq;
}

/* ---------------------------------------------------------------- send */

static void send_enqueue(struct tcp_conn *c, struct send_item *it)
{
	if (it->linked) {
		/* Queuing an item twice would loop the list: a bug, not a peer. */
		log_err("%s: send item queued twice, dropping", c->peer);
		return;
	}
	it->next = NULL;
	it->first = 0;
	it->linked = true;
	if (c->send_tail)
		c->send_tail->next = it;
	else
		c->send_head = it;
	c->send_tail = it;
	nvmg_reactor_defer(c->r, &c->flush_defer);
}

static void send_unlink(struct tcp_conn *c, struct send_item *it)
{
	struct send_item **pp = &c->send_head, *prev = NULL;

	while (*pp && *pp != it) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = it->next;
	if (c->send_tail == it)
		c->send_tail = prev;
	it->linked = false;
}

static void cmd_release(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;

	if (cmd->state == CMD_FREE)
		return;
	if (cmd->send.linked)
		send_unlink(c, &cmd->send);
	if (cmd->req.ns) {
		nvmg_ns_put(cmd->req.ns);
		cmd->req.ns = NULL;
	}
	if (cmd->buf) {
		nvmg_buf_put(nvmg_reactor_bufpool(c->r), cmd->buf, cmd->buf_cap);
		cmd->buf = NULL;
	}
	cmd->state = CMD_FREE;
	cmd->next_free = c->free_cmds;
	c->free_cmds = cmd;
	c->nr_busy--;
}

/* A send item is done: what it frees depends on what it carried. */
static void send_item_done(struct tcp_conn *c, struct send_item *it)
{
	it->linked = false;
	if (it == &c->ctl || it == &c->term)
		return;
	struct tcp_cmd *cmd = nvmg_container_of(it, struct tcp_cmd, send);

	if (cmd->state == CMD_SEND)
		cmd_release(cmd);
	/* An R2T leaves the command waiting for its H2CData. */
}

static void send_drop_all(struct tcp_conn *c)
{
	while (c->send_head) {
		struct send_item *it = c->send_head;

		c->send_head = it->next;
		if (!c->send_head)
			c->send_tail = NULL;
		send_item_done(c, it);
	}
}

static void poll_done(struct nvmg_ev *ev, int res, uint32_t flags);
static void conn_send(struct tcp_conn *c);

static void conn_flush(struct nvmg_defer *d)
{
	struct tcp_conn *c = nvmg_container_of(d, struct tcp_conn, flush_defer);

	c->hold++;
	conn_send(c);
	c->hold--;
	conn_maybe_free(c);
}

static void conn_send(struct tcp_conn *c)
{
	struct iovec iov[MAX_IOV];

	while (c->send_head && !c->poll_inflight) {
		struct msghdr msg = { .msg_iov = iov };
		int n = 0;
		ssize_t sent;

		for (struct send_item *it = c->send_head; it && n + 5 <= MAX_IOV; it = it->next)
			for (int i = it->first; i < it->niov; i++)
				iov[n++] = it->iov[i];
		msg.msg_iovlen = (size_t)n;
		sent = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (sent < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct io_uring_sqe *sqe = nvmg_reactor_sqe(c->r);

				io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
				io_uring_sqe_set_data(sqe, &c->poll_ev);
				c->poll_inflight = true;
				return;
			}
			send_drop_all(c);
			conn_close(c, "send failed");
			return;
		}
		/* Retire what went out; trim a partly sent item in place. */
		while (sent > 0 && c->send_head) {
			struct send_item *it = c->send_head;

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
				c->send_head = it->next;
				if (!c->send_head)
					c->send_tail = NULL;
				send_item_done(c, it);
			}
		}
	}
	if (!c->send_head) {
		if (c->state == CS_TERMINATING)
			conn_close(c, "fatal transport error");
		else if (c->rx_stopped && !c->closing && c->nr_busy == 0)
			conn_close(c, "host closed the connection");
	}
}

static void poll_done(struct nvmg_ev *ev, int res, uint32_t flags)
{
	struct tcp_conn *c = nvmg_container_of(ev, struct tcp_conn, poll_ev);

	(void)flags;
	c->poll_inflight = false;
	if (c->closing) {
		send_drop_all(c);
		conn_maybe_free(c);
		return;
	}
	if (res < 0 && res != -EINTR) {
		send_drop_all(c);
		conn_close(c, "poll failed");
		return;
	}
	conn_flush(&c->flush_defer);
}

static void put_hdgst(struct tcp_conn *c, struct nvmg_tcp_hdr *h)
{
	uint32_t crc;

	if (!c->hdgst)
		return;
	h->flags |= NVMG_TCP_F_HDGST;
	crc = htole32(nvmg_crc32c(h, h->hlen));
	memcpy((uint8_t *)h + h->hlen, &crc, 4); /* the digest follows the header */
}

static void queue_r2t(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;
	struct pdu_hd *p = &cmd->c2h;
	uint32_t hl = sizeof(p->h) + (c->hdgst ? 4 : 0);

	memset(p, 0, sizeof(*p));
	p->h.hdr.type = NVMG_TCP_R2T;
	p->h.hdr.hlen = sizeof(p->h);
	p->h.hdr.plen = htole32(hl);
	p->h.cccid = cmd->req.cmd.cid;
	p->h.ttag = htole16(cmd->ttag);
	p->h.offset = 0;
	p->h.length = htole32(cmd->req.data_len);
	put_hdgst(c, &p->h.hdr);
	cmd->send.iov[0] = (struct iovec){ p, hl };
	cmd->send.niov = 1;
	send_enqueue(c, &cmd->send);
}

/* The core's completion path: C2HData (for reads) then CapsuleResp. */
static void tcp_queue_response(struct nvmg_req *req)
{
	struct tcp_cmd *cmd = (struct tcp_cmd *)req;
	struct tcp_conn *c = cmd->conn;
	bool data = req->dir == NVMG_DIR_TO_HOST && req->data_len && !req->cqe.status;
	bool success_flag = data && c->sq.sqfc_disabled;
	int n = 0;

	cmd->state = CMD_SEND;
	if (c->closing || c->state == CS_TERMINATING) {
		cmd_release(cmd);
		conn_maybe_free(c);
		return;
	}
	if (data) {
		struct pdu_hd *p = &cmd->c2h;
		uint32_t hl = sizeof(p->h) + (c->hdgst ? 4 : 0);

		/* HPDA: the host wants data at a multiple of (HPDA+1)*4 bytes. */
		uint32_t pdo = (hl + c->c2h_align - 1) / c->c2h_align * c->c2h_align;

		memset(p, 0, sizeof(*p));
		p->h.hdr.type = NVMG_TCP_C2H_DATA;
		p->h.hdr.flags = NVMG_TCP_F_DATA_LAST;
		/* SUCCESS replaces the CapsuleResp only where the host turned
		 * SQ flow control off; otherwise it needs SQHD. */
		if (success_flag)
			p->h.hdr.flags |= NVMG_TCP_F_DATA_SUCCESS;
		p->h.hdr.hlen = sizeof(p->h);
		p->h.hdr.pdo = (uint8_t)pdo;
		p->h.hdr.plen = htole32(pdo + req->data_len + (c->ddgst ? 4 : 0));
		p->h.cccid = req->cmd.cid;
		p->h.offset = 0;
		p->h.length = htole32(req->data_len);
		if (c->ddgst)
			p->h.hdr.flags |= NVMG_TCP_F_DDGST;
		put_hdgst(c, &p->h.hdr);
		cmd->send.iov[n++] = (struct iovec){ p, hl };
		if (pdo > hl)
			cmd->send.iov[n++] = (struct iovec){ (void *)pdu_pad, pdo - hl };
		cmd->send.iov[n++] = (struct iovec){ req->buf, req->data_len };
		if (c->ddgst) {
			cmd->ddgst = htole32(nvmg_crc32c(req->buf, req->data_len));
			cmd->send.iov[n++] = (struct iovec){ &cmd->ddgst, 4 };
		}
	}
	if (!success_flag) {
		struct pdu_rsp *p = &cmd->rsp;
		uint32_t hl = sizeof(p->h) + (c->hdgst ? 4 : 0);

		memset(&p->h.hdr, 0, sizeof(p->h.hdr));
		p->h.hdr.type = NVMG_TCP_RSP;
		p->h.hdr.hlen = sizeof(p->h);
		p->h.hdr.plen = htole32(hl);
		p->h.cqe = req->cqe;
		put_hdgst(c, &p->h.hdr);
		cmd->send.iov[n++] = (struct iovec){ p, hl };
	}
	cmd->send.niov = n;
	send_enqueue(c, &cmd->send);
}

/* Fatal error: C2HTermReq echoing the offending header, then close. */
static void conn_fatal(struct tcp_conn *c, uint16_t fes, uint32_t fei, const void *hdr, size_t hdr_len)
{
	struct nvmg_tcp_term *t = (struct nvmg_tcp_term *)c->term_buf;

	if (c->state == CS_TERMINATING || c->closing)
		return;
	log_warn("%s: fatal NVMe/TCP error (FES %#x, FEI %u), closing", c->peer, fes, fei);
	if (hdr_len > NVMG_TCP_TERM_MAX_DATA)
		hdr_len = NVMG_TCP_TERM_MAX_DATA;
	memset(t, 0, sizeof(*t));
	t->hdr.type = NVMG_TCP_C2H_TERM;
	t->hdr.hlen = sizeof(*t);
	t->hdr.plen = htole32((uint32_t)(sizeof(*t) + hdr_len));
	t->fes = htole16(fes);
	t->fei = htole32(fei);
	memcpy(c->term_buf + sizeof(*t), hdr, hdr_len);
	c->term.iov[0] = (struct iovec){ c->term_buf, sizeof(*t) + hdr_len };
	c->term.niov = 1;
	c->state = CS_TERMINATING;
	c->rx_stopped = true;
	send_enqueue(c, &c->term);
	/* Give the TermReq a moment to leave even if the peer stalls. */
	c->deadline_ms = nvmg_now_ms() + 1000;
}

/* ------------------------------------------------------------- receive */

static struct tcp_cmd *cmd_alloc(struct tcp_conn *c)
{
	struct tcp_cmd *cmd = c->free_cmds;

	if (!cmd)
		return NULL;
	c->free_cmds = cmd->next_free;
	c->nr_busy++;
	cmd->state = CMD_RX;
	cmd->h2c_done = 0;
	cmd->ddgst_err = false;
	cmd->early_status = 0;
	cmd->send.linked = false;
	cmd->req.ns = NULL;
	return cmd;
}

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

static uint32_t hdr_len_for(uint8_t type)
{
	switch (type) {
	case NVMG_TCP_ICREQ:
		return sizeof(struct nvmg_tcp_icreq);
	case NVMG_TCP_CMD:
		return sizeof(struct nvmg_tcp_cmd);
	case NVMG_TCP_H2C_DATA:
	case NVMG_TCP_H2C_TERM:
		return sizeof(struct nvmg_tcp_data);
	default:
		return 0;
	}
}

static bool type_has_hdgst(uint8_t type)
{
	return type == NVMG_TCP_CMD || type == NVMG_TCP_H2C_DATA;
}

static void handle_icreq(struct tcp_conn *c)
{
	const struct nvmg_tcp_icreq *req = (const void *)c->hdr;
	struct nvmg_tcp_icresp *rsp = (struct nvmg_tcp_icresp *)c->ctl_buf;

	if (le32toh(req->hdr.plen) != sizeof(*req)) {
		conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, offsetof(struct nvmg_tcp_hdr, plen), req, sizeof(*req));
		return;
	}
	if (le16toh(req->pfv) != 0) {
		conn_fatal(c, NVMG_TCP_FES_UNSUPPORTED_PARAM, offsetof(struct nvmg_tcp_icreq, pfv), req, sizeof(*req));
		return;
	}
	if (req->hpda > 31) {
		conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, offsetof(struct nvmg_tcp_icreq, hpda), req, sizeof(*req));
		return;
	}
	c->c2h_align = (req->hpda + 1u) * 4;
	c->hdgst = req->digest & NVMG_TCP_HDGST_ENABLE;
	c->ddgst = req->digest & NVMG_TCP_DDGST_ENABLE;
	memset(rsp, 0, sizeof(*rsp));
	rsp->hdr.type = NVMG_TCP_ICRESP;
	rsp->hdr.hlen = sizeof(*rsp);
	rsp->hdr.plen = htole32(sizeof(*rsp));
	rsp->pfv = 0;
	rsp->cpda = 0; /* Linux hosts refuse anything else */
	rsp->digest = req->digest & (NVMG_TCP_HDGST_ENABLE | NVMG_TCP_DDGST_ENABLE);
	rsp->maxh2cdata = htole32(MAXH2CDATA);
	c->ctl.iov[0] = (struct iovec){ rsp, sizeof(*rsp) };
	c->ctl.niov = 1;
	send_enqueue(c, &c->ctl);
	c->state = CS_WAIT_CONNECT;
	log_debug("%s: ICReq (hdgst %d, ddgst %d)", c->peer, c->hdgst, c->ddgst);
}

/* Data length carried by a PDU and its padding, validated against PLEN. */
static bool pdu_data_len(struct tcp_conn *c, const struct nvmg_tcp_hdr *h, uint32_t *len)
{
	uint32_t plen = le32toh(h->plen), dd = c->ddgst ? 4 : 0;

	c->pad_left = 0;
	if (plen == c->hdr_total) {
		*len = 0;
		return true;
	}
	if (h->pdo < c->hdr_total || plen < (uint32_t)h->pdo + dd + 1)
		return false;
	if (c->ddgst != !!(h->flags & NVMG_TCP_F_DDGST))
		return false;
	c->pad_left = h->pdo - c->hdr_total;
	*len = plen - h->pdo - dd;
	return true;
}

static void handle_capsule(struct tcp_conn *c)
{
	const struct nvmg_tcp_cmd *pdu = (const void *)c->hdr;
	const struct nvmg_sgl_desc *sgl = &pdu->sqe.dptr;
	uint32_t in_len, max_in;
	struct tcp_cmd *cmd;
	uint16_t status, sgl_status = 0;

	conn_check_live(c);
	if (!pdu_data_len(c, &pdu->hdr, &in_len)) {
		conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, offsetof(struct nvmg_tcp_hdr, plen), c->hdr, c->hdr_total);
		return;
	}
	cmd = cmd_alloc(c);
	if (!cmd) {
		/* The host overran the queue size it asked for. */
		conn_fatal(c, NVMG_TCP_FES_PDU_SEQUENCE, 0, c->hdr, c->hdr_total);
		return;
	}
	cmd->req.cmd = pdu->sqe;
	cmd->req.sgl_len = 0;
	/* Before Connect the queue is unknown: Connect data (1 KiB) always
	 * fits the admin queue's 8 KiB. */
	max_in = c->state == CS_LIVE ? c->sq.incapsule_max : NVMG_ADMIN_INCAPSULE;
	if (in_len) {
		if (sgl->type != NVMG_SGL_DATA_BLOCK_OFFSET)
			sgl_status = NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_TYPE) | NVME_SC_DNR;
		else if (le64toh(sgl->addr) != 0)
			sgl_status = NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_OFFSET) | NVME_SC_DNR;
		else if (in_len > max_in || le32toh(sgl->length) != in_len)
			sgl_status = NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVME_SC_DNR;
		else
			cmd->req.sgl_len = in_len;
	} else if (sgl->type == NVMG_SGL_TRANSPORT_DATA_BLOCK) {
		cmd->req.sgl_len = le32toh(sgl->length);
	} else if (sgl->type == NVMG_SGL_DATA_BLOCK_OFFSET) {
		if (le32toh(sgl->length))
			sgl_status = NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVME_SC_DNR;
	} else if (sgl->type != 0 || le32toh(sgl->length)) {
		sgl_status = NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_TYPE) | NVME_SC_DNR;
	}
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
		queue_r2t(cmd);
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

	if (!pdu_data_len(c, &pdu->hdr, &plen_data) || plen_data != len || !len) {
		conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, offsetof(struct nvmg_tcp_hdr, plen), c->hdr, c->hdr_total);
		return;
	}
	if (ttag >= NR_CMDS || c->cmds[ttag].state != CMD_WAIT_H2C || c->cmds[ttag].req.cmd.cid != pdu->cccid) {
		conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, offsetof(struct nvmg_tcp_data, ttag), c->hdr, c->hdr_total);
		return;
	}
	cmd = &c->cmds[ttag];
	if (cmd->send.linked) {
		/* Data for an R2T we have not finished sending. */
		conn_fatal(c, NVMG_TCP_FES_PDU_SEQUENCE, 0, c->hdr, c->hdr_total);
		return;
	}
	if (len > MAXH2CDATA) {
		conn_fatal(c, NVMG_TCP_FES_R2T_LIMIT, offsetof(struct nvmg_tcp_data, length), c->hdr, c->hdr_total);
		return;
	}
	if (off != cmd->h2c_done || off + (uint64_t)len > cmd->req.data_len) {
		conn_fatal(c, NVMG_TCP_FES_DATA_OUT_OF_RANGE, offsetof(struct nvmg_tcp_data, offset), c->hdr, c->hdr_total);
		return;
	}
	c->rx_cmd = cmd;
	rx_start_data(c, RXK_H2C, (uint8_t *)cmd->buf + off, len);
}

/* A complete header is in c->hdr: dispatch on its type. */
static void handle_header(struct tcp_conn *c)
{
	const struct nvmg_tcp_hdr *h = (const void *)c->hdr;

	if (c->hdgst && type_has_hdgst(h->type)) {
		uint32_t want, got;

		memcpy(&got, c->hdr + h->hlen, 4);
		want = nvmg_crc32c(c->hdr, h->hlen);
		if (le32toh(got) != want) {
			conn_fatal(c, NVMG_TCP_FES_HDGST_ERROR, 0, c->hdr, c->hdr_total);
			return;
		}
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
		conn_close(c, "H2CTermReq");
		return;
	}
	}
}

/* Check the common header as soon as its 8 bytes are in. */
static bool check_common_header(struct tcp_conn *c, const struct nvmg_tcp_hdr *h)
{
	uint32_t want = hdr_len_for(h->type);

	if (c->state == CS_WAIT_ICREQ && h->type != NVMG_TCP_ICREQ) {
		conn_fatal(c, NVMG_TCP_FES_PDU_SEQUENCE, 0, h, sizeof(*h));
		return false;
	}
	if (c->state != CS_WAIT_ICREQ && h->type == NVMG_TCP_ICREQ) {
		conn_fatal(c, NVMG_TCP_FES_PDU_SEQUENCE, 0, h, sizeof(*h));
		return false;
	}
	if (!want) {
		conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, offsetof(struct nvmg_tcp_hdr, type), h, sizeof(*h));
		return false;
	}
	if (h->hlen != want) {
		conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, offsetof(struct nvmg_tcp_hdr, hlen), h, sizeof(*h));
		return false;
	}
	c->hdr_total = want + (c->hdgst && type_has_hdgst(h->type) ? 4 : 0);
	if (c->hdgst && type_has_hdgst(h->type) && !(h->flags & NVMG_TCP_F_HDGST)) {
		conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, offsetof(struct nvmg_tcp_hdr, flags), h, sizeof(*h));
		return false;
	}
	if (le32toh(h->plen) < c->hdr_total) {
		conn_fatal(c, NVMG_TCP_FES_INVALID_HEADER, offsetof(struct nvmg_tcp_hdr, plen), h, sizeof(*h));
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

static void rx_process(struct tcp_conn *c)
{
	while (!c->rx_stopped && c->roff < c->rlen) {
		uint32_t avail = c->rlen - c->roff, n;
		const uint8_t *p = c->rbuf + c->roff;

		switch (c->rx_state) {
		case RX_HDR:
			if (avail < sizeof(struct nvmg_tcp_hdr))
				goto out;
			if (!check_common_header(c, (const struct nvmg_tcp_hdr *)p))
				return;
			if (avail < c->hdr_total)
				goto out;
			memcpy(c->hdr, p, c->hdr_total);
			c->roff += c->hdr_total;
			c->pad_left = 0;
			handle_header(c);
			break;
		case RX_PAD:
			n = avail < c->pad_left ? avail : c->pad_left;
			c->roff += n;
			c->pad_left -= n;
			if (!c->pad_left)
				c->rx_state = RX_DATA;
			break;
		case RX_DATA:
			n = c->rx_len - c->rx_done;
			if (n > avail)
				n = avail;
			rx_consume_data(c, p, n);
			c->roff += n;
			if (c->rx_done == c->rx_len)
				rx_data_complete(c);
			break;
		case RX_DDGST:
			n = 4 - c->ddgst_got;
			if (n > avail)
				n = avail;
			memcpy(c->ddgst_buf + c->ddgst_got, p, n);
			c->ddgst_got += n;
			c->roff += n;
			if (c->ddgst_got == 4) {
				uint32_t got;

				memcpy(&got, c->ddgst_buf, 4);
				rx_data_done(c, le32toh(got) == nvmg_crc32c_final(c->rx_crc));
			}
			break;
		}
	}
out:
	if (c->roff == c->rlen) {
		c->roff = c->rlen = 0;
	} else if (c->roff && c->rlen - c->roff < MAX_HDR) {
		/* Keep room for a whole header at the end of the buffer. */
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
}

static void recv_handle(struct tcp_conn *c, int res);

static void recv_done(struct nvmg_ev *ev, int res, uint32_t flags)
{
	struct tcp_conn *c = nvmg_container_of(ev, struct tcp_conn, recv_ev);

	(void)flags;
	c->recv_inflight = false;
	if (c->closing) {
		if (c->recv_direct && c->rx_cmd &&
		    (c->rx_cmd->state == CMD_RX || c->rx_cmd->state == CMD_WAIT_H2C))
			cmd_release(c->rx_cmd);
		c->recv_direct = false;
		c->rx_cmd = NULL;
		conn_maybe_free(c);
		return;
	}
	c->hold++;
	recv_handle(c, res);
	c->hold--;
	conn_maybe_free(c);
}

static void recv_handle(struct tcp_conn *c, int res)
{
	if (res == -EINTR || res == -EAGAIN) {
		conn_arm_recv(c);
		return;
	}
	if (res <= 0) {
		if (res < 0 && res != -ECONNRESET)
			log_warn("%s: receive: %s", c->peer, strerror(-res));
		c->rx_stopped = true;
		c->deadline_ms = nvmg_now_ms() + c->tr->tcp->opts.handshake_timeout_ms;
		/* Commands already running finish; then the socket closes. */
		for (unsigned i = 0; i < NR_CMDS; i++) {
			enum cmd_state s = c->cmds[i].state;

			if (s == CMD_RX || s == CMD_WAIT_H2C)
				cmd_release(&c->cmds[i]);
		}
		if (c->sq.ctrl && c->sq.qid == 0)
			nvmg_ctrl_abort_aers(c->sq.ctrl, NVMG_SC_GENERIC(NVME_SC_ABORT_QUEUE));
		nvmg_reactor_defer(c->r, &c->flush_defer);
		return;
	}
	if (c->recv_direct) {
		c->recv_direct = false;
		if (c->ddgst)
			c->rx_crc = nvmg_crc32c_update(c->rx_crc, c->rx_dst + c->rx_done, (size_t)res);
		c->rx_done += (uint32_t)res;
		if (c->rx_done == c->rx_len)
			rx_data_complete(c);
	} else {
		c->rlen += (uint32_t)res;
	}
	rx_process(c);
	conn_arm_recv(c);
}

static void conn_arm_recv(struct tcp_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->recv_inflight || c->rx_stopped || c->closing)
		return;
	sqe = nvmg_reactor_sqe(c->r);
	/* Large payloads go straight into the command's buffer. */
	if (c->rx_state == RX_DATA && c->rx_dst && c->roff == c->rlen &&
	    c->rx_len - c->rx_done >= DIRECT_RECV_MIN) {
		c->recv_direct = true;
		io_uring_prep_recv(sqe, c->fd, c->rx_dst + c->rx_done, c->rx_len - c->rx_done, 0);
	} else {
		io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen, 0);
	}
	io_uring_sqe_set_data(sqe, &c->recv_ev);
	c->recv_inflight = true;
}

/* -------------------------------------------------------- life cycle */

static void conn_tick(struct nvmg_ticker *t, uint64_t now)
{
	struct tcp_conn *c = nvmg_container_of(t, struct tcp_conn, ticker);
	struct nvmg_ctrl *ctrl = c->sq.ctrl;

	if (c->closing)
		return;
	if ((c->state != CS_LIVE || !ctrl || c->rx_stopped) && now > c->deadline_ms) {
		log_info("%s: %s, closing", c->peer,
			 c->state == CS_TERMINATING ? "peer did not take the TermReq"
			 : c->rx_stopped		    ? "peer closed but does not read"
						    : "no ICReq/Connect within the deadline");
		conn_close(c, "handshake timeout");
		return;
	}
	if (ctrl && c->sq.qid == 0) {
		bool expired;

		pthread_mutex_lock(&ctrl->lock);
		/* Half a tick of slack: expiry is checked every 500 ms. */
		expired = ctrl->kato_ms && now > ctrl->last_keepalive_ms + ctrl->kato_ms + 250;
		pthread_mutex_unlock(&ctrl->lock);
		if (expired)
			nvmg_ctrl_kill(ctrl, false, "keep alive timeout");
	}
}

static void tcp_kill_queue(struct nvmg_sq *sq)
{
	conn_close(sq_to_conn(sq), "controller torn down");
}

static int tcp_local_addr(struct nvmg_sq *sq, char *traddr, size_t len)
{
	struct tcp_conn *c = sq_to_conn(sq);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(c->fd, (struct sockaddr *)&ss, &sl))
		return -errno;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		/* A v4 host on a dual-stack socket is reported as v4. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			return inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], traddr, (socklen_t)len) ? 0 : -errno;
		return inet_ntop(AF_INET6, &s6->sin6_addr, traddr, (socklen_t)len) ? 0 : -errno;
	}
	return inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, traddr, (socklen_t)len) ? 0 : -errno;
}

const struct nvmg_transport nvmg_tcp_transport = {
	.name = "tcp",
	.queue_response = tcp_queue_response,
	.kill_queue = tcp_kill_queue,
	.local_addr = tcp_local_addr,
	.enable_port = nvmg_tcp_enable_port,
	.disable_port = nvmg_tcp_disable_port,
	.trtype = NVMF_TRTYPE_TCP,
	.disc_adrfam = nvmg_tcp_disc_adrfam,
	.disc_treq = nvmg_tcp_disc_treq,
	.disc_tsas = nvmg_tcp_disc_tsas,
};

static void conn_pending_done(struct tcp_conn *c)
{
	if (c->pending_counted) {
		c->pending_counted = false;
		atomic_fetch_sub(&c->tr->tcp->pending_sockets, 1);
	}
}

static void conn_close(struct tcp_conn *c, const char *why)
{
	if (c->closing)
		return;
	log_debug("%s: closing queue %u: %s", c->peer, c->sq.qid, why);
	c->hold++;
	c->closing = true;
	c->sq.closing = true;
	c->rx_stopped = true;
	shutdown(c->fd, SHUT_RDWR); /* completes the pending receive and poll */
	nvmg_reactor_del_ticker(c->r, &c->ticker);
	send_drop_all(c);
	for (unsigned i = 0; i < NR_CMDS; i++) {
		enum cmd_state s = c->cmds[i].state;

		/* A receive in flight may still write into rx_cmd's buffer:
		 * that command is released when the receive completes. */
		if (&c->cmds[i] == c->rx_cmd && c->recv_inflight && c->recv_direct)
			continue;
		if (s == CMD_RX || s == CMD_WAIT_H2C || s == CMD_SEND)
			cmd_release(&c->cmds[i]);
	}
	/* Waiting AERs hold slots of the admin queue: give them back. */
	if (c->sq.ctrl && c->sq.qid == 0)
		nvmg_ctrl_abort_aers(c->sq.ctrl, NVMG_SC_GENERIC(NVME_SC_ABORT_QUEUE));
	c->hold--;
	conn_maybe_free(c);
}

/* Free once nothing refers to the connection: no io_uring operation in
 * flight and no command with the backend. */
static void conn_maybe_free(struct tcp_conn *c)
{
	struct tcp_reactor *tr = c->tr;

	if (!c->closing || c->hold || c->recv_inflight || c->poll_inflight || c->nr_busy ||
	    c->flush_defer.queued)
		return;
	if (c->sq.ctrl)
		nvmg_ctrl_remove_sq(c->sq.ctrl, &c->sq);
	conn_pending_done(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		tr->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	tr->nr_conns--;
	atomic_fetch_sub(&tr->tcp->live_conns, 1);
	close(c->fd);
	free(c->rbuf);
	free(c);
}

/* After Connect succeeds the socket stops counting as half-open. */
static void conn_check_live(struct tcp_conn *c)
{
	if (c->state == CS_WAIT_CONNECT && c->sq.ctrl) {
		c->state = CS_LIVE;
		conn_pending_done(c);
	}
}

static void conn_flush_and_check(struct nvmg_defer *d)
{
	struct tcp_conn *c = nvmg_container_of(d, struct tcp_conn, flush_defer);

	conn_check_live(c);
	conn_flush(d);
}

void nvmg_tcp_conn_create(struct tcp_reactor *tr, int fd, struct nvmg_port *port)
{
	struct tcp_conn *c = calloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "?";
	int one = 1;

	if (c)
		c->rbuf = malloc(RBUF_SIZE);
	if (!c || !c->rbuf || tr->draining) {
		if (c)
			free(c->rbuf);
		free(c);
		close(fd);
		atomic_fetch_sub(&tr->tcp->pending_sockets, 1);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!getpeername(fd, (struct sockaddr *)&ss, &sl)) {
		if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
		else
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
		snprintf(c->peer, sizeof(c->peer), "%s%s%s:%u", ss.ss_family == AF_INET6 ? "[" : "", addr,
			 ss.ss_family == AF_INET6 ? "]" : "",
			 ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							: ((struct sockaddr_in *)&ss)->sin_port));
	}
	c->tr = tr;
	c->r = tr->r;
	c->fd = fd;
	c->pending_counted = true;
	c->sq.tgt = tr->tcp->tgt;
	c->sq.port = port;
	c->sq.reactor = tr->r;
	c->sq.transport = &nvmg_tcp_transport;
	c->sq.peer = c->peer;
	c->recv_ev.fn = recv_done;
	c->poll_ev.fn = poll_done;
	c->flush_defer.fn = conn_flush_and_check;
	c->ticker.fn = conn_tick;
	c->deadline_ms = nvmg_now_ms() + tr->tcp->opts.handshake_timeout_ms;
	for (unsigned i = NR_CMDS; i-- > 0;) {
		c->cmds[i].conn = c;
		c->cmds[i].ttag = (uint16_t)i;
		c->cmds[i].req.sq = &c->sq;
		c->cmds[i].next_free = c->free_cmds;
		c->free_cmds = &c->cmds[i];
	}
	c->next = tr->conns;
	if (tr->conns)
		tr->conns->prev = c;
	tr->conns = c;
	tr->nr_conns++;
	atomic_fetch_add(&tr->tcp->live_conns, 1);
	nvmg_reactor_add_ticker(tr->r, &c->ticker);
	log_debug("%s: connected to port %u", c->peer, port->portid);
	conn_arm_recv(c);
}

void nvmg_tcp_reactor_drain(struct tcp_reactor *tr)
{
	tr->draining = true;
	for (struct tcp_conn *c = tr->conns, *next; c; c = next) {
		next = c->next;
		if (c->closing)
			continue;
		/* No new commands; running ones finish and are answered. */
		shutdown(c->fd, SHUT_RD);
	}
}

void nvmg_tcp_reactor_close_port(struct tcp_reactor *tr, struct nvmg_port *port)
{
	for (struct tcp_conn *c = tr->conns, *next; c; c = next) {
		next = c->next;
		if (c->sq.port == port)
			conn_close(c, "port removed");
	}
}

void nvmg_tcp_reactor_close_all(struct tcp_reactor *tr)
{
	tr->draining = true;
	for (struct tcp_conn *c = tr->conns, *next; c; c = next) {
		next = c->next;
		conn_close(c, "shutting down");
	}
}
