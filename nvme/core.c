/* Request life cycle: parse a command for its queue, complete it. */
#include <stdlib.h>
#include <string.h>
#include "lib/reactor.h"
#include "lib/log.h"
#include "nvme/auth.h"
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
	req->start_ns = sq->qid ? nvmg_now_ns() : 0;
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
	else if (sq->auth && !nvmg_auth_queue_ok(sq)) /* not authenticated (yet) */
		status = NVMG_SC_CMD(NVME_SC_AUTH_REQUIRED) | NVME_SC_DNR;
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

/* The namespace's statistics slot of this reactor, made on first use. */
static struct nvmg_io_stats *ns_stats_slot(struct nvmg_ns *ns, struct nvmg_reactor *r)
{
	unsigned id = r ? nvmg_reactor_id(r) : NVMG_STAT_SLOTS;
	struct nvmg_io_stats *st;

	if (id >= NVMG_STAT_SLOTS)
		return NULL; /* more reactors than slots: namespace totals skip them */
	st = atomic_load_explicit(&ns->stats[id], memory_order_acquire);
	if (!st) {
		/* Only this reactor writes slot id, so no compare-and-swap. */
		st = calloc(1, sizeof(*st));
		if (st)
			atomic_store_explicit(&ns->stats[id], st, memory_order_release);
	}
	return st;
}

/* A completed command's count, bytes and latency (errors are counted by
 * the caller: the queue's include admin commands). */
static void count_io(struct nvmg_io_stats *st, const struct nvmg_req *req, uint16_t status,
		     uint64_t lat)
{
	if (!status && req->cmd.opcode == nvme_cmd_read) {
		NVMG_STAT_ADD(st->read_cmds, 1);
		NVMG_STAT_ADD(st->read_bytes, req->data_len);
	} else if (!status && req->cmd.opcode == nvme_cmd_write) {
		NVMG_STAT_ADD(st->write_cmds, 1);
		NVMG_STAT_ADD(st->write_bytes, req->data_len);
	} else if (!status) {
		NVMG_STAT_ADD(st->other_cmds, 1);
	}
	nvmg_lat_record(&st->lat, lat);
}

/* An I/O command, for its queue and for its namespace. */
static void account(struct nvmg_req *req, uint16_t status)
{
	struct nvmg_sq *sq = req->sq;
	uint64_t lat = nvmg_now_ns() - req->start_ns;
	struct nvmg_io_stats *st;

	count_io(&sq->stats, req, status, lat);
	if (!req->ns || !(st = ns_stats_slot(req->ns, sq->reactor)))
		return;
	if (status)
		NVMG_STAT_ADD(st->errors, 1);
	count_io(st, req, status, lat);
}

void nvmg_req_complete(struct nvmg_req *req, uint16_t status)
{
	struct nvmg_sq *sq = req->sq;

	req->cqe.sqhd = htole16(sq->sqhd);
	req->cqe.status = htole16((uint16_t)(status << 1));
	if (status)
		NVMG_STAT_ADD(sq->stats.errors, 1);
	if (req->start_ns)
		account(req, status);
	/* A transport that may send a Read from the backend's lent memory
	 * (transport.h lend_reads) drops the namespace reference itself once
	 * the bytes are out: the reference keeps that memory alive. */
	if (req->ns && !sq->transport->lend_reads) {
		nvmg_ns_put(req->ns);
		req->ns = NULL;
	}
	sq->transport->queue_response(req);
}
