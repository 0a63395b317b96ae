/* io_uring event loop, one per thread. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "lib/log.h"
#include "lib/reactor.h"

#define RING_ENTRIES 1024
#define TICK_MS 500

/* Linux 6.9's io_uring NAPI busy poll; Debian 12's liburing 2.3 headers
 * predate it, the register opcode is all it takes. */
#ifndef IORING_REGISTER_NAPI
#define IORING_REGISTER_NAPI 27
struct io_uring_napi {
	uint32_t busy_poll_to; /* microseconds */
	uint8_t prefer_busy_poll;
	uint8_t pad[3];
	uint64_t resv;
};
#endif

struct nvmg_reactor {
	unsigned id;
	struct io_uring ring;
	pthread_t thread;
	sem_t started;
	int start_err;
	bool stop;

	int efd;
	uint64_t efd_val;
	struct nvmg_ev efd_ev;
	pthread_mutex_t mq_lock;
	STAILQ_HEAD(, nvmg_msg) mq; /* under mq_lock */

	/* Run newest first, as pushed. */
	SLIST_HEAD(, nvmg_defer) defers;

	TAILQ_HEAD(, nvmg_ticker) tickers;
	bool tick_armed;
	struct __kernel_timespec tick_ts;
	struct nvmg_ev tick_ev;

	struct nvmg_reactor_features feat;
	struct nvmg_bufpool pool;
	int8_t pool_fixed; /* fixed buffer table: 0 not yet asked, 1 yes, -1 cannot */
	uint32_t fixed_done, fixed_failed; /* arena chunks registered, refused */
	struct nvmg_bufring bufring;
	int8_t bufring_state; /* 0 not yet asked, 1 made, -1 cannot */

	/* Hybrid polling (nvmg_reactor_set_poll_us): the spin window now and
	 * its ceiling, in nanoseconds. */
	uint64_t poll_ns;
	atomic_uint_fast64_t poll_max_ns;
	/* The ring has IORING_SETUP_TASKRUN_FLAG: the spin peeks the rings
	 * and enters the kernel only when there is something to do. */
	bool taskrun_flag;

	/* Quiescent-state counter, written by this reactor only and read by
	 * nvmg_reactor_synchronize(): +2 every loop turn, odd while asleep or
	 * not running. Its own cache line, so that readers of the rest of the
	 * struct are not disturbed by the turns. */
	char qs_pad0[64];
	atomic_uint_fast64_t qs;
	char qs_pad1[64];
};

static __thread struct nvmg_reactor *self_reactor;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

struct nvmg_reactor *nvmg_reactor_self(void)
{
	return self_reactor;
}

unsigned nvmg_reactor_id(struct nvmg_reactor *r)
{
	return r->id;
}

struct nvmg_bufpool *nvmg_reactor_bufpool(struct nvmg_reactor *r)
{
	return &r->pool;
}

/* The arena is registered in chunks, each on first use: pinning it
 * faults its pages in, some 40 ms for all 32 MiB here, a stall no reactor
 * should take at once while it serves. */
#define FIXED_CHUNK_SHIFT 21
#define FIXED_CHUNKS (NVMG_BUF_ARENA_SIZE >> FIXED_CHUNK_SHIFT)
_Static_assert(FIXED_CHUNKS <= 32, "one bit per chunk");

int nvmg_reactor_fixed_buf(struct nvmg_reactor *r, const void *p, size_t len)
{
	unsigned char *base;
	size_t size, off;
	unsigned k;

	if (!len || !nvmg_bufpool_holds(&r->pool, p, len) ||
	    nvmg_bufpool_arena(&r->pool, (void **)&base, &size))
		return -1;
	off = (size_t)((const unsigned char *)p - base);
	k = (unsigned)(off >> FIXED_CHUNK_SHIFT);
	/* A buffer across two chunks takes the plain calls. */
	if ((off + len - 1) >> FIXED_CHUNK_SHIFT != k)
		return -1;
	if (!r->pool_fixed) {
		/* An empty table (Linux 5.19+), filled chunk by chunk. */
		r->pool_fixed = io_uring_register_buffers_sparse(&r->ring, FIXED_CHUNKS) ? -1 : 1;
		log_debug("reactor %u: buffer pool %s for fixed I/O", r->id,
			  r->pool_fixed > 0 ? "registers" : "cannot register");
	}
	if (r->pool_fixed < 0 || (r->fixed_failed & (1u << k)))
		return -1;
	if (!(r->fixed_done & (1u << k))) {
		struct iovec iov = { base + ((size_t)k << FIXED_CHUNK_SHIFT), (size_t)1 << FIXED_CHUNK_SHIFT };
		__u64 tag = 0;

		/* RLIMIT_MEMLOCK may refuse: that chunk stays plain. */
		if (io_uring_register_buffers_update_tag(&r->ring, k, &iov, &tag, 1) != 1) {
			r->fixed_failed |= 1u << k;
			return -1;
		}
		r->fixed_done |= 1u << k;
	}
	return (int)k;
}

