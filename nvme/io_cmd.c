/* NVM command set I/O commands, dispatched to the namespace's backend. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "nvme/core.h"
#include "nvme/resv.h"

static uint16_t errno_to_status(int err, bool write)
{
	switch (err) {
	case 0:
		return 0;
	case -ENOSPC:
	case -EDQUOT:
		return NVMG_SC_GENERIC(NVME_SC_CAP_EXCEEDED) | NVME_SC_DNR;
	case -EROFS:
	case -EPERM:
	case -EACCES:
		return NVMG_SC_GENERIC(NVME_SC_NS_WRITE_PROTECTED) | NVME_SC_DNR;
	case -EIO:
		return write ? NVMG_SC_MEDIA(NVME_SC_WRITE_FAULT) : NVMG_SC_MEDIA(NVME_SC_READ_ERROR);
	case -EAGAIN:
		/* The device is being reset: retryable, and not a media error. */
		return NVMG_SC_GENERIC(NVME_SC_NS_NOT_READY);
	default:
		return NVMG_SC_GENERIC(NVME_SC_INTERNAL);
	}
}

static struct nvmg_req *io_to_req(struct nvmg_bdev_io *io)
{
	return nvmg_container_of(io, struct nvmg_req, io);
}

static void rw_done(struct nvmg_bdev_io *io, int res)
{
	/* A backend may have lent its memory for a Read (submit). */
	if (io->op == NVMG_BDEV_READ)
		io_to_req(io)->buf = io->buf;
	/* Counted by nvmg_req_complete, for the queue and the namespace. */
	nvmg_req_complete(io_to_req(io), errno_to_status(res, io->op != NVMG_BDEV_READ));
}

static void submit(struct nvmg_req *req, enum nvmg_bdev_op op, uint64_t off, uint64_t len, void *buf,
		   void (*done)(struct nvmg_bdev_io *, int))
{
	struct nvmg_bdev_io *io = &req->io;

	io->op = op;
	/* FUA is cdw12 bit 30 of Write and Write Zeroes. With the volatile
	 * write cache turned off (Set Features VWC, WCE=0) every write must
	 * be durable on completion. */
	io->fua = (op == NVMG_BDEV_WRITE || op == NVMG_BDEV_WRITE_ZEROES) &&
		  (((le32toh(req->cmd.cdw12) >> 16) & NVME_IO_FUA) ||
		   !__atomic_load_n(&req->sq->ctrl->vwc_enabled, __ATOMIC_RELAXED));
	io->offset = off;
	io->len = len;
	io->buf = buf;
	/* Plain Reads only: Compare reads into its own scratch buffer. */
	io->lend = op == NVMG_BDEV_READ && done == rw_done && req->sq->transport &&
		   req->sq->transport->lend_reads;
	io->done = 0;
	io->complete = done;
	nvmg_bdev_submit(req->ns->bdev, req->sq->reactor, io);
}

static uint64_t slba_of(const struct nvmg_req *req)
{
	return le32toh(req->cmd.cdw10) | (uint64_t)le32toh(req->cmd.cdw11) << 32;
}

static void execute_rw(struct nvmg_req *req)
{
	enum nvmg_bdev_op op = req->cmd.opcode == nvme_cmd_read ? NVMG_BDEV_READ : NVMG_BDEV_WRITE;

	submit(req, op, slba_of(req) << req->ns->lba_shift, req->data_len, req->buf, rw_done);
}

static void execute_flush(struct nvmg_req *req)
{
	submit(req, NVMG_BDEV_FLUSH, 0, 0, NULL, rw_done);
}

static void execute_write_zeroes(struct nvmg_req *req)
{
	uint64_t nlb = (le32toh(req->cmd.cdw12) & 0xffff) + 1ull;

	submit(req, NVMG_BDEV_WRITE_ZEROES, slba_of(req) << req->ns->lba_shift,
	       nlb << req->ns->lba_shift, NULL, rw_done);
}

/* Compare reads into a scratch buffer; it is not a hot-path command. */
static void compare_done(struct nvmg_bdev_io *io, int res)
{
	struct nvmg_req *req = io_to_req(io);
	uint16_t status = errno_to_status(res, false);

	if (!status && memcmp(io->buf, req->buf, req->data_len))
		status = NVMG_SC_MEDIA(NVME_SC_COMPARE_FAILED) | NVME_SC_DNR;
	free(io->buf);
	nvmg_req_complete(req, status);
}

static void execute_compare(struct nvmg_req *req)
{
	void *scratch = malloc(req->data_len);

	if (!scratch) {
		nvmg_req_complete(req, NVMG_SC_GENERIC(NVME_SC_INTERNAL));
		return;
	}
	submit(req, NVMG_BDEV_READ, slba_of(req) << req->ns->lba_shift, req->data_len, scratch,
	       compare_done);
}

/* Dataset Management: deallocate ranges one after another. */
static void dsm_next(struct nvmg_req *req);

static void dsm_done(struct nvmg_bdev_io *io, int res)
{
	struct nvmg_req *req = io_to_req(io);

	if (res && !req->sub_status)
		req->sub_status = errno_to_status(res, true);
	req->sub_count++;
	dsm_next(req);
}

