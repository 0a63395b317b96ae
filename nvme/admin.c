/* Admin queue commands of an I/O controller: parse (what data moves, which
 * handler runs) and the small handlers that need no file of their own. */
#include <string.h>
#include "nvme/admin.h"
#include "nvme/resv.h"

uint16_t nvmg_admin_check_enabled(struct nvmg_ctrl *c)
{
	bool ready;

	pthread_mutex_lock(&c->lock);
	ready = NVME_CC_EN(c->cc) && NVME_CSTS_RDY(c->csts);
	pthread_mutex_unlock(&c->lock);
	return ready ? 0 : NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR;
}

uint16_t nvmg_admin_parse_get_log_page(struct nvmg_req *req)
{
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint32_t cdw11 = le32toh(req->cmd.cdw11);
	/* NUMD is 0's based dwords: NUMDL in cdw10 31:16, NUMDU in cdw11 15:0. */
	uint64_t numd = (cdw10 >> 16) | ((uint64_t)(cdw11 & 0xffff) << 16);
	uint64_t len = (numd + 1) * 4;

	if (len > NVMG_MAX_DATA)
		return NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR;
	req->dir = NVMG_DIR_TO_HOST;
	req->data_len = (uint32_t)len;
	req->execute = nvmg_execute_get_log_page;
	return 0;
}

/* Unsupported features fail here, before any data moves: a Set carrying
 * data we would not read must not reach the transfer stage. */
uint16_t nvmg_admin_parse_features(struct nvmg_req *req, bool set)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint32_t cdw11 = le32toh(req->cmd.cdw11);
	uint8_t fid = cdw10 & 0xff;
	bool disc = c->subsys->discovery;
	const uint16_t invalid = NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR;

	switch (fid) {
	case NVME_FEAT_FID_ASYNC_EVENT:
	case NVME_FEAT_FID_KATO:
		break;
	case NVME_FEAT_FID_ARBITRATION:
	case NVME_FEAT_FID_POWER_MGMT:
	case NVME_FEAT_FID_VOLATILE_WC:
	case NVME_FEAT_FID_NUM_QUEUES:
		if (disc)
			return invalid;
		break;
	case NVME_FEAT_FID_TIMESTAMP:
		if (disc)
			return invalid;
		req->dir = set ? NVMG_DIR_FROM_HOST : NVMG_DIR_TO_HOST;
		req->data_len = 8;
		break;
	case NVME_FEAT_FID_HOST_ID:
		if (disc)
			return invalid;
		/* Fabrics hosts give their identifier in Connect only. */
		if (set)
			return NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR;
		/* Only the 128-bit form exists on fabrics. */
		if (!(cdw11 & NVME_FEAT_HOSTID_EXHID_MASK))
			return invalid;
		req->dir = NVMG_DIR_TO_HOST;
		req->data_len = 16;
		break;
	case NVME_FEAT_FID_RESV_MASK:
	case NVME_FEAT_FID_RESV_PERSIST:
		if (disc)
			return invalid;
		req->execute = set ? nvmg_resv_set_features : nvmg_resv_get_features;
		return 0;
	default:
		return invalid;
	}
	req->execute = set ? nvmg_execute_set_features : nvmg_execute_get_features;
	return 0;
}

void nvmg_admin_execute_keep_alive(struct nvmg_req *req)
{
	nvmg_ctrl_keepalive(req->sq->ctrl);
	nvmg_req_complete(req, 0);
}

/* Commands are not aborted once fetched: they finish on their own, so
 * report "not aborted" (Dword 0 bit 0), which the spec allows. */
static void execute_abort(struct nvmg_req *req)
{
	nvmg_req_set_dw0(req, 1);
	nvmg_req_complete(req, 0);
}

uint16_t nvmg_parse_admin(struct nvmg_req *req)
{
	uint16_t status = nvmg_admin_check_enabled(req->sq->ctrl);

	if (status)
		return status;
	switch (req->cmd.opcode) {
	case nvme_admin_identify:
		req->dir = NVMG_DIR_TO_HOST;
		req->data_len = NVME_IDENTIFY_DATA_SIZE;
		req->execute = nvmg_execute_identify;
		return 0;
	case nvme_admin_get_log_page:
		return nvmg_admin_parse_get_log_page(req);
	case nvme_admin_get_features:
		return nvmg_admin_parse_features(req, false);
	case nvme_admin_set_features:
		return nvmg_admin_parse_features(req, true);
	case nvme_admin_async_event:
		req->execute = nvmg_execute_async_event;
		return 0;
	case nvme_admin_keep_alive:
		req->execute = nvmg_admin_execute_keep_alive;
		return 0;
	case nvme_admin_abort_cmd:
		req->execute = execute_abort;
		return 0;
	default:
		return NVMG_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVME_SC_DNR;
	}
}

void nvmg_req_copy_to_buf(struct nvmg_req *req, const void *src, size_t src_len, uint64_t off)
{
	size_t n = 0;

	if (off < src_len) {
		n = src_len - (size_t)off;
		if (n > req->data_len)
			n = req->data_len;
		if (n)
			memcpy(req->buf, (const uint8_t *)src + off, n);
	}
	if (req->data_len > n)
		memset((uint8_t *)req->buf + n, 0, req->data_len - n);
}

void nvmg_copy_padded(char *dst, size_t n, const char *src)
{
	size_t len = strnlen(src, n);

	memcpy(dst, src, len);
	memset(dst + len, ' ', n - len);
}

uint32_t nvmg_subsys_nn(struct nvmg_subsys *s)
{
	uint32_t nn = NVMG_MIN_NN;

	pthread_mutex_lock(&s->lock);
	/* s->ns is sorted by NSID: the last is the highest. */
	if (s->nr_ns && s->ns[s->nr_ns - 1]->nsid > nn)
		nn = s->ns[s->nr_ns - 1]->nsid;
	pthread_mutex_unlock(&s->lock);
	return nn;
}

bool nvmg_subsys_has_vwc(struct nvmg_subsys *s)
{
	bool vwc = false;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_ns && !vwc; i++)
		vwc = s->ns[i]->bdev && s->ns[i]->bdev->volatile_cache;
	pthread_mutex_unlock(&s->lock);
	return vwc;
}