struct nvmg_bufring *nvmg_reactor_bufring(struct nvmg_reactor *r, uint32_t nbufs, uint32_t buf_size)
{
	if (!r->bufring_state) {
		int ret = nvmg_bufring_init(&r->bufring, &r->ring, 0, nbufs, buf_size);

		r->bufring_state = ret ? -1 : 1;
		log_debug("reactor %u: provided-buffer ring %s", r->id, ret ? strerror(-ret) : "registered");
	}
	return r->bufring_state > 0 ? &r->bufring : NULL;
}

const struct nvmg_reactor_features *nvmg_reactor_features(struct nvmg_reactor *r)
{
	return &r->feat;
}

void nvmg_reactor_set_poll_us(struct nvmg_reactor *r, unsigned poll_us)
{
	atomic_store_explicit(&r->poll_max_ns, (uint64_t)poll_us * 1000, memory_order_relaxed);
}

struct io_uring_sqe *nvmg_reactor_sqe(struct nvmg_reactor *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

	while (!sqe) {
		/* SQ full: hand what we have to the kernel and retry. */
		io_uring_submit(&r->ring);
		sqe = io_uring_get_sqe(&r->ring);
	}
	return sqe;
}

void nvmg_reactor_defer(struct nvmg_reactor *r, struct nvmg_defer *d)
{
	if (d->queued)
		return;
	d->queued = true;
	SLIST_INSERT_HEAD(&r->defers, d, link);
}

static void tick_arm(struct nvmg_reactor *r)
{
	struct io_uring_sqe *sqe;

	if (r->tick_armed || TAILQ_EMPTY(&r->tickers))
		return;
	r->tick_ts.tv_sec = TICK_MS / 1000;
	r->tick_ts.tv_nsec = (TICK_MS % 1000) * 1000000L;
	sqe = nvmg_reactor_sqe(r);
	io_uring_prep_timeout(sqe, &r->tick_ts, 0, 0);
	io_uring_sqe_set_data(sqe, &r->tick_ev);
	r->tick_armed = true;
}

static void tick_done(struct nvmg_ev *ev, int res, uint32_t flags)
{
	struct nvmg_reactor *r = nvmg_container_of(ev, struct nvmg_reactor, tick_ev);
	struct nvmg_ticker *t, *next;
	uint64_t now = nvmg_now_ms();

	(void)res;
	(void)flags;
	r->tick_armed = false;
	for (t = TAILQ_FIRST(&r->tickers); t; t = next) {
		next = TAILQ_NEXT(t, link); /* fn may unregister itself */
		t->fn(t, now);
	}
	tick_arm(r);
}

void nvmg_reactor_add_ticker(struct nvmg_reactor *r, struct nvmg_ticker *t)
{
	/* At the head: one added by a ticker's fn waits for the next tick. */
	TAILQ_INSERT_HEAD(&r->tickers, t, link);
	tick_arm(r);
}

void nvmg_reactor_del_ticker(struct nvmg_reactor *r, struct nvmg_ticker *t)
{
	if (!t->link.tqe_prev)
		return;
	TAILQ_REMOVE(&r->tickers, t, link);
	t->link.tqe_prev = NULL;
	/* An armed tick with no tickers fires once more and is not re-armed. */
}

void nvmg_reactor_send(struct nvmg_reactor *r, struct nvmg_msg *m)
{
	uint64_t one = 1;

	pthread_mutex_lock(&r->mq_lock);
	STAILQ_INSERT_TAIL(&r->mq, m, link);
	pthread_mutex_unlock(&r->mq_lock);
	/* Queued is delivered: the reactor drains the queue on its next
	 * wake-up, so a failed kick must not make the caller free m. */
	if (write(r->efd, &one, sizeof(one)) != sizeof(one))
		log_err("reactor %u: eventfd write: %s", r->id, strerror(errno));
}

