/* io_uring event loop, one per thread. */
#include <errno.h>
#include <pthread.h>
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
};

static __thread struct nvmg_reactor *self_reactor;

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

const struct nvmg_reactor_features *nvmg_reactor_features(struct nvmg_reactor *r)
{
	return &r->feat;
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
	while (!r->stop) {
		run_defers(r);
		int ret = io_uring_submit_and_wait(&r->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EBUSY && ret != -ETIME) {
			log_err("reactor %u: io_uring_submit_and_wait: %s", r->id, strerror(-ret));
			continue;
		}
		n = 0;
		io_uring_for_each_cqe(&r->ring, head, cqe) {
			struct nvmg_ev *ev = io_uring_cqe_get_data(cqe);

			n++;
			if (ev)
				ev->fn(ev, cqe->res, cqe->flags);
		}
		io_uring_cq_advance(&r->ring, n);
	}
	run_defers(r);
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
	if (!r->start_err && r->ring.ring_fd > 0)
		io_uring_queue_exit(&r->ring);
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
