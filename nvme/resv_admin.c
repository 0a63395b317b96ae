/* The reservation parts the admin queue reaches: Identify Namespace
 * RESCAP, Get/Set Features 82h and 83h, Get Log Page 80h and the effects
 * log entries. Kept apart from resv.c (the commands), which needs the
 * subsystem's controller list; these need only the namespace. */
#include <stdlib.h>
#include <string.h>
#include "nvme/resv_int.h"

#define INVALID_FIELD (NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR)
#define INTERNAL NVMG_SC_GENERIC(NVME_SC_INTERNAL)
#define NOTIFY_ALL (NVME_FEAT_RESV_NOTIFY_REGPRE | NVME_FEAT_RESV_NOTIFY_RESREL | \
		    NVME_FEAT_RESV_NOTIFY_RESPRE)
#define FEAT_NS_SPECIFIC (1u << 1)
#define FEAT_CHANGEABLE (1u << 2)

static bool id_eq(const uint8_t a[16], const uint8_t b[16])
{
	return !memcmp(a, b, 16);
}

uint8_t nvmg_resv_rescap(const struct nvmg_ns *ns)
{
	uint8_t cap = NVME_NS_RESCAP_WE | NVME_NS_RESCAP_EA | NVME_NS_RESCAP_WERO |
		      NVME_NS_RESCAP_EARO | NVME_NS_RESCAP_WEAR | NVME_NS_RESCAP_EAAR |
		      NVME_NS_RESCAP_IEK_13;

	if (!ns->resv)
		return 0;
	return (uint8_t)(cap | (ns->resv->path ? NVME_NS_RESCAP_PTPL : 0));
}

uint32_t nvmg_resv_mask_of(struct nvmg_resv *r, const uint8_t hostid[16])
{
	for (size_t i = 0; i < r->nr_masks; i++)
		if (id_eq(r->masks[i].hostid, hostid))
			return r->masks[i].mask;
	return 0;
}

/* ---- features 82h / 83h ---- */

static uint16_t set_mask(struct nvmg_resv *r, const uint8_t hostid[16], uint32_t mask)
{
	uint16_t status = 0;
	size_t i;

	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->nr_masks && !id_eq(r->masks[i].hostid, hostid); i++)
		;
	if (i == r->nr_masks) {
		struct nvmg_resv_mask *m = realloc(r->masks, (r->nr_masks + 1) * sizeof(*m));

		if (m) {
			r->masks = m;
			memcpy(m[r->nr_masks++].hostid, hostid, 16);
		} else {
			status = INTERNAL;
		}
	}
	if (!status)
		r->masks[i].mask = mask;
	pthread_mutex_unlock(&r->lock);
	return status;
}

void nvmg_resv_get_features(struct nvmg_req *req)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint8_t fid = cdw10 & 0xff, sel = (cdw10 >> 8) & 7;
	struct nvmg_ns *ns;
	uint32_t dw0 = 0;

	if (sel == NVME_GET_FEATURES_SEL_SUPPORTED) {
		req->cqe.result = htole64(FEAT_NS_SPECIFIC | FEAT_CHANGEABLE);
		nvmg_req_complete(req, 0);
		return;
	}
	ns = nvmg_subsys_get_ns(c->subsys, le32toh(req->cmd.nsid));
	if (!ns) {
		nvmg_req_complete(req, NVMG_SC_GENERIC(NVME_SC_INVALID_NS) | NVME_SC_DNR);
		return;
	}
	/* Nothing is saveable: "saved" is the current value. */
	if (sel != NVME_GET_FEATURES_SEL_DEFAULT && ns->resv) {
		pthread_mutex_lock(&ns->resv->lock);
		dw0 = fid == NVME_FEAT_FID_RESV_MASK ? nvmg_resv_mask_of(ns->resv, c->hostid) : ns->resv->ptpl;
		pthread_mutex_unlock(&ns->resv->lock);
	}
	nvmg_ns_put(ns);
	req->cqe.result = htole64(dw0);
	nvmg_req_complete(req, 0);
}