int nvmg_reactor_post(struct nvmg_reactor *r, void (*fn)(void *arg), void *arg)
{
	struct nvmg_msg *m = malloc(sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->fn = fn;
	m->arg = arg;
	m->heap = true;
	nvmg_reactor_send(r, m);
	return 0;
}

static void efd_arm(struct nvmg_reactor *r)
{
	struct io_uring_sqe *sqe = nvmg_reactor_sqe(r);

	io_uring_prep_read(sqe, r->efd, &r->efd_val, sizeof(r->efd_val), 0);
	io_uring_sqe_set_data(sqe, &r->efd_ev);
}

static void efd_done(struct nvmg_ev *ev, int res, uint32_t flags)
{
	struct nvmg_reactor *r = nvmg_container_of(ev, struct nvmg_reactor, efd_ev);
	struct nvmg_msg *m;
	bool heap;

	(void)flags;
	if (res < 0 && res != -EINTR && res != -EAGAIN)
		log_err("reactor %u: eventfd read: %s", r->id, strerror(-res));
	for (;;) {
		pthread_mutex_lock(&r->mq_lock);
		m = STAILQ_FIRST(&r->mq);
		if (m)
			STAILQ_REMOVE_HEAD(&r->mq, link);
		pthread_mutex_unlock(&r->mq_lock);
		if (!m)
			break;
		/* fn may free or re-send a caller-owned m: read heap first. */
		heap = m->heap;
		m->fn(m->arg);
		if (heap)
			free(m);
	}
	if (!r->stop)
		efd_arm(r);
}

static void run_defers(struct nvmg_reactor *r)
{
	struct nvmg_defer *d;

	/* A defer queued by fn runs in this same pass. */
	while ((d = SLIST_FIRST(&r->defers))) {
		SLIST_REMOVE_HEAD(&r->defers, link);
		d->queued = false;
		d->fn(d);
	}
}

static int ring_init(struct nvmg_reactor *r)
{
	/* Newest flags first; Linux 6.1 has DEFER_TASKRUN, older kernels fall
	 * back to fewer flags. Each flag only trims wake-ups. */
	static const unsigned flag_sets[] = {
#ifdef IORING_SETUP_DEFER_TASKRUN
		/* TASKRUN_FLAG: the kernel says in the SQ ring's flags when it
		 * has task work (socket data) for us, so the spin can watch
		 * memory instead of entering the kernel (wait_events). */
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
#endif
#ifdef IORING_SETUP_COOP_TASKRUN
		IORING_SETUP_COOP_TASKRUN,
#endif
		0,
	};
	struct io_uring_params p;
	int ret = -EINVAL;

	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = flag_sets[i];
		ret = io_uring_queue_init_params(RING_ENTRIES, &r->ring, &p);
		if (ret == 0)
			break;
	}
	if (ret < 0)
		return ret;
#ifdef IORING_SETUP_DEFER_TASKRUN
	r->feat.defer_taskrun = p.flags & IORING_SETUP_DEFER_TASKRUN;
#endif
	r->taskrun_flag = (p.flags & IORING_SETUP_TASKRUN_FLAG) && !nvmg_env_is("NVMEGATED_POLL_PEEK", "0");
	if (atomic_load_explicit(&r->poll_max_ns, memory_order_relaxed)) {
		/* The kernel then busy-polls the NIC's queue before sleeping
		 * (sockets on a device with NAPI; loopback has none). Older
		 * kernels say EINVAL: the reactor's own spin remains. */
		struct io_uring_napi napi = {
			.busy_poll_to = (uint32_t)(atomic_load_explicit(&r->poll_max_ns,
									 memory_order_relaxed) / 1000),
		};

		r->feat.napi = io_uring_register(r->ring.ring_fd, IORING_REGISTER_NAPI, &napi, 1) == 0;
	}
	log_debug("reactor %u: io_uring %s, NAPI busy poll %s, spin window up to %u us %s", r->id,
		  r->feat.defer_taskrun ? "DEFER_TASKRUN" : "without DEFER_TASKRUN",
		  r->feat.napi ? "registered" : "unavailable",
		  (unsigned)(atomic_load_explicit(&r->poll_max_ns, memory_order_relaxed) / 1000),
		  r->taskrun_flag ? "watching the ring's flags" : "entering the kernel each round");
	r->feat.ext_arg = p.features & IORING_FEAT_EXT_ARG;
	r->feat.nodrop = p.features & IORING_FEAT_NODROP;
	r->feat.fast_poll = p.features & IORING_FEAT_FAST_POLL;
	struct io_uring_probe *probe = io_uring_get_probe_ring(&r->ring);
	if (probe) {
		r->feat.fallocate = io_uring_opcode_supported(probe, IORING_OP_FALLOCATE);
		r->feat.send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
		io_uring_free_probe(probe);
	}
	return 0;
}

