/* nvmegate-perf I/O engine internals, shared by engine.c (issuing, the
 * send side, completions, the loop) and engine_recv.c (the receive side:
 * PDU parsing, R2T answers). One engine per thread; all of it runs on
 * that thread. */
#ifndef NVMG_PERF_ENGINE_H
#define NVMG_PERF_ENGINE_H

#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "tools/perf/perf.h"

#define RBUF_SIZE (256u * 1024)
#define DIRECT_MIN (16u * 1024)  /* receive payloads this big in place */
/* Bytes that follow a payload for sure when another PDU must come: every
 * PDU a target sends has a header of at least this size. */
#define PDU_HDR_MIN 24u
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

struct tls_chan;

struct ioq {
	struct engine *e;
	int fd;
	struct tls_chan *tls; /* the setup connection's session, or NULL */
	uint16_t qid;
	bool hdgst, ddgst;
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
	bool recv_again;   /* re-arm after this round's sends: see run_phase */
	bool direct;
	bool hdr_only;     /* large payloads flow: take headers alone */
	struct iovec riov[2];
	struct msghdr rmsg;

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

/* engine.c */
void q_fatal(struct ioq *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct io_uring_sqe *get_sqe(struct engine *e);
void iov_push(struct ioq *q, void *base, size_t len);
/* A command is over: account for it and start the slot's next I/O.
 * sf is the status field; detail, if set, says why a success is not. */
void q_complete(struct engine *e, struct ioq *q, struct slot *s, uint16_t sf, const char *detail);

/* engine_recv.c */
void q_arm_recv(struct ioq *q);
/* --poll on a clear-text connection: the engine's spin receives with a
 * non-blocking recvmsg (q_poll_recv) instead of an armed io_uring recv,
 * whose poll and task work cost the reply about a microsecond at QD1. */
bool q_polls_recv(const struct ioq *q);
void q_poll_recv(struct engine *e, struct ioq *q);
void q_recv_done(struct engine *e, struct ioq *q, int res);

#endif
