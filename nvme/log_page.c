/* Get Log Page (admin opcode 02h). Each log is built whole, then the
 * host's window [LPO, LPO + NUMD) is copied out, zero-filled past the end. */
#include <stdlib.h>
#include <string.h>
#include "nvme/admin.h"
#include "nvme/resv.h"

#define INVALID_FIELD (NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR)
#define INVALID_LOG (NVMG_SC_CMD(NVME_SC_INVALID_LOG_PAGE) | NVME_SC_DNR)
#define TEMPERATURE_K 293
#define LOG_CDW14_OT (1u << 23) /* offset is an index, not bytes */

static const uint8_t io_lids[] = {
	NVME_LOG_LID_SUPPORTED_LOG_PAGES, NVME_LOG_LID_ERROR, NVME_LOG_LID_SMART,
	NVME_LOG_LID_FW_SLOT, NVME_LOG_LID_CHANGED_NS, NVME_LOG_LID_CMD_EFFECTS,
	NVME_LOG_LID_ANA,
	NVME_LOG_LID_RESERVATION,
};

static void log_supported(struct nvmg_req *req, uint64_t off)
{
	struct nvme_supported_log_pages log;

	memset(&log, 0, sizeof(log));
	for (size_t i = 0; i < sizeof(io_lids); i++)
		log.lid_support[io_lids[i]] = htole32(1); /* LSUPP */
	nvmg_req_copy_to_buf(req, &log, sizeof(log), off);
}

static void put_le128(uint8_t dst[16], uint64_t v)
{
	uint64_t le = htole64(v);

	memset(dst, 0, 16);
	memcpy(dst, &le, sizeof(le));
}

/* Data units are thousands of 512-byte units, rounded up. */
static uint64_t data_units(uint64_t bytes)
{
	return bytes / 512000 + (bytes % 512000 != 0);
}

/* A real device behind the namespace asked for (or the first one in the
 * subsystem for NSID FFFFFFFFh) answers with its own health data. */
static bool device_smart(struct nvmg_req *req, struct nvme_smart_log *log)
{
	struct nvmg_subsys *s = req->sq->ctrl->subsys;
	uint32_t nsid = le32toh(req->cmd.nsid);
	struct nvmg_ns *ns = NULL;
	bool ok;

	if (nsid && nsid != NVME_NSID_ALL) {
		ns = nvmg_subsys_get_ns(s, nsid);
	} else {
		pthread_mutex_lock(&s->lock);
		for (size_t i = 0; i < s->nr_ns && !ns; i++) {
			if (s->ns[i]->bdev && s->ns[i]->bdev->ops && s->ns[i]->bdev->ops->smart_log) {
				ns = s->ns[i];
				atomic_fetch_add(&ns->refs, 1);
			}
		}
		pthread_mutex_unlock(&s->lock);
	}
	if (!ns)
		return false;
	ok = ns->bdev && ns->bdev->ops && ns->bdev->ops->smart_log && !ns->bdev->ops->smart_log(ns->bdev, log);
	nvmg_ns_put(ns);
	return ok;
}

static void log_smart(struct nvmg_req *req, uint64_t off)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	struct nvmg_io_stats sum = { 0 };
	struct nvme_smart_log log;
	uint16_t temp = htole16(TEMPERATURE_K);

	if (device_smart(req, &log)) {
		nvmg_req_copy_to_buf(req, &log, sizeof(log), off);
		return;
	}

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i <= NVMG_MAX_IO_QUEUES; i++) {
		const struct nvmg_sq *sq = c->sqs[i];

		if (!sq)
			continue;
		sum.read_cmds += NVMG_STAT_GET(sq->stats.read_cmds);
		sum.write_cmds += NVMG_STAT_GET(sq->stats.write_cmds);
		sum.read_bytes += NVMG_STAT_GET(sq->stats.read_bytes);
		sum.write_bytes += NVMG_STAT_GET(sq->stats.write_bytes);
	}
	pthread_mutex_unlock(&c->lock);

	/* Controller-wide whatever the NSID: LPA does not claim per-namespace
	 * data, and hosts commonly ask with NSID FFFFFFFFh or 1. */
	memset(&log, 0, sizeof(log));
	memcpy(log.temperature, &temp, sizeof(temp));
	log.avail_spare = 100;
	log.spare_thresh = 10;
	put_le128(log.data_units_read, data_units(sum.read_bytes));
	put_le128(log.data_units_written, data_units(sum.write_bytes));
	put_le128(log.host_reads, sum.read_cmds);
	put_le128(log.host_writes, sum.write_cmds);
	nvmg_req_copy_to_buf(req, &log, sizeof(log), off);
}

static void log_fw_slot(struct nvmg_req *req, uint64_t off)
{
	struct nvme_firmware_slot log;

	memset(&log, 0, sizeof(log));
	log.afi = 1; /* running from slot 1 */
	nvmg_copy_padded(log.frs[0], sizeof(log.frs[0]), NVMG_VERSION);
	nvmg_req_copy_to_buf(req, &log, sizeof(log), off);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static void log_changed_ns(struct nvmg_req *req, uint64_t off, bool rae)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	uint32_t list[NVMG_MAX_CHANGED_NS];
	unsigned n = 0;

	memset(list, 0, sizeof(list));
	pthread_mutex_lock(&c->lock);
	if (c->nr_changed_ns > NVMG_MAX_CHANGED_NS) {
		list[0] = NVME_NSID_ALL; /* more changed than fit */
	} else {
		n = c->nr_changed_ns;
		memcpy(list, c->changed_ns, n * sizeof(list[0]));
	}
	if (!rae)
		c->nr_changed_ns = 0;
	pthread_mutex_unlock(&c->lock);
	/* Outside c->lock: it takes the lock itself. */
	if (!rae)
		nvmg_ctrl_clear_aen_mask(c, NVME_AER_NOTICE);

	/* The spec wants increasing NSID order; events arrive in any order. */
	qsort(list, n, sizeof(list[0]), cmp_u32);
	for (unsigned i = 0; i < NVMG_MAX_CHANGED_NS && list[i]; i++)
		list[i] = htole32(list[i]);
	nvmg_req_copy_to_buf(req, list, sizeof(list), off);
}