/* ---- quiescent states (see nvmg_reactor_synchronize) ---- */

/* Between two turns: nothing of the last turn is in use any more. The fence
 * pairs with the one in nvmg_reactor_synchronize: whoever saw this count
 * change knows this reactor sees its stores from here on. */
static void qs_turn(struct nvmg_reactor *r, uint64_t add)
{
	atomic_store_explicit(&r->qs, atomic_load_explicit(&r->qs, memory_order_relaxed) + add,
			      memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
}

static void qs_sleep(struct nvmg_reactor *r)
{
	atomic_store_explicit(&r->qs, atomic_load_explicit(&r->qs, memory_order_relaxed) + 1,
			      memory_order_release);
}

void nvmg_reactor_synchronize(struct nvmg_reactor *const *rs, unsigned n)
{
	uint64_t snap[n ? n : 1];
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 20000 };
	bool all;

	atomic_thread_fence(memory_order_seq_cst);
	for (unsigned i = 0; i < n; i++)
		snap[i] = rs[i] ? atomic_load_explicit(&rs[i]->qs, memory_order_relaxed) : 1;
	do {
		all = true;
		for (unsigned i = 0; i < n; i++) {
			/* Asleep (odd), or moved on since the snapshot. */
			if ((snap[i] & 1) || rs[i] == self_reactor ||
			    atomic_load_explicit(&rs[i]->qs, memory_order_relaxed) != snap[i])
				continue;
			all = false;
		}
		if (!all)
			nanosleep(&ts, NULL);
	} while (!all);
	atomic_thread_fence(memory_order_seq_cst);
}

/* ---- the loop ---- */

/* The window follows the gaps between a reactor's turns: twice the last
 * gap (plus room for the peer's own turn-around) when it is within the
 * ceiling, decaying slowly towards that; halving per gap beyond the
 * ceiling, to nothing, so an idle reactor sleeps at once. */
static void poll_adapt(struct nvmg_reactor *r, uint64_t gap_ns)
{
	uint64_t max = atomic_load_explicit(&r->poll_max_ns, memory_order_relaxed), target;

	if (!max) {
		r->poll_ns = 0;
		return;
	}
	if (gap_ns > max) {
		r->poll_ns /= 2;
		if (r->poll_ns < 1000)
			r->poll_ns = 0;
		return;
	}
	target = 2 * gap_ns + 2000;
	if (target > max)
		target = max;
	if (target >= r->poll_ns)
		r->poll_ns = target;
	else
		r->poll_ns -= (r->poll_ns - target) / 8;
}

/* Work for io_uring_enter: SQEs to submit, or task work (completions
 * DEFER_TASKRUN holds until we enter) the kernel flagged in the SQ ring. */
static bool ring_wants_enter(struct nvmg_reactor *r)
{
	return io_uring_sq_ready(&r->ring) ||
	       (IO_URING_READ_ONCE(*r->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW));
}

/* Submit, then have CQEs: by spinning on the ring for the window, else by
 * sleeping in io_uring_enter. With TASKRUN_FLAG the spin reads the rings'
 * shared memory and enters the kernel (without waiting) only when the
 * kernel flags task work or SQEs wait, some 2 syscalls per request
 * instead of one per spin round; without it every round enters, as only
 * io_uring_enter runs DEFER_TASKRUN's task work. */
static void wait_events(struct nvmg_reactor *r)
{
	uint64_t start = nvmg_now_ns(), now = start;
	int ret;

	if (r->poll_ns) {
		bool enter = true;

		for (;;) {
			if (enter) {
				ret = io_uring_submit_and_get_events(&r->ring);
				if (ret < 0 && ret != -EINTR && ret != -EBUSY && ret != -EAGAIN)
					log_err("reactor %u: io_uring_enter: %s", r->id, strerror(-ret));
			}
			if (io_uring_cq_ready(&r->ring)) {
				poll_adapt(r, nvmg_now_ns() - start);
				return;
			}
			now = nvmg_now_ns();
			if (now - start >= r->poll_ns || r->stop)
				break;
			qs_turn(r, 2);
			if (r->taskrun_flag) {
				/* A few reads of the flags between clock reads. */
				for (int i = 0; i < 16 && !(enter = ring_wants_enter(r)) &&
						!io_uring_cq_ready(&r->ring); i++)
					cpu_relax();
			}
		}
	}
	qs_sleep(r);
	ret = io_uring_submit_and_wait(&r->ring, 1);
	qs_turn(r, 1);
	if (ret < 0 && ret != -EINTR && ret != -EBUSY && ret != -ETIME)
		log_err("reactor %u: io_uring_submit_and_wait: %s", r->id, strerror(-ret));
	poll_adapt(r, nvmg_now_ns() - start);
}

