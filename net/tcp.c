/* NVMe/TCP connections: life cycle and the transport ops the core calls.
 *
 * One connection is one queue and belongs to one reactor, which owns it
 * from creation to free. The receive side is tcp_recv.c, the send side
 * tcp_send.c; the connection's state is in tcp_conn.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "lib/log.h"
#include "net/tcp_conn.h"
#include "net/tcp_tls.h"

static struct tcp_conn *sq_to_conn(struct nvmg_sq *sq)
{
	return (struct tcp_conn *)sq;
}

/* ------------------------------------------------------- command slots */

struct tcp_cmd *tcp_cmd_alloc(struct tcp_conn *c)
{
	struct tcp_cmd *cmd = SLIST_FIRST(&c->free_cmds);

	if (!cmd)
		return NULL;
	SLIST_REMOVE_HEAD(&c->free_cmds, free_link);
	c->nr_busy++;
	cmd->state = CMD_RX;
	cmd->h2c_done = 0;
	cmd->ddgst_err = false;
	cmd->early_status = 0;
	cmd->send.linked = false;
	cmd->send.zc_used = false;
	cmd->send.held = false;
	cmd->req.ns = NULL;
	return cmd;
}

void tcp_cmd_release(struct tcp_cmd *cmd)
{
	struct tcp_conn *c = cmd->conn;

	/* The kernel still reads what it sent by zero copy: the notification
	 * releases it (tcp_send.c). */
	if (cmd->state == CMD_FREE || cmd->send.held)
		return;
	if (cmd->send.linked)
		tcp_send_unlink(c, &cmd->send);
	if (cmd->req.ns) {
		nvmg_ns_put(cmd->req.ns);
		cmd->req.ns = NULL;
	}
	if (cmd->buf) {
		nvmg_buf_put(nvmg_reactor_bufpool(c->r), cmd->buf, cmd->buf_cap);
		cmd->buf = NULL;
	}
	cmd->state = CMD_FREE;
	SLIST_INSERT_HEAD(&c->free_cmds, cmd, free_link);
	c->nr_busy--;
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
			 : c->ho && c->ho->stage == TCP_HO_NEW ? "no ICReq within the deadline"
						    : "no ICReq/Connect within the deadline");
		tcp_conn_close(c, "handshake timeout");
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
	tcp_conn_close(sq_to_conn(sq), "controller torn down");
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
	.lend_reads = true,
	.kill_queue = tcp_kill_queue,
	.local_addr = tcp_local_addr,
	.enable_port = nvmg_tcp_enable_port,
	.disable_port = nvmg_tcp_disable_port,
	.trtype = NVMF_TRTYPE_TCP,
	.disc_adrfam = nvmg_tcp_disc_adrfam,
	.disc_treq = nvmg_tcp_disc_treq,
	.disc_tsas = nvmg_tcp_disc_tsas,
};

/* Out of the half-open pool: Connect done, or the connection is going. */
static void conn_pending_done(struct tcp_conn *c)
{
	if (c->ho) {
		tcp_ho_done(&c->tr->tcp->half_open, c->ho);
		c->ho = NULL;
	}
}

/* ICReq arrived, or the TLS handshake completed: the host has shown it
 * speaks the protocol, so the short ICReq deadline gives way to the
 * ICReq + Connect one, counted from the accept as before. */
void tcp_conn_progress(struct tcp_conn *c)
{
	uint64_t now = nvmg_now_ms();

	if (!c->ho || c->ho->stage != TCP_HO_NEW)
		return;
	tcp_ho_progress(&c->tr->tcp->half_open, c->ho, now);
	if (c->state != CS_TERMINATING && !c->rx_stopped)
		c->deadline_ms = c->accept_ms + c->tr->tcp->opts.handshake_timeout_ms;
}

void tcp_conn_close(struct tcp_conn *c, const char *why)
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
	tcp_send_drop_all(c);
	for (unsigned i = 0; i < NR_CMDS; i++) {
		enum cmd_state s = c->cmds[i].state;

		/* A receive in flight may still write into rx_cmd's buffer:
		 * that command is released when the receive completes. */
		if (&c->cmds[i] == c->rx_cmd && c->recv_inflight && c->recv_direct)
			continue;
		if (s == CMD_RX || s == CMD_WAIT_H2C || s == CMD_SEND)
			tcp_cmd_release(&c->cmds[i]);
	}
	/* Waiting AERs hold slots of the admin queue: give them back. */
	if (c->sq.ctrl && c->sq.qid == 0)
		nvmg_ctrl_abort_aers(c->sq.ctrl, NVMG_SC_GENERIC(NVME_SC_ABORT_QUEUE));
	c->hold--;
	tcp_conn_maybe_free(c);
}

/* Free once nothing refers to the connection: no io_uring operation in
 * flight and no command with the backend. */
