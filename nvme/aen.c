/* Asynchronous events: events are raised from any thread, recorded under
 * the controller's lock, and delivered on the admin queue's reactor by
 * completing a waiting Asynchronous Event Request. */
#include <stdlib.h>
#include "lib/log.h"
#include "nvme/core.h"

/* Which Async Event Configuration bit enables an event (Notice type). */
static uint32_t aen_cfg_bit(uint8_t type, uint8_t info)
{
	if (type != NVME_AER_NOTICE)
		return 0;
	switch (info) {
	case NVME_AER_NOTICE_NS_CHANGED:
		return 1u << 8;
	case NVME_AER_NOTICE_ANA:
		return NVME_FEATURE_AENCFG_NOTICE_ANA_CHANGE;
	case NVME_AER_NOTICE_DISC_CHANGED:
		return 1u << 31;
	default:
		return 0;
	}
}

/* Admin reactor only: pair pending events with waiting requests. */
static void aen_deliver(struct nvmg_ctrl *c)
{
	for (;;) {
		struct nvmg_req *req = NULL;
		uint32_t dw0 = 0;

		pthread_mutex_lock(&c->lock);
		if (c->nr_aen_pending && c->nr_aer_reqs) {
			req = c->aer_reqs[--c->nr_aer_reqs];
			dw0 = c->aen_pending[0].dw0;
			for (unsigned i = 1; i < c->nr_aen_pending; i++)
				c->aen_pending[i - 1] = c->aen_pending[i];
			c->nr_aen_pending--;
		}
		pthread_mutex_unlock(&c->lock);
		if (!req)
			return;
		req->cqe.result = htole64(dw0);
		nvmg_req_complete(req, 0);
	}
}

static void aen_kick_msg(void *arg)
{
	struct nvmg_ctrl *c = arg;

	aen_deliver(c);
	nvmg_ctrl_put(c);
}

void nvmg_ctrl_raise_aen(struct nvmg_ctrl *c, uint8_t type, uint8_t info, uint8_t lid)
{
	uint32_t bit = aen_cfg_bit(type, info);
	bool kick = false;

	pthread_mutex_lock(&c->lock);
	/* Only events the host enabled; a type stays masked until the host
	 * reads its log page with RAE=0. */
	if (!c->dead && (!bit || (c->aen_enabled & bit)) && !(c->aen_masked & (1u << type)) &&
	    c->nr_aen_pending < sizeof(c->aen_pending) / sizeof(c->aen_pending[0])) {
		c->aen_pending[c->nr_aen_pending++].dw0 =
			(uint32_t)type | (uint32_t)info << 8 | (uint32_t)lid << 16;
		c->aen_masked |= 1u << type;
		kick = true;
	}
	pthread_mutex_unlock(&c->lock);
	if (!kick)
		return;
	nvmg_ctrl_get(c);
	if (nvmg_reactor_post(c->admin_reactor, aen_kick_msg, c))
		nvmg_ctrl_put(c);
}

void nvmg_ctrl_ns_changed(struct nvmg_ctrl *c, uint32_t nsid)
{
	bool dup = false;

	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->nr_changed_ns && i < NVMG_MAX_CHANGED_NS; i++)
		dup |= c->changed_ns[i] == nsid;
	if (!dup) {
		if (c->nr_changed_ns < NVMG_MAX_CHANGED_NS)
			c->changed_ns[c->nr_changed_ns] = nsid;
		if (c->nr_changed_ns <= NVMG_MAX_CHANGED_NS)
			c->nr_changed_ns++; /* > max means "more than 1024 changed" */
	}
	pthread_mutex_unlock(&c->lock);
	nvmg_ctrl_raise_aen(c, NVME_AER_NOTICE, NVME_AER_NOTICE_NS_CHANGED, NVME_LOG_LID_CHANGED_NS);
}

void nvmg_ctrl_clear_aen_mask(struct nvmg_ctrl *c, uint8_t type)
{
	pthread_mutex_lock(&c->lock);
	c->aen_masked &= ~(1u << type);
	pthread_mutex_unlock(&c->lock);
}

void nvmg_ctrl_abort_aers(struct nvmg_ctrl *c, uint16_t status)
{
	for (;;) {
		struct nvmg_req *req = NULL;

		pthread_mutex_lock(&c->lock);
		if (c->nr_aer_reqs)
			req = c->aer_reqs[--c->nr_aer_reqs];
		pthread_mutex_unlock(&c->lock);
		if (!req)
			return;
		nvmg_req_complete(req, status);
	}
}

void nvmg_execute_async_event(struct nvmg_req *req)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	bool full;

	pthread_mutex_lock(&c->lock);
	full = c->nr_aer_reqs > NVMG_AERL;
	if (!full)
		c->aer_reqs[c->nr_aer_reqs++] = req;
	pthread_mutex_unlock(&c->lock);
	if (full) {
		nvmg_req_complete(req, NVMG_SC_CMD(NVME_SC_ASYNC_LIMIT) | NVME_SC_DNR);
		return;
	}
	aen_deliver(c);
}