static void dsm_next(struct nvmg_req *req)
{
	uint32_t nr = (le32toh(req->cmd.cdw10) & 0xff) + 1;
	const struct nvme_dsm_range *r = req->buf;

	while (req->sub_count < nr && !req->sub_status) {
		const struct nvme_dsm_range *cur = &r[req->sub_count];
		uint64_t slba = le64toh(cur->slba), nlb = le32toh(cur->nlb);

		if (!nlb) {
			req->sub_count++;
			continue;
		}
		submit(req, NVMG_BDEV_DEALLOCATE, slba << req->ns->lba_shift, nlb << req->ns->lba_shift,
		       NULL, dsm_done);
		return;
	}
	nvmg_req_complete(req, req->sub_status);
}

static void execute_dsm(struct nvmg_req *req)
{
	uint32_t nr = (le32toh(req->cmd.cdw10) & 0xff) + 1;
	const struct nvme_dsm_range *r = req->buf;

	/* Only deallocate changes anything; other attributes are hints. */
	if (!(le32toh(req->cmd.cdw11) & NVME_DSMGMT_AD)) {
		nvmg_req_complete(req, 0);
		return;
	}
	if (req->ns->readonly) {
		nvmg_req_complete(req, NVMG_SC_GENERIC(NVME_SC_NS_WRITE_PROTECTED) | NVME_SC_DNR);
		return;
	}
	for (uint32_t i = 0; i < nr; i++) {
		uint64_t slba = le64toh(r[i].slba), nlb = le32toh(r[i].nlb);

		if (slba > nvmg_ns_nsze(req->ns) || nlb > nvmg_ns_nsze(req->ns) - slba) {
			nvmg_req_complete(req, NVMG_SC_GENERIC(NVME_SC_LBA_RANGE) | NVME_SC_DNR);
			return;
		}
	}
	req->sub_count = 0;
	req->sub_status = 0;
	dsm_next(req);
}

static uint16_t check_range(const struct nvmg_req *req, uint64_t *nlb_out)
{
	uint64_t slba = slba_of(req), nlb = (le32toh(req->cmd.cdw12) & 0xffff) + 1ull;

	if (slba >= nvmg_ns_nsze(req->ns) || nlb > nvmg_ns_nsze(req->ns) - slba)
		return NVMG_SC_GENERIC(NVME_SC_LBA_RANGE) | NVME_SC_DNR;
	*nlb_out = nlb;
	return 0;
}

uint16_t nvmg_parse_io(struct nvmg_req *req)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	uint8_t op = req->cmd.opcode;
	uint64_t nlb = 0, len;
	uint16_t status;

	/* Every command asks: no lock, the controller keeps an atomic copy. */
	if (!atomic_load_explicit(&c->io_ready, memory_order_acquire))
		return NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR;
	if (nvmg_resv_opcode(op))
		/* Another node owns this subsystem's reservations: as a
		 * controller without them (ONCS says so too). */
		return atomic_load_explicit(&c->subsys->resv_off, memory_order_relaxed)
			       ? NVMG_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVME_SC_DNR
			       : nvmg_resv_parse(req);
	switch (op) {
	case nvme_cmd_read:
	case nvme_cmd_write:
	case nvme_cmd_compare:
	case nvme_cmd_flush:
	case nvme_cmd_write_zeroes:
	case nvme_cmd_dsm:
		break;
	default:
		return NVMG_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVME_SC_DNR;
	}
	req->ns = nvmg_subsys_get_ns(c->subsys, le32toh(req->cmd.nsid));
	if (!req->ns)
		return NVMG_SC_GENERIC(NVME_SC_INVALID_NS) | NVME_SC_DNR;
	if ((status = nvmg_ana_check(req->sq->port, req->ns)))
		return status;
	status = nvmg_resv_check(req);
	if (status)
		return status;
	switch (op) {
	case nvme_cmd_read:
	case nvme_cmd_write:
	case nvme_cmd_compare:
		status = check_range(req, &nlb);
		if (status)
			return status;
		len = nlb << req->ns->lba_shift;
		if (len > NVMG_MAX_DATA) /* beyond MDTS */
			return NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR;
		if (op == nvme_cmd_write && req->ns->readonly)
			return NVMG_SC_GENERIC(NVME_SC_NS_WRITE_PROTECTED) | NVME_SC_DNR;
		req->data_len = (uint32_t)len;
		req->dir = op == nvme_cmd_read ? NVMG_DIR_TO_HOST : NVMG_DIR_FROM_HOST;
		req->execute = op == nvme_cmd_compare ? execute_compare : execute_rw;
		return 0;
	case nvme_cmd_flush:
		req->execute = execute_flush;
		return 0;
	case nvme_cmd_write_zeroes:
		status = check_range(req, &nlb);
		if (status)
			return status;
		if (req->ns->readonly)
			return NVMG_SC_GENERIC(NVME_SC_NS_WRITE_PROTECTED) | NVME_SC_DNR;
		req->execute = execute_write_zeroes;
		return 0;
	default: /* dsm */
		req->dir = NVMG_DIR_FROM_HOST;
		req->data_len = ((le32toh(req->cmd.cdw10) & 0xff) + 1) * (uint32_t)sizeof(struct nvme_dsm_range);
		/* Linux sends room for 256 ranges whatever NR says (as devices
		 * may DMA that much): take the whole buffer, use NR ranges. */
		if (req->sgl_len > req->data_len && req->sgl_len <= 256 * sizeof(struct nvme_dsm_range))
			req->data_len = req->sgl_len;
		req->execute = execute_dsm;
		return 0;
	}
}
