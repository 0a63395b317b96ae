/* One NVMe/TCP connection: its state and command slots, shared by the
 * files that run it. tcp.c owns the life cycle (creation, command slots,
 * close, free), tcp_recv.c the receive side (PDU parsing, data into
 * command buffers), tcp_send.c the send side (the send queue, the PDUs
 * the target builds). Everything here runs on the connection's reactor. */
#ifndef NVMG_TCP_CONN_H
#define NVMG_TCP_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>
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
	STAILQ_ENTRY(send_item) link; /* send_q, then zc_hold */
	struct iovec iov[5];
	int niov;
	int first; /* first iov not fully sent */
	bool linked;
	/* Some of its bytes went by zero-copy send zc_seq (the last such):
	 * its buffers stay put until that send's notification. */
	bool zc_used;
	bool held; /* sent, on zc_hold until then */
	uint32_t zc_seq;
};

/* Zero-copy sends (IORING_OP_SENDMSG_ZC) of a batch holding a payload of
 * ZC_MIN bytes or more: one in flight at a time so that the stream keeps
 * its order, a few more waiting for their notification (the kernel is
 * done with the pages). */
#define ZC_MIN (16u << 10)
#define ZC_SLOTS 4

struct zc_op {
	struct nvmg_ev ev; /* both CQEs: the result, then the notification */
	struct tcp_conn *conn;
	uint32_t seq;
	bool result_pending, notif_pending;
	struct msghdr msg;
	struct iovec iov[MAX_IOV];
};

enum zc_mode {
	ZC_OFF,   /* plain sendmsg only: no SEND_ZC, or turned off */
	ZC_AUTO,  /* zero copy until the kernel says it copies anyway */
	ZC_ALWAYS /* zero copy even where the kernel copies (tests) */
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
	SLIST_ENTRY(tcp_cmd) free_link;
	struct send_item send;
	struct pdu_hd data_pdu; /* the C2HData or the R2T it sends */
	uint32_t ddgst;
	struct pdu_rsp rsp;
};

struct tcp_conn {
	struct nvmg_sq sq; /* first: the core's queue */
	struct tcp_reactor *tr;
	struct nvmg_reactor *r;
	LIST_ENTRY(tcp_conn) link; /* in tr->conns */
	int fd;
	char peer[64];
	enum conn_state state;
	bool hdgst, ddgst;
	uint32_t c2h_align;  /* host PDU data alignment, from ICReq HPDA */
	bool rx_stopped;     /* no more PDUs will be read */
	bool closing;        /* socket shut down, freeing when idle */
	bool recv_inflight, poll_inflight, recv_direct;
	/* Multishot receive (tcp_recv.c): the receive in flight is one, it
	 * is being cancelled, the ring ran dry (the next receive is a
	 * single one into rbuf). */
	bool recv_mshot, mshot_cancel, mshot_nobufs;
	struct tcp_ho *ho;   /* place in the half-open pool until Connect */
	unsigned hold;       /* callbacks on the stack: don't free yet */
	uint64_t accept_ms;
	uint64_t deadline_ms;
	unsigned nr_busy;    /* command slots in use */
	/* TLS: the session once the host started one; tls_peek while the
	 * first bytes of a TLS port's connection are awaited. */
	struct tcp_tls *tls;
	bool tls_peek;

	struct nvmg_ev recv_ev, poll_ev;
	struct nvmg_defer flush_defer;
	struct nvmg_ticker ticker;

	/* receive: rbuf is the single-shot receives' buffer, and under
	 * multishot holds only a header split across provided buffers. */
	uint8_t *rbuf;
	uint32_t rlen, roff;
	enum rx_state rx_state;
	enum rx_kind rx_kind;
	const uint8_t *hdr;  /* the PDU header being handled, where it was received */
	uint32_t hdr_total;  /* header bytes incl. digest */
	uint32_t pad_left;
	uint8_t *rx_dst;     /* NULL: discard */
	uint32_t rx_len, rx_done;
	uint32_t rx_crc;
	uint8_t ddgst_buf[4];
	uint32_t ddgst_got;
	struct tcp_cmd *rx_cmd;

	/* send */
	STAILQ_HEAD(, send_item) send_q;
	struct send_item ctl;   /* ICResp */
	uint8_t ctl_buf[sizeof(struct nvmg_tcp_icresp)];
	struct send_item term;  /* C2HTermReq: its own item, the ICResp may still be queued */
	uint8_t term_buf[sizeof(struct nvmg_tcp_term) + NVMG_TCP_TERM_MAX_DATA];

	/* zero-copy send (tcp_send.c) */
	enum zc_mode zc;
	bool zc_report;         /* ask for IORING_SEND_ZC_REPORT_USAGE (6.2+) */
	bool zc_sending;        /* a result is pending: the rest waits */
	bool zc_wait_slot;      /* the queue waits for a notification */
	unsigned zc_busy;       /* slots with a result or notification pending */
	unsigned zc_notifs, zc_copied; /* of the first notifications (ZC_AUTO) */
	uint32_t zc_seq;        /* the next send's */
	STAILQ_HEAD(, send_item) zc_hold; /* sent items waiting for notifications */
	struct zc_op zc_ops[ZC_SLOTS];

	struct tcp_cmd cmds[NR_CMDS];
	SLIST_HEAD(, tcp_cmd) free_cmds;
};

/* tcp.c: life cycle */
struct tcp_cmd *tcp_cmd_alloc(struct tcp_conn *c);
void tcp_cmd_release(struct tcp_cmd *cmd);
void tcp_conn_close(struct tcp_conn *c, const char *why);
void tcp_conn_maybe_free(struct tcp_conn *c);
/* After Connect succeeds the socket stops counting as half-open. */
void tcp_conn_check_live(struct tcp_conn *c);
/* ICReq arrived or the TLS handshake completed (tcp_halfopen.h). */
void tcp_conn_progress(struct tcp_conn *c);

/* tcp_recv.c: receive */
void tcp_recv_done(struct nvmg_ev *ev, int res, uint32_t flags);
void tcp_conn_arm_recv(struct tcp_conn *c);

/* tcp_send.c: send */
void tcp_send_enqueue(struct tcp_conn *c, struct send_item *it);
/* Takes an item off the queue (a command released before its PDUs left). */
void tcp_send_unlink(struct tcp_conn *c, struct send_item *it);
void tcp_send_drop_all(struct tcp_conn *c);
/* Before a new connection's first send: the zero-copy mode its reactor
 * and the environment allow (NVMEGATED_SEND_ZC). */
void tcp_send_init(struct tcp_conn *c);
void tcp_conn_flush(struct nvmg_defer *d);
void tcp_poll_done(struct nvmg_ev *ev, int res, uint32_t flags);
/* The core's completion path: C2HData (for reads) then CapsuleResp. */
void tcp_queue_response(struct nvmg_req *req);
/* Asks the host for a write's data. */
void tcp_queue_r2t(struct tcp_cmd *cmd);
/* Fatal error: C2HTermReq echoing the offending header, then close. */
void tcp_conn_fatal(struct tcp_conn *c, uint16_t fes, uint32_t fei, const void *hdr, size_t hdr_len);

#endif