static void *reactor_main(void *arg)
{
	struct nvmg_reactor *r = arg;
	struct io_uring_cqe *cqe;
	unsigned head, n;

	self_reactor = r;
	r->start_err = ring_init(r);
	sem_post(&r->started);
	if (r->start_err)
		return NULL;
	efd_arm(r);
	qs_turn(r, 1); /* running */
	while (!r->stop) {
		run_defers(r);
		wait_events(r);
		n = 0;
		io_uring_for_each_cqe(&r->ring, head, cqe) {
			struct nvmg_ev *ev = io_uring_cqe_get_data(cqe);

			n++;
			if (ev)
				ev->fn(ev, cqe->res, cqe->flags);
		}
		io_uring_cq_advance(&r->ring, n);
		qs_turn(r, 2);
	}
	run_defers(r);
	qs_sleep(r); /* stopped: quiescent for good */
	return NULL;
}

struct nvmg_reactor *nvmg_reactor_create(unsigned id, int *err)
{
	struct nvmg_reactor *r = calloc(1, sizeof(*r));

	if (!r) {
		*err = -ENOMEM;
		return NULL;
	}
	r->id = id;
	atomic_init(&r->poll_max_ns, NVMG_REACTOR_POLL_US_DEFAULT * 1000ull);
	atomic_init(&r->qs, 1); /* not running: quiescent */
	r->efd = eventfd(0, EFD_CLOEXEC);
	if (r->efd < 0) {
		*err = -errno;
		free(r);
		return NULL;
	}
	pthread_mutex_init(&r->mq_lock, NULL);
	sem_init(&r->started, 0, 0);
	r->efd_ev.fn = efd_done;
	r->tick_ev.fn = tick_done;
	STAILQ_INIT(&r->mq);
	SLIST_INIT(&r->defers);
	TAILQ_INIT(&r->tickers);
	return r;
}

int nvmg_reactor_start(struct nvmg_reactor *r)
{
	char name[16];
	int ret = pthread_create(&r->thread, NULL, reactor_main, r);

	if (ret)
		return -ret;
	/* Named so top -H, gdb and the watchdog test can tell them apart. */
	snprintf(name, sizeof(name), "nvmg-reactor%u", r->id);
	pthread_setname_np(r->thread, name);
	sem_wait(&r->started);
	if (r->start_err) {
		pthread_join(r->thread, NULL);
		r->thread = 0;
		return r->start_err;
	}
	return 0;
}

static void stop_msg(void *arg)
{
	struct nvmg_reactor *r = arg;

	r->stop = true;
}

void nvmg_reactor_stop(struct nvmg_reactor *r)
{
	if (!r->thread)
		return;
	if (nvmg_reactor_post(r, stop_msg, r) == 0)
		pthread_join(r->thread, NULL);
	r->thread = 0;
}

void nvmg_reactor_destroy(struct nvmg_reactor *r)
{
	struct nvmg_msg *m;

	if (!r)
		return;
	if (!r->start_err && r->ring.ring_fd > 0) {
		nvmg_bufring_fini(&r->bufring, &r->ring);
		io_uring_queue_exit(&r->ring);
	}
	while ((m = STAILQ_FIRST(&r->mq))) {
		STAILQ_REMOVE_HEAD(&r->mq, link);
		if (m->heap)
			free(m);
	}
	nvmg_bufpool_drain(&r->pool);
	close(r->efd);
	pthread_mutex_destroy(&r->mq_lock);
	sem_destroy(&r->started);
	free(r);
}

int nvmg_reactor_probe(struct nvmg_reactor_features *f)
{
	struct io_uring ring;
	struct io_uring_probe *probe;
	int ret = io_uring_queue_init(8, &ring, 0);

	memset(f, 0, sizeof(*f));
	if (ret < 0)
		return ret;
	f->ext_arg = ring.features & IORING_FEAT_EXT_ARG;
	f->nodrop = ring.features & IORING_FEAT_NODROP;
	f->fast_poll = ring.features & IORING_FEAT_FAST_POLL;
	probe = io_uring_get_probe_ring(&ring);
	if (probe) {
		f->fallocate = io_uring_opcode_supported(probe, IORING_OP_FALLOCATE);
		f->send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
		io_uring_free_probe(probe);
	}
	io_uring_queue_exit(&ring);
	return 0;
}
