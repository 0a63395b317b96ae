/* Controllers: creation on Connect, queues, properties, keep alive and
 * teardown. A controller's queues may live on different reactors, so its
 * state is under ctrl->lock and teardown travels as messages; the I/O path
 * reads only ctrl->io_ready, an atomic copy of "ready". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "nvme/auth.h"
#include "nvme/core.h"

#define NVMG_CAP_TO 20 /* CAP.TO in 500 ms units: 10 s */

/* With c->lock held, after CSTS or dead changed: what nvmg_parse_io reads
 * without taking the lock on every command. */
static void ctrl_update_ready(struct nvmg_ctrl *c)
{
	atomic_store_explicit(&c->io_ready,
			      (c->csts & (NVME_CSTS_RDY_MASK << NVME_CSTS_RDY_SHIFT)) && !c->dead,
			      memory_order_release);
}

void nvmg_ctrl_get(struct nvmg_ctrl *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void nvmg_ctrl_put(struct nvmg_ctrl *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->resv_log);
	free(c);
}

static bool cntlid_in_use(struct nvmg_subsys *s, uint16_t id)
{
	for (size_t i = 0; i < s->nr_ctrls; i++)
		if (s->ctrls[i]->cntlid == id)
			return true;
	return false;
}

struct nvmg_ctrl *nvmg_ctrl_create(struct nvmg_target *tgt, struct nvmg_subsys *s,
				   struct nvmg_port *port, const struct nvmf_connect_data *d,
				   uint32_t kato_ms, uint16_t *status)
{
	struct nvmg_ctrl *c = calloc(1, sizeof(*c));
	unsigned range = (unsigned)s->cntlid_max - s->cntlid_min + 1;
	char host[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)];
	bool found = false;

	if (!c) {
		*status = NVMG_SC_GENERIC(NVME_SC_INTERNAL);
		return NULL;
	}
	atomic_init(&c->refs, 2); /* the subsystem's list and the admin queue */
	c->tgt = tgt;
	c->subsys = s;
	c->port = port;
	memcpy(c->hostnqn, d->hostnqn, sizeof(c->hostnqn));
	c->hostnqn[sizeof(c->hostnqn) - 1] = '\0';
	memcpy(c->hostid, d->hostid, sizeof(c->hostid));
	c->kato_ms = kato_ms;
	c->last_keepalive_ms = nvmg_now_ms();
	c->nr_io_queues = NVMG_MAX_IO_QUEUES;
	c->vwc_enabled = true;
	pthread_mutex_init(&c->lock, NULL);

	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < range && !found; i++) {
		uint16_t id = s->next_cntlid;

		s->next_cntlid = id >= s->cntlid_max ? s->cntlid_min : (uint16_t)(id + 1);
		if (!cntlid_in_use(s, id)) {
			c->cntlid = id;
			found = true;
		}
	}
	if (found && s->nr_ctrls == s->cap_ctrls) {
		size_t cap = s->cap_ctrls ? s->cap_ctrls * 2 : 8;
		struct nvmg_ctrl **n = realloc(s->ctrls, cap * sizeof(*n));

		if (n) {
			s->ctrls = n;
			s->cap_ctrls = cap;
		} else {
			found = false;
		}
	}
	if (found)
		s->ctrls[s->nr_ctrls++] = c;
	pthread_mutex_unlock(&s->lock);
	if (!found) {
		*status = NVMG_SC_CMD(NVME_SC_CONNECT_CTRL_BUSY);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return NULL;
	}
	/* Once per controller: an empty host NQN can only match "any host". */
	log_info("controller %u created on %s for host %s (kato %u ms)", c->cntlid, s->nqn,
		 c->hostnqn[0] ? nvmg_escape(host, sizeof(host), c->hostnqn, sizeof(c->hostnqn))
			       : "\"\" (an empty host NQN: allowed as any host)", kato_ms);
	return c;
}