static void log_cmd_effects(struct nvmg_req *req, uint64_t off)
{
	static const uint8_t admin_ops[] = {
		nvme_admin_get_log_page, nvme_admin_identify, nvme_admin_abort_cmd,
		nvme_admin_set_features, nvme_admin_get_features, nvme_admin_async_event,
		nvme_admin_keep_alive,
	};
	struct nvme_cmd_effects_log log;
	const uint32_t supp = NVME_CMD_EFFECTS_CSUPP;
	const uint32_t changes = NVME_CMD_EFFECTS_CSUPP | NVME_CMD_EFFECTS_LBCC;

	memset(&log, 0, sizeof(log));
	for (size_t i = 0; i < sizeof(admin_ops); i++)
		log.acs[admin_ops[i]] = htole32(supp);
	log.iocs[nvme_cmd_read] = htole32(supp);
	log.iocs[nvme_cmd_compare] = htole32(supp);
	log.iocs[nvme_cmd_flush] = htole32(supp);
	log.iocs[nvme_cmd_write] = htole32(changes);
	log.iocs[nvme_cmd_write_zeroes] = htole32(changes);
	log.iocs[nvme_cmd_dsm] = htole32(changes);
	nvmg_resv_cmd_effects(log.iocs);
	nvmg_req_copy_to_buf(req, &log, sizeof(log), off);
}

/* LSP bit 0 is RGO: groups only, no NSID lists. */
static uint16_t log_ana(struct nvmg_req *req, uint64_t off, bool rae)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	uint8_t lsp = (le32toh(req->cmd.cdw10) >> 8) & 0xf;
	size_t len;
	void *log;

	if (lsp & ~(uint8_t)NVME_LOG_ANA_LSP_RGO_GROUPS_ONLY)
		return INVALID_FIELD;
	log = nvmg_ana_log(c, lsp & NVME_LOG_ANA_LSP_RGO_GROUPS_ONLY, &len);
	if (!log)
		return NVMG_SC_GENERIC(NVME_SC_INTERNAL);
	nvmg_req_copy_to_buf(req, log, len, off);
	free(log);
	if (!rae)
		nvmg_ctrl_clear_aen_mask(c, NVME_AER_NOTICE);
	return 0;
}

void nvmg_execute_get_log_page(struct nvmg_req *req)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint32_t cdw14 = le32toh(req->cmd.cdw14);
	uint8_t lid = cdw10 & 0xff;
	bool rae = cdw10 & (1u << 15);
	uint8_t csi = cdw14 >> 24;
	uint64_t off = le32toh(req->cmd.cdw12) | ((uint64_t)le32toh(req->cmd.cdw13) << 32);
	uint16_t status = 0;

	/* Byte offsets must be dword aligned; index offsets are unsupported. */
	if ((off & 3) || (cdw14 & LOG_CDW14_OT)) {
		nvmg_req_complete(req, INVALID_FIELD);
		return;
	}
	if (c->subsys->discovery) {
		if (lid != NVME_LOG_LID_DISCOVER) {
			status = INVALID_LOG;
		} else {
			status = nvmg_discovery_log(req->sq, req->buf, off, req->data_len);
			if (!status && !rae)
				nvmg_ctrl_clear_aen_mask(c, NVME_AER_NOTICE);
		}
		nvmg_req_complete(req, status);
		return;
	}

	switch (lid) {
	case NVME_LOG_LID_SUPPORTED_LOG_PAGES:
		log_supported(req, off);
		break;
	case NVME_LOG_LID_ERROR:
		/* No entries are recorded: an all-zero log says so. */
		nvmg_req_copy_to_buf(req, NULL, 0, off);
		if (!rae)
			nvmg_ctrl_clear_aen_mask(c, NVME_AER_ERROR);
		break;
	case NVME_LOG_LID_SMART:
		log_smart(req, off);
		if (!rae)
			nvmg_ctrl_clear_aen_mask(c, NVME_AER_SMART);
		break;
	case NVME_LOG_LID_FW_SLOT:
		log_fw_slot(req, off);
		break;
	case NVME_LOG_LID_CHANGED_NS:
		log_changed_ns(req, off, rae);
		break;
	case NVME_LOG_LID_ANA:
		status = log_ana(req, off, rae);
		break;
	case NVME_LOG_LID_CMD_EFFECTS:
		if (csi != NVME_CSI_NVM)
			status = INVALID_FIELD;
		else
			log_cmd_effects(req, off);
		break;
	case NVME_LOG_LID_RESERVATION:
		nvmg_resv_log_page(req, off, rae);
		break;
	default:
		status = INVALID_LOG;
		break;
	}
	nvmg_req_complete(req, status);
}
