/* Reactors: one io_uring event loop per thread. Everything a reactor owns
 * (connections, their requests, file I/O) is touched only by its thread;
 * other threads talk to it with nvmg_reactor_post(). */
#ifndef NVMG_REACTOR_H
#define NVMG_REACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <liburing.h>
#include "lib/bufpool.h"
#include "lib/bufring.h"
#include "lib/clock.h"
#include "lib/util.h"

struct nvmg_reactor;

/* Every SQE's user_data points to one of these; the loop calls fn with the
 * CQE's result and flags. */
struct nvmg_ev {
	void (*fn)(struct nvmg_ev *ev, int res, uint32_t cqe_flags);
};

/* Work run at the end of the current loop turn, before the ring is
 * submitted: this is where transports flush their batched sends. */
struct nvmg_defer {
	void (*fn)(struct nvmg_defer *d);
	bool queued;
	SLIST_ENTRY(nvmg_defer) link; /* the reactor's */
};

/* Called about every 500 ms while registered; arming the tick only while
 * tickers exist keeps an idle daemon asleep. */
struct nvmg_ticker {
	void (*fn)(struct nvmg_ticker *t, uint64_t now_ms);
	TAILQ_ENTRY(nvmg_ticker) link; /* the reactor's; tqe_prev NULL: not registered */
};

struct nvmg_reactor_features {
	bool ext_arg;    /* IORING_FEAT_EXT_ARG */
	bool nodrop;     /* IORING_FEAT_NODROP */
	bool fast_poll;  /* IORING_FEAT_FAST_POLL */
	bool fallocate;  /* IORING_OP_FALLOCATE supported */
	bool send_zc;    /* IORING_OP_SEND_ZC (6.0+) */
	bool defer_taskrun; /* the ring has IORING_SETUP_DEFER_TASKRUN (6.1+) */
	bool napi;       /* IORING_REGISTER_NAPI accepted (6.9+) */
};

/* Hybrid polling: after a turn that had work, a reactor keeps reaping its
 * ring without sleeping for an adaptive window (at most poll_us), so a
 * request arriving soon after the last one pays no wake-up; an idle reactor
 * sleeps at once. 0 disables. Any thread, any time (a reload): the next
 * wait uses it; NAPI busy polling keeps the value the ring started with. */
#define NVMG_REACTOR_POLL_US_DEFAULT 50
void nvmg_reactor_set_poll_us(struct nvmg_reactor *r, unsigned poll_us);

struct io_uring_sqe *nvmg_reactor_sqe(struct nvmg_reactor *r);
void nvmg_reactor_defer(struct nvmg_reactor *r, struct nvmg_defer *d);
void nvmg_reactor_add_ticker(struct nvmg_reactor *r, struct nvmg_ticker *t);
/* Also from within t->fn; a no-op for a zeroed or removed ticker. */
void nvmg_reactor_del_ticker(struct nvmg_reactor *r, struct nvmg_ticker *t);
/* A message to another reactor's thread. */
struct nvmg_msg {
	void (*fn)(void *arg);
	void *arg;
	bool heap; /* allocated by nvmg_reactor_post, freed after fn */
	STAILQ_ENTRY(nvmg_msg) link; /* the reactor's, under its lock */
};

/* Thread-safe: run fn(arg) on r's thread. Returns 0 or -errno. */
int nvmg_reactor_post(struct nvmg_reactor *r, void (*fn)(void *arg), void *arg);
/* Thread-safe and cannot fail: run m->fn(m->arg) on r's thread; m is the
 * caller's (heap false) and may be sent again from within fn. Messages
 * still queued when r is destroyed are dropped. */
void nvmg_reactor_send(struct nvmg_reactor *r, struct nvmg_msg *m);
const struct nvmg_reactor_features *nvmg_reactor_features(struct nvmg_reactor *r);
unsigned nvmg_reactor_id(struct nvmg_reactor *r);
/* The reactor's data buffer pool (its thread only). */
struct nvmg_bufpool *nvmg_reactor_bufpool(struct nvmg_reactor *r);
/* The registered buffer index (for io_uring's *_FIXED operations) that
 * holds [p, p + len), or -1. The pool's arena is registered with the
 * ring a 2 MiB chunk at a time as buffers in it are asked for, pinning
 * it, where the kernel (5.19+) and RLIMIT_MEMLOCK allow; a reactor that
 * never asks pins nothing. Its thread only. */
int nvmg_reactor_fixed_buf(struct nvmg_reactor *r, const void *p, size_t len);
/* The reactor's provided-buffer ring (group 0), made on the first call
 * with these sizes (later calls get the same ring), for receives that
 * select a buffer; NULL where the kernel has none (before 5.19) or memory
 * is short. Its thread only. */
struct nvmg_bufring *nvmg_reactor_bufring(struct nvmg_reactor *r, uint32_t nbufs, uint32_t buf_size);
/* The reactor running on the calling thread, or NULL. */
struct nvmg_reactor *nvmg_reactor_self(void);

/* Process-level management (lib/reactor.c). */
struct nvmg_reactor *nvmg_reactor_create(unsigned id, int *err);
int nvmg_reactor_start(struct nvmg_reactor *r);
void nvmg_reactor_stop(struct nvmg_reactor *r); /* ask to exit; join */
void nvmg_reactor_destroy(struct nvmg_reactor *r);
int nvmg_reactor_probe(struct nvmg_reactor_features *f); /* probe io_uring */

/* Quiescent states, for data read without locks on the reactors (the
 * namespace tables, nvme/subsys.c): a reactor passes one between two loop
 * turns and while it sleeps, never inside an event's callback. Returns once
 * each of rs[0..n) has passed one since the call began (the calling
 * reactor, if any, counts as passing). Any thread; it may wait a loop turn.
 * Pair a writer's store that readers must see with this: readers on a
 * reactor see the store from their next turn on. */
void nvmg_reactor_synchronize(struct nvmg_reactor *const *rs, unsigned n);

#endif