static uint16_t set_ptpl(struct nvmg_resv *r, bool on)
{
	struct nvmg_resv_snapshot snap;
	uint16_t status;

	if (on && !r->path)
		return INVALID_FIELD;
	pthread_mutex_lock(&r->lock);
	if (!nvmg_resv_snapshot(r, &snap)) {
		pthread_mutex_unlock(&r->lock);
		return INTERNAL;
	}
	r->ptpl = on;
	status = nvmg_resv_commit(r, &snap, 0);
	pthread_mutex_unlock(&r->lock);
	return status;
}

void nvmg_resv_set_features(struct nvmg_req *req)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	struct nvmg_subsys *s = c->subsys;
	uint32_t cdw10 = le32toh(req->cmd.cdw10), cdw11 = le32toh(req->cmd.cdw11);
	uint32_t nsid = le32toh(req->cmd.nsid);
	uint8_t fid = cdw10 & 0xff;
	uint16_t status = 0;
	struct nvmg_ns *ns;

	if (cdw10 & (1u << 31)) { /* SV */
		nvmg_req_complete(req, NVMG_SC_CMD(NVME_SC_FEATURE_NOT_SAVEABLE) | NVME_SC_DNR);
		return;
	}
	if (fid == NVME_FEAT_FID_RESV_MASK && (cdw11 & ~(uint32_t)NOTIFY_ALL)) {
		nvmg_req_complete(req, INVALID_FIELD);
		return;
	}
	if (fid == NVME_FEAT_FID_RESV_MASK && nsid == NVME_NSID_ALL) {
		pthread_mutex_lock(&s->lock);
		for (size_t i = 0; i < s->nr_ns && !status; i++)
			if (s->ns[i]->resv)
				status = set_mask(s->ns[i]->resv, c->hostid, cdw11);
		pthread_mutex_unlock(&s->lock);
		nvmg_req_complete(req, status);
		return;
	}
	ns = nvmg_subsys_get_ns(s, nsid);
	if (!ns) {
		nvmg_req_complete(req, nsid == NVME_NSID_ALL ? INVALID_FIELD
				       : NVMG_SC_GENERIC(NVME_SC_INVALID_NS) | NVME_SC_DNR);
		return;
	}
	if (!ns->resv)
		status = INVALID_FIELD;
	else if (fid == NVME_FEAT_FID_RESV_MASK)
		status = set_mask(ns->resv, c->hostid, cdw11);
	else
		status = set_ptpl(ns->resv, cdw11 & NVME_FEAT_RP_PTPL_MASK);
	nvmg_ns_put(ns);
	nvmg_req_complete(req, status);
}

/* ---- log page 80h ---- */

void nvmg_resv_log_page(struct nvmg_req *req, uint64_t off, bool rae)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	struct nvme_resv_notification_log log;
	struct nvmg_resv_log *l;
	unsigned left = 0;

	memset(&log, 0, sizeof(log));
	pthread_mutex_lock(&c->lock);
	l = c->resv_log;
	/* Reading consumes the page: the next read gets the next one. */
	if (l && l->nr) {
		log.lpc = htole64(l->q[l->head].lpc);
		log.rnlpt = l->q[l->head].type;
		log.nsid = htole32(l->q[l->head].nsid);
		l->head = (l->head + 1) % NVMG_RESV_LOG_QUEUE;
		l->nr--;
		left = l->nr;
		log.nalp = (uint8_t)(left > 255 ? 255 : left);
	}
	pthread_mutex_unlock(&c->lock);
	nvmg_req_copy_to_buf(req, &log, sizeof(log), off);
	if (rae)
		return;
	/* Pages still waiting are in NALP: the host reads on, no new event. */
	nvmg_ctrl_clear_aen_mask(c, NVME_AER_CSS);
}

void nvmg_resv_cmd_effects(uint32_t *iocs)
{
	iocs[nvme_cmd_resv_register] = htole32(NVME_CMD_EFFECTS_CSUPP);
	iocs[nvme_cmd_resv_report] = htole32(NVME_CMD_EFFECTS_CSUPP);
	iocs[nvme_cmd_resv_acquire] = htole32(NVME_CMD_EFFECTS_CSUPP);
	iocs[nvme_cmd_resv_release] = htole32(NVME_CMD_EFFECTS_CSUPP);
}
