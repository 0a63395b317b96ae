/* nvmegate-perf: an NVMe/TCP initiator load generator.
 *
 * main.c    command line, controller bring-up, threads, report
 * conn.c    blocking setup path: TCP connect, ICReq/ICResp, Connect,
 *           Property Get/Set, Identify, Keep Alive, status strings
 * engine.c  per-thread io_uring I/O engine (one ring per thread, many
 *           queues per ring, preallocated per-slot buffers): issuing,
 *           sending, completions, the loop; engine.h its internals
 * engine_recv.c  the engine's receive side: PDU parsing, R2T answers
 * hist.c    log-linear latency histogram
 * verify.c  self-describing data pattern and unit generation tracking
 * The NVMe/TCP framing (checks, digests, headers) is the target's own,
 * net/tcp_frame.h. */
#ifndef NVMG_PERF_H
#define NVMG_PERF_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "nvme/spec.h"
#include "net/tcp_pdu.h"

#define PERF_NAME "nvmegate-perf"
#define PERF_NQN_MAX 223 /* NVMe Base 2.0: NQNs are at most 223 bytes */

/* ---- options ---------------------------------------------------------- */

enum perf_rw { RW_READ, RW_WRITE, RW_MIXED };

struct perf_opts {
	const char *addr;
	const char *port;
	const char *subnqn;
	char hostnqn[NVME_NQN_LENGTH];
	uint8_t hostid[16];
	uint32_t nsid;
	unsigned queues;
	unsigned qd;
	unsigned threads;
	uint32_t bs;
	const char *workload;
	enum perf_rw rw;
	bool random;
	unsigned read_pct;
	double time_s;
	double ramp_s;
	double io_timeout_s;
	bool verify;
	bool prefill;
	bool hdgst, ddgst;
	uint64_t size;
	bool json;
	bool poll;        /* busy-poll the ring instead of sleeping */
	uint32_t kato_ms;
	uint32_t seed;
	bool seed_set;
	/* --tls --psk KEY: TLS 1.3 with the PSK libnvme derives from KEY for
	 * hostnqn/subnqn, identity version 1 unless --tls-identity-v0 */
	bool tls, tls_identity_v0, tls_rfc8446, tls_openssl_records;
	const char *psk;
};

/* ---- blocking setup connection (conn.c) ------------------------------ */

struct tls_chan;

struct perf_conn {
	int fd;
	struct tls_chan *tls; /* NULL: plain TCP */
	uint16_t qid;
	bool hdgst, ddgst;
	uint32_t maxh2cdata;
	uint16_t next_cid;
};

/* Everything learned from the controller during bring-up. */
struct perf_ctrl {
	struct perf_conn admin;
	uint16_t cntlid;
	uint64_t cap;
	uint32_t incap_max;   /* in-capsule data bytes on I/O queues */
	uint64_t mdts_bytes;  /* 0: no limit */
	uint32_t lba_size;
	uint64_t nsze;
	char subnqn[NVME_NQN_LENGTH + 1];
	char mn[41];
};

void perf_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void perf_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

const char *perf_status_str(uint16_t sf, char *buf, size_t len);

int conn_open(struct perf_conn *c, const struct perf_opts *o, uint16_t qid);
void conn_close(struct perf_conn *c);
/* Clears setup timeouts; the fd then belongs to an io_uring. */
int conn_handoff(struct perf_conn *c);
int conn_fabrics_connect(struct perf_conn *c, const struct perf_opts *o,
			 uint16_t qid, uint16_t sqsize, uint16_t cntlid,
			 uint32_t kato, uint16_t *cntlid_out);
/* Runs one command to completion. Data either goes in-capsule (wdata) or
 * comes back in C2HData PDUs (rdata). Returns -1 on transport failure,
 * else the CQE status field (0 = success); *cqe gets the CQE. */
int conn_sync_cmd(struct perf_conn *c, struct nvmg_sqe *sqe,
		  const void *wdata, uint32_t wlen, void *rdata, uint32_t rlen,
		  struct nvmg_cqe *cqe, const char *what);
int conn_prop_get(struct perf_conn *c, uint32_t off, bool eight, uint64_t *val);
int conn_prop_set(struct perf_conn *c, uint32_t off, uint64_t val);
int conn_keep_alive(struct perf_conn *c);

/* ---- histogram (hist.c, hist.h) ------------------------------------- */

#include "tools/perf/hist.h"

/* ---- verify (verify.c) ------------------------------------------------ */

#define VSTATE_LOCK 0x80000000u
#define VSTATE_GEN_MASK 0x7fffffffu

enum vresult { V_OK, V_UNWRITTEN, V_MISMATCH };

void verify_fill(uint8_t *buf, uint32_t len, uint32_t lba_size, uint64_t slba,
		 uint32_t gen, uint32_t seed);
/* gen 0: the block's generation is unknown (not written by this run):
 * accept any self-consistent block for this LBA (and seed if seed != 0),
 * and report an all-zero block as V_UNWRITTEN. */
enum vresult verify_block(const uint8_t *blk, uint32_t lba_size, uint64_t lba,
			  uint32_t gen, uint32_t seed, char *why, size_t whylen);

/* ---- engine (engine.c) ------------------------------------------------ */

struct perf_stats {
	uint64_t ios[2];   /* [0] read, [1] write, completed in the window */
	uint64_t bytes[2];
	struct perf_hist hist[2];
	uint64_t errors;   /* commands completed with a non-zero status */
	uint64_t verified; /* blocks compared */
	uint64_t verify_errors;
	uint64_t unwritten;
	double runtime_s;
};

/* Shared by all threads. */
struct perf_shared {
	const struct perf_opts *o;
	const struct perf_ctrl *ctrl;
	uint64_t units;        /* bs-sized units in the LBA range */
	uint32_t lbas_per_unit;
	_Atomic uint32_t *ustate; /* verify: per-unit LOCK | generation */
	_Atomic uint64_t prefill_next;
	atomic_bool stop;      /* fatal error somewhere, or a signal */
	atomic_int failed;     /* a fatal (connection/protocol) error happened */
	atomic_uint threads_done;
	_Atomic uint64_t err_reports; /* limits per-I/O error messages */
	pthread_barrier_t *barrier;         /* threads + main, before I/O */
	pthread_barrier_t *prefill_barrier; /* threads, after --prefill */
};

struct perf_thread {
	struct perf_shared *sh;
	unsigned idx;
	unsigned nq;
	struct perf_conn *conns; /* already connected I/O queues */
	unsigned *gq;            /* global queue index of each */
	pthread_t tid;
	struct perf_stats st;
	int rc;
};

void *engine_thread(void *arg);

static inline uint64_t perf_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
