/* Get Features / Set Features (admin opcodes 0Ah / 09h). Every feature we
 * support is controller-wide, changeable and not saveable. */
#include <string.h>
#include <time.h>
#include "nvme/admin.h"

#define INVALID_FIELD (NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR)
#define SET_FEATURES_SV (1u << 31)
#define FEAT_CAP_CHANGEABLE (1u << 2) /* SEL 011b: dw0 bit 2 */
#define TIMESTAMP_MAX ((1ull << 48) - 1)
#define TIMESTAMP_ORIGIN_HOST (1u << 1) /* attributes bits 3:1 = 001b */
#define KAS_MS (NVMG_KAS * 100) /* KAS counts 100 ms units */

static bool feature_supported(const struct nvmg_ctrl *c, uint8_t fid)
{
	switch (fid) {
	case NVME_FEAT_FID_ASYNC_EVENT:
	case NVME_FEAT_FID_KATO:
		return true;
	case NVME_FEAT_FID_ARBITRATION:
	case NVME_FEAT_FID_POWER_MGMT:
	case NVME_FEAT_FID_VOLATILE_WC:
	case NVME_FEAT_FID_NUM_QUEUES:
	case NVME_FEAT_FID_TIMESTAMP:
	case NVME_FEAT_FID_HOST_ID:
		return !c->subsys->discovery;
	default:
		return false;
	}
}

/* The events OAES advertises for this controller type. */
static uint32_t aen_supported(const struct nvmg_ctrl *c)
{
	return c->subsys->discovery ? (uint32_t)NVME_FEATURE_AENCFG_NOTICE_DISCOVERY_CHANGE
				    : (uint32_t)(NVME_FEATURE_AENCFG_NOTICE_NAMESPACE_ATTRIBUTES |
						 NVME_FEATURE_AENCFG_NOTICE_ANA_CHANGE);
}

static uint32_t num_queues_dw0(uint16_t n)
{
	return (uint32_t)(n - 1) | (uint32_t)(n - 1) << 16;
}

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void get_timestamp(struct nvmg_req *req)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	uint8_t data[8] = { 0 };
	int64_t offset;
	bool set;
	uint64_t ts;

	pthread_mutex_lock(&c->lock);
	offset = c->timestamp_offset_ms;
	set = c->timestamp_set;
	pthread_mutex_unlock(&c->lock);
	ts = (realtime_ms() + (uint64_t)offset) & TIMESTAMP_MAX;
	for (int i = 0; i < 6; i++)
		data[i] = (uint8_t)(ts >> (8 * i));
	/* Synch 0: counted continuously since it was set. */
	data[6] = set ? TIMESTAMP_ORIGIN_HOST : 0;
	nvmg_req_copy_to_buf(req, data, sizeof(data), 0);
}

static uint16_t set_timestamp(struct nvmg_req *req)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	const uint8_t *data = req->buf;
	uint64_t ts = 0;

	if (req->data_len < 8)
		return INVALID_FIELD;
	for (int i = 0; i < 6; i++)
		ts |= (uint64_t)data[i] << (8 * i);
	pthread_mutex_lock(&c->lock);
	c->timestamp_offset_ms = (int64_t)(ts - realtime_ms());
	c->timestamp_set = true;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static uint16_t set_num_queues(struct nvmg_ctrl *c, uint32_t cdw11, uint32_t *dw0)
{
	uint32_t nsqr = cdw11 & NVME_FEAT_NRQS_NSQR_MASK;
	uint32_t ncqr = cdw11 >> NVME_FEAT_NRQS_NCQR_SHIFT;
	uint32_t want = (nsqr < ncqr ? nsqr : ncqr) + 1;
	uint16_t n = want > NVMG_MAX_IO_QUEUES ? NVMG_MAX_IO_QUEUES : (uint16_t)want;
	uint16_t status = 0;

	if (nsqr == 0xffff || ncqr == 0xffff)
		return INVALID_FIELD;
	pthread_mutex_lock(&c->lock);
	/* The grant may not change under queues that already exist. */
	for (size_t i = 1; i <= NVMG_MAX_IO_QUEUES && !status; i++)
		if (c->sqs[i])
			status = NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR;
	if (!status)
		c->nr_io_queues = n;
	pthread_mutex_unlock(&c->lock);
	/* Fabrics queues are SQ/CQ pairs, so both counts are the same. */
	*dw0 = num_queues_dw0(n);
	return status;
}