struct nvmg_ctrl *nvmg_ctrl_find(struct nvmg_subsys *s, uint16_t cntlid)
{
	struct nvmg_ctrl *c = NULL;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_ctrls; i++) {
		if (s->ctrls[i]->cntlid == cntlid) {
			c = s->ctrls[i];
			nvmg_ctrl_get(c);
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return c;
}

uint16_t nvmg_ctrl_install_sq(struct nvmg_ctrl *c, struct nvmg_sq *sq)
{
	uint16_t status = 0;

	pthread_mutex_lock(&c->lock);
	if (c->dead)
		status = NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR;
	else if (sq->qid > c->nr_io_queues || c->sqs[sq->qid])
		status = NVMG_SC_CMD(NVME_SC_CONNECT_INVALID_PARAM) | NVME_SC_DNR;
	else if (sq->qid && !(c->csts & (NVME_CSTS_RDY_MASK << NVME_CSTS_RDY_SHIFT)))
		status = NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR;
	else {
		c->sqs[sq->qid] = sq;
		sq->kill_gen = c->kill_gen;
		sq->connected_ms = nvmg_now_ms();
	}
	pthread_mutex_unlock(&c->lock);
	if (!status)
		sq->ctrl = c;
	return status;
}

static void subsys_remove_ctrl(struct nvmg_ctrl *c)
{
	struct nvmg_subsys *s = c->subsys;
	bool found = false;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_ctrls; i++) {
		if (s->ctrls[i] == c) {
			s->ctrls[i] = s->ctrls[--s->nr_ctrls];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (found)
		nvmg_ctrl_put(c);
}

void nvmg_ctrl_remove_sq(struct nvmg_ctrl *c, struct nvmg_sq *sq)
{
	pthread_mutex_lock(&c->lock);
	if (c->sqs[sq->qid] == sq)
		c->sqs[sq->qid] = NULL;
	pthread_mutex_unlock(&c->lock);
	nvmg_auth_queue_free(sq); /* its deadline ticker and secrets */
	sq->ctrl = NULL;
	nvmg_target_host_queue_put(c->tgt, c->hostnqn);
	/* Without its admin queue a controller is gone. */
	if (sq->qid == 0)
		nvmg_ctrl_kill(c, false, "admin queue closed");
	nvmg_ctrl_put(c);
}

struct kill_msg {
	struct nvmg_ctrl *ctrl;
	uint64_t gen;
	uint16_t qid;
};

static void kill_queue_msg(void *arg)
{
	struct kill_msg *m = arg;
	struct nvmg_ctrl *c = m->ctrl;
	struct nvmg_sq *sq;

	pthread_mutex_lock(&c->lock);
	sq = c->sqs[m->qid];
	/* Only this reactor frees its queues, so one found here is alive; a
	 * queue installed after this kill (same QID, after a reset) is spared. */
	if (sq && (sq->reactor != nvmg_reactor_self() || sq->kill_gen >= m->gen))
		sq = NULL;
	pthread_mutex_unlock(&c->lock);
	if (sq && !sq->closing)
		sq->transport->kill_queue(sq);
	nvmg_ctrl_put(c);
	free(m);
}

void nvmg_ctrl_kill(struct nvmg_ctrl *c, bool io_only, const char *why)
{
	bool was_dead;

	pthread_mutex_lock(&c->lock);
	was_dead = c->dead;
	if (!io_only)
		c->dead = true;
	ctrl_update_ready(c);
	c->kill_gen++;
	for (unsigned qid = io_only ? 1 : 0; qid <= NVMG_MAX_IO_QUEUES; qid++) {
		struct nvmg_sq *sq = c->sqs[qid];
		struct kill_msg *m;

		if (!sq)
			continue;
		m = malloc(sizeof(*m));
		if (!m)
			continue;
		m->ctrl = c;
		m->gen = c->kill_gen;
		m->qid = (uint16_t)qid;
		nvmg_ctrl_get(c);
		if (nvmg_reactor_post(sq->reactor, kill_queue_msg, m)) {
			nvmg_ctrl_put(c);
			free(m);
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (!io_only && !was_dead) {
		char host[NVMG_ESCAPED_SIZE(NVME_NQN_LENGTH)];

		log_info("controller %u of %s (host %s) torn down: %s", c->cntlid, c->subsys->nqn,
			 nvmg_escape(host, sizeof(host), c->hostnqn, sizeof(c->hostnqn)), why);
		subsys_remove_ctrl(c);
	}
}

void nvmg_ctrl_keepalive(struct nvmg_ctrl *c)
{
	pthread_mutex_lock(&c->lock);
	c->last_keepalive_ms = nvmg_now_ms();
	pthread_mutex_unlock(&c->lock);
}

uint64_t nvmg_ctrl_cap(const struct nvmg_ctrl *c)
{
	(void)c;
	return (uint64_t)NVMG_MQES << NVME_CAP_MQES_SHIFT |
	       1ull << NVME_CAP_CQR_SHIFT |                 /* contiguous queues */
	       (uint64_t)NVMG_CAP_TO << NVME_CAP_TO_SHIFT |
	       1ull << NVME_CAP_CSS_SHIFT;                  /* NVM command set */
	/* MPSMIN = MPSMAX = 0: 4 KiB pages. */
}

uint16_t nvmg_ctrl_prop_get(struct nvmg_ctrl *c, uint32_t off, bool eight, uint64_t *val)
{
	uint16_t status = 0;

	pthread_mutex_lock(&c->lock);
	switch (off) {
	case NVME_REG_CAP:
		/* A 4-byte read of CAP returns its low half, as registers do. */
		*val = nvmg_ctrl_cap(c);
		if (!eight)
			*val &= 0xffffffffu;
		break;
	case NVME_REG_VS:
		*val = c->subsys->version;
		break;
	case NVME_REG_CC:
		*val = c->cc;
		break;
	case NVME_REG_CSTS:
		*val = c->csts;
		break;
	default:
		status = NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR;
	}
	pthread_mutex_unlock(&c->lock);
	if (!eight && off != NVME_REG_CAP && !status)
		*val &= 0xffffffffu;
	else if (eight && off != NVME_REG_CAP && !status)
		status = NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR;
	return status;
}

/* CC.SHN: flush every namespace, then report the shutdown complete. */
struct shn_ctx {
	struct nvmg_ctrl *ctrl;
	unsigned pending;
	struct nvmg_ns **ns;
	struct nvmg_bdev_io *io;
	size_t nr;
};

static void shn_io_done(struct nvmg_bdev_io *io, int res)
{
	struct shn_ctx *x = io->buf; /* a flush carries no data: buf holds the context */
	if (res)
		log_err("controller %u: flush for shutdown: %s", x->ctrl->cntlid, strerror(-res));
	if (--x->pending)
		return;
	pthread_mutex_lock(&x->ctrl->lock);
	x->ctrl->csts = (x->ctrl->csts & ~(NVME_CSTS_SHST_MASK << NVME_CSTS_SHST_SHIFT)) |
			NVME_CSTS_SHST_CMPLT << NVME_CSTS_SHST_SHIFT;
	pthread_mutex_unlock(&x->ctrl->lock);
	for (size_t i = 0; i < x->nr; i++)
		nvmg_ns_put(x->ns[i]);
	nvmg_ctrl_put(x->ctrl);
	free(x->ns);
	free(x->io);
	free(x);
}

static void ctrl_start_shutdown(struct nvmg_ctrl *c, struct nvmg_reactor *r)
{
	struct nvmg_subsys *s = c->subsys;
	struct shn_ctx *x = calloc(1, sizeof(*x));

	if (!x)
		goto done_now;
	pthread_mutex_lock(&s->lock);
	x->ns = calloc(s->nr_ns + 1, sizeof(*x->ns));
	x->io = calloc(s->nr_ns + 1, sizeof(*x->io));
	if (x->ns && x->io) {
		for (size_t i = 0; i < s->nr_ns; i++) {
			x->ns[i] = s->ns[i];
			atomic_fetch_add(&s->ns[i]->refs, 1);
		}
		x->nr = s->nr_ns;
	}
	pthread_mutex_unlock(&s->lock);
	if (!x->ns || !x->io) {
		free(x->ns);
		free(x->io);
		free(x);
		goto done_now;
	}
	x->ctrl = c;
	nvmg_ctrl_get(c);
	x->pending = (unsigned)x->nr + 1;
	for (size_t i = 0; i < x->nr; i++) {
		struct nvmg_bdev_io *io = &x->io[i];

		io->op = NVMG_BDEV_FLUSH;
		io->buf = x;
		io->complete = shn_io_done;
		nvmg_bdev_submit(x->ns[i]->bdev, r, io);
	}
	{
		/* The extra count keeps completion from racing the loop. */
		struct nvmg_bdev_io fake = { .buf = x };

		shn_io_done(&fake, 0);
	}
	return;
done_now:
	pthread_mutex_lock(&c->lock);
	c->csts = (c->csts & ~(NVME_CSTS_SHST_MASK << NVME_CSTS_SHST_SHIFT)) |
		  NVME_CSTS_SHST_CMPLT << NVME_CSTS_SHST_SHIFT;
	pthread_mutex_unlock(&c->lock);
}

static bool cc_valid(uint32_t cc)
{
	return NVME_GET(cc, CC_IOSQES) == 6 && NVME_GET(cc, CC_IOCQES) == 4 &&
	       NVME_GET(cc, CC_MPS) == 0 && NVME_GET(cc, CC_AMS) == NVME_CC_AMS_RR &&
	       NVME_GET(cc, CC_CSS) == NVME_CC_CSS_NVM;
}

uint16_t nvmg_ctrl_prop_set(struct nvmg_req *req, uint32_t off, uint64_t val)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	uint32_t old, cc = (uint32_t)val;
	bool reset = false, shutdown = false;

	if (off != NVME_REG_CC)
		return NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR;
	pthread_mutex_lock(&c->lock);
	old = c->cc;
	c->cc = cc;
	if ((cc & NVME_CC_EN_MASK) && !(old & NVME_CC_EN_MASK)) {
		if (cc_valid(cc))
			c->csts |= (NVME_CSTS_RDY_MASK << NVME_CSTS_RDY_SHIFT);
		else
			c->csts |= NVME_CSTS_CFS_MASK << NVME_CSTS_CFS_SHIFT;
	} else if (!(cc & NVME_CC_EN_MASK) && (old & NVME_CC_EN_MASK)) {
		c->csts &= ~(uint32_t)((NVME_CSTS_RDY_MASK << NVME_CSTS_RDY_SHIFT) | (NVME_CSTS_SHST_MASK << NVME_CSTS_SHST_SHIFT) |
				       (NVME_CSTS_CFS_MASK << NVME_CSTS_CFS_SHIFT));
		reset = true;
	}
	ctrl_update_ready(c);
	if (NVME_GET(cc, CC_SHN) && !NVME_GET(old, CC_SHN)) {
		c->csts = (c->csts & ~(NVME_CSTS_SHST_MASK << NVME_CSTS_SHST_SHIFT)) |
			  NVME_CSTS_SHST_OCCUR << NVME_CSTS_SHST_SHIFT;
		shutdown = true;
	}
	pthread_mutex_unlock(&c->lock);
	if (reset) {
		/* Controller reset: I/O queues go, waiting AERs are aborted. */
		nvmg_ctrl_kill(c, true, "controller reset");
		nvmg_ctrl_abort_aers(c, NVMG_SC_GENERIC(NVME_SC_ABORT_REQ));
		log_info("controller %u: reset by host", c->cntlid);
	}
	if (shutdown)
		ctrl_start_shutdown(c, req->sq->reactor);
	return 0;
}

struct nvmg_ctrl *nvmg_ctrl_create_local(struct nvmg_target *tgt, struct nvmg_subsys *s,
					 const char *hostnqn, uint16_t *status)
{
	struct nvmf_connect_data d;
	struct nvmg_ctrl *c;

	memset(&d, 0, sizeof(d));
	snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", hostnqn);
	c = nvmg_ctrl_create(tgt, s, NULL, &d, 0, status);
	if (!c)
		return NULL;
	/* What a host's Property Set of CC would leave behind: 64-byte SQEs,
	 * 16-byte CQEs, 4 KiB pages, NVM command set, round robin. */
	pthread_mutex_lock(&c->lock);
	c->cc = NVME_CC_EN_MASK | 6u << NVME_CC_IOSQES_SHIFT | 4u << NVME_CC_IOCQES_SHIFT;
	c->csts = NVME_CSTS_RDY_MASK << NVME_CSTS_RDY_SHIFT;
	ctrl_update_ready(c);
	pthread_mutex_unlock(&c->lock);
	return c;
}

void nvmg_ctrl_destroy_local(struct nvmg_ctrl *c)
{
	pthread_mutex_lock(&c->lock);
	for (unsigned qid = 0; qid <= NVMG_MAX_IO_QUEUES; qid++) {
		if (c->sqs[qid])
			c->sqs[qid]->ctrl = NULL;
		c->sqs[qid] = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	nvmg_ctrl_kill(c, false, "local front end stopped");
	nvmg_ctrl_put(c);
}