void tcp_conn_maybe_free(struct tcp_conn *c)
{
	struct tcp_reactor *tr = c->tr;

	if (!c->closing || c->hold || c->recv_inflight || c->poll_inflight || c->nr_busy ||
	    c->zc_busy || c->flush_defer.queued)
		return;
	if (c->sq.ctrl)
		nvmg_ctrl_remove_sq(c->sq.ctrl, &c->sq);
	conn_pending_done(c);
	LIST_REMOVE(c, link);
	tr->nr_conns--;
	atomic_fetch_sub(&tr->tcp->live_conns, 1);
	close(c->fd);
	tcp_tls_free(c);
	free(c->rbuf);
	free(c);
}

/* After Connect succeeds the socket stops counting as half-open. */
void tcp_conn_check_live(struct tcp_conn *c)
{
	if (c->state == CS_WAIT_CONNECT && c->sq.ctrl) {
		c->state = CS_LIVE;
		conn_pending_done(c);
	}
}

static void conn_flush_and_check(struct nvmg_defer *d)
{
	struct tcp_conn *c = nvmg_container_of(d, struct tcp_conn, flush_defer);

	tcp_conn_check_live(c);
	tcp_conn_flush(d);
}

void nvmg_tcp_conn_create(struct tcp_reactor *tr, int fd, struct nvmg_port *port, struct tcp_ho *ho)
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
		tcp_ho_done(&tr->tcp->half_open, ho); /* before the close: see evict_half_open */
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A host that stops reading leaves our sends pending (zero window)
	 * and its commands, buffers and lent namespace memory held, and TCP
	 * would keep probing it for about 15 minutes. With a user timeout
	 * the kernel aborts once sent data stays unacknowledged that long,
	 * and zero-window probing counts too (tcp_probe_timer, timed from
	 * the first probe since Linux 5.11; tests/test_tcp_user_timeout.py
	 * checks it). The send or receive in flight then fails and the
	 * connection closes. */
	if (tr->tcp->opts.user_timeout_ms) {
		unsigned to = tr->tcp->opts.user_timeout_ms;

		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &to, sizeof(to));
	}
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
	c->ho = ho;
	c->tls_peek = __atomic_load_n(&port->tls, __ATOMIC_RELAXED);
	c->sq.tgt = tr->tcp->tgt;
	c->sq.port = port;
	c->sq.reactor = tr->r;
	c->sq.transport = &nvmg_tcp_transport;
	c->sq.peer = c->peer;
	c->recv_ev.fn = tcp_recv_done;
	c->poll_ev.fn = tcp_poll_done;
	c->flush_defer.fn = conn_flush_and_check;
	c->ticker.fn = conn_tick;
	STAILQ_INIT(&c->send_q);
	SLIST_INIT(&c->free_cmds);
	tcp_send_init(c);
	c->accept_ms = nvmg_now_ms();
	c->deadline_ms = c->accept_ms + tr->tcp->opts.icreq_timeout_ms;
	for (unsigned i = NR_CMDS; i-- > 0;) {
		c->cmds[i].conn = c;
		c->cmds[i].ttag = (uint16_t)i;
		c->cmds[i].req.sq = &c->sq;
		SLIST_INSERT_HEAD(&c->free_cmds, &c->cmds[i], free_link);
	}
	LIST_INSERT_HEAD(&tr->conns, c, link);
	tr->nr_conns++;
	atomic_fetch_add(&tr->tcp->live_conns, 1);
	nvmg_reactor_add_ticker(tr->r, &c->ticker);
	log_debug("%s: connected to port %u", c->peer, port->portid);
	tcp_conn_arm_recv(c);
}

void nvmg_tcp_reactor_drain(struct tcp_reactor *tr)
{
	tr->draining = true;
	for (struct tcp_conn *c = LIST_FIRST(&tr->conns), *next; c; c = next) {
		next = LIST_NEXT(c, link); /* closing may free c */
		if (c->closing)
			continue;
		/* No new commands; running ones finish and are answered. */
		shutdown(c->fd, SHUT_RD);
	}
}

void nvmg_tcp_reactor_close_port(struct tcp_reactor *tr, struct nvmg_port *port)
{
	for (struct tcp_conn *c = LIST_FIRST(&tr->conns), *next; c; c = next) {
		next = LIST_NEXT(c, link); /* closing may free c */
		if (c->sq.port == port)
			tcp_conn_close(c, "port removed");
	}
}

void nvmg_tcp_reactor_close_all(struct tcp_reactor *tr)
{
	tr->draining = true;
	for (struct tcp_conn *c = LIST_FIRST(&tr->conns), *next; c; c = next) {
		next = LIST_NEXT(c, link); /* closing may free c */
		tcp_conn_close(c, "shutting down");
	}
}