void nvmg_execute_get_features(struct nvmg_req *req)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint32_t cdw11 = le32toh(req->cmd.cdw11);
	uint8_t fid = cdw10 & 0xff;
	uint8_t sel = (cdw10 >> 8) & 7;
	bool dflt = sel == NVME_GET_FEATURES_SEL_DEFAULT;
	uint32_t dw0 = 0;
	uint16_t n;

	if (!feature_supported(c, fid)) {
		nvmg_req_complete(req, INVALID_FIELD);
		return;
	}
	if (sel == NVME_GET_FEATURES_SEL_SUPPORTED) {
		if (req->data_len)
			nvmg_req_copy_to_buf(req, NULL, 0, 0);
		nvmg_req_set_dw0(req, fid == NVME_FEAT_FID_HOST_ID ? 0 : FEAT_CAP_CHANGEABLE);
		nvmg_req_complete(req, 0);
		return;
	}
	/* Nothing is saveable, so SEL "saved" reports the current value. */
	switch (fid) {
	case NVME_FEAT_FID_ARBITRATION:
	case NVME_FEAT_FID_POWER_MGMT:
		break; /* power state 0, arbitration burst 1 command */
	case NVME_FEAT_FID_VOLATILE_WC:
		pthread_mutex_lock(&c->lock);
		dw0 = dflt || c->vwc_enabled;
		pthread_mutex_unlock(&c->lock);
		if (!nvmg_subsys_has_vwc(c->subsys))
			dw0 = 0;
		break;
	case NVME_FEAT_FID_NUM_QUEUES:
		pthread_mutex_lock(&c->lock);
		n = dflt || !c->nr_io_queues ? NVMG_MAX_IO_QUEUES : c->nr_io_queues;
		pthread_mutex_unlock(&c->lock);
		dw0 = num_queues_dw0(n);
		break;
	case NVME_FEAT_FID_ASYNC_EVENT:
		pthread_mutex_lock(&c->lock);
		dw0 = dflt ? 0 : c->aen_enabled;
		pthread_mutex_unlock(&c->lock);
		break;
	case NVME_FEAT_FID_KATO:
		pthread_mutex_lock(&c->lock);
		dw0 = dflt ? 0 : c->kato_ms;
		pthread_mutex_unlock(&c->lock);
		break;
	case NVME_FEAT_FID_TIMESTAMP:
		get_timestamp(req);
		break;
	case NVME_FEAT_FID_HOST_ID:
		if (!(cdw11 & NVME_FEAT_HOSTID_EXHID_MASK)) {
			nvmg_req_complete(req, INVALID_FIELD);
			return;
		}
		nvmg_req_copy_to_buf(req, c->hostid, sizeof(c->hostid), 0);
		break;
	}
	nvmg_req_set_dw0(req, dw0);
	nvmg_req_complete(req, 0);
}

void nvmg_execute_set_features(struct nvmg_req *req)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint32_t cdw11 = le32toh(req->cmd.cdw11);
	uint8_t fid = cdw10 & 0xff;
	uint32_t dw0 = 0;
	uint16_t status = 0;
	uint64_t kato;

	if (!feature_supported(c, fid)) {
		nvmg_req_complete(req, INVALID_FIELD);
		return;
	}
	if (cdw10 & SET_FEATURES_SV) {
		nvmg_req_complete(req, NVMG_SC_CMD(NVME_SC_FEATURE_NOT_SAVEABLE) | NVME_SC_DNR);
		return;
	}
	switch (fid) {
	case NVME_FEAT_FID_ARBITRATION:
		break; /* one queue per connection: nothing to arbitrate */
	case NVME_FEAT_FID_POWER_MGMT:
		if (cdw11 & NVME_FEAT_PWRMGMT_PS_MASK) /* NPSS 0: only PS 0 */
			status = INVALID_FIELD;
		break;
	case NVME_FEAT_FID_VOLATILE_WC:
		if (!nvmg_subsys_has_vwc(c->subsys)) {
			status = INVALID_FIELD;
			break;
		}
		pthread_mutex_lock(&c->lock);
		__atomic_store_n(&c->vwc_enabled, (cdw11 & NVME_FEAT_VWC_WCE_MASK) != 0, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&c->lock);
		break;
	case NVME_FEAT_FID_NUM_QUEUES:
		status = set_num_queues(c, cdw11, &dw0);
		break;
	case NVME_FEAT_FID_ASYNC_EVENT:
		/* Events we never raise are dropped, not refused. */
		pthread_mutex_lock(&c->lock);
		c->aen_enabled = cdw11 & aen_supported(c);
		pthread_mutex_unlock(&c->lock);
		break;
	case NVME_FEAT_FID_KATO:
		/* Round up to the KAS granularity we advertise. */
		kato = ((uint64_t)cdw11 + KAS_MS - 1) / KAS_MS * KAS_MS;
		if (kato > UINT32_MAX)
			kato = UINT32_MAX / KAS_MS * KAS_MS;
		pthread_mutex_lock(&c->lock);
		c->kato_ms = (uint32_t)kato;
		pthread_mutex_unlock(&c->lock);
		break;
	case NVME_FEAT_FID_TIMESTAMP:
		status = set_timestamp(req);
		break;
	case NVME_FEAT_FID_HOST_ID:
		/* Fabrics hosts give their identifier in Connect only. */
		status = NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR;
		break;
	}
	if (!status)
		nvmg_req_set_dw0(req, dw0);
	nvmg_req_complete(req, status);
}
