/* Request life cycle: parse a command for its queue, complete it. */
#include <string.h>
#include "daemon/log.h"
#include "nvme/core.h"

uint16_t nvmg_req_init(struct nvmg_req *req)
{
	struct nvmg_sq *sq = req->sq;
	struct nvmg_ctrl *c = sq->ctrl;
	uint16_t status;

	req->ns = NULL;
	req->dir = NVMG_DIR_NONE;
	req->data_len = 0;
	req->execute = NULL;
	req->sub_count = 0;
	req->sub_status = 0;
	memset(&req->cqe, 0, sizeof(req->cqe));
	req->cqe.cid = req->cmd.cid;
	req->cqe.sqid = htole16(sq->qid);

	/* SQ head moves for every command fetched, whatever its outcome. */
	if (sq->size)
		sq->sqhd = (uint16_t)((sq->sqhd + 1) % sq->size);

	if (req->cmd.flags & 0x03) /* fused operations are not supported */
		return NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR;
	/* Fabrics carry data only through SGLs. */
	if ((req->cmd.flags & NVMG_PSDT_MASK) != NVMG_PSDT_SGL_MPTR_CONTIG &&
	    (req->cmd.flags & NVMG_PSDT_MASK) != NVMG_PSDT_SGL_MPTR_SGL)
		return NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR;

	if (req->cmd.opcode == nvme_admin_fabrics)
		status = nvmg_parse_fabrics(req);
	else if (!c)
		status = NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR;
	else if (sq->qid == 0)
		status = c->subsys->discovery ? nvmg_parse_discovery_admin(req) : nvmg_parse_admin(req);
	else
		status = nvmg_parse_io(req);
	if (status)
		return status;
	return nvmg_req_check_len(req);
}

uint16_t nvmg_req_check_len(struct nvmg_req *req)
{
	if (req->dir == NVMG_DIR_NONE) {
		/* A command without data may still carry a zero-length SGL. */
		if (req->sgl_len)
			return NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVME_SC_DNR;
		return 0;
	}
	if (req->sgl_len != req->data_len)
		return NVMG_SC_GENERIC(NVME_SC_SGL_INVALID_DATA) | NVME_SC_DNR;
	return 0;
}

void nvmg_req_complete(struct nvmg_req *req, uint16_t status)
{
	struct nvmg_sq *sq = req->sq;

	req->cqe.sqhd = htole16(sq->sqhd);
	req->cqe.status = htole16((uint16_t)(status << 1));
	if (status)
		sq->stats.errors++;
	if (req->ns) {
		nvmg_ns_put(req->ns);
		req->ns = NULL;
	}
	sq->ops->queue_response(req);
}
