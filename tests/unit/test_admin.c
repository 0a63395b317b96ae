/* Unit tests for the admin command set: nvme/admin.c, identify.c,
 * log_page.c, features.c, discovery.c and ident.c, with the core functions
 * they call replaced by the small fakes of admin_world.h.
 *
 * gcc -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -fsanitize=address,undefined \
 *   tests/unit/test_admin.c nvme/admin.c nvme/identify.c nvme/log_page.c \
 *   nvme/features.c nvme/discovery.c nvme/ident.c -lcrypto -o /tmp/test_admin */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "nvme/admin.h"

/* ---- harness ---- */
struct tctx {
	int pass, fail;
};

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (cond) {                                                      \
			t->pass++;                                               \
		} else {                                                         \
			t->fail++;                                               \
			fprintf(stderr, "%s:%d: %s: FAILED %s\n", __FILE__, __LINE__, \
				__func__, #cond);                                \
		}                                                                \
	} while (0)

#include "tests/unit/admin_world.h"

/* Parse as the core would, then run the handler. Returns the parse
 * status, or 0 with r->status holding the completion. */
static uint16_t run(struct treq *r)
{
	struct nvmg_sq *sq = r->req.sq;
	uint16_t st = sq->ctrl->subsys->discovery ? nvmg_parse_discovery_admin(&r->req)
						  : nvmg_parse_admin(&r->req);

	if (st)
		return st;
	if (r->req.data_len > sizeof(r->buf)) {
		fprintf(stderr, "data_len %u exceeds test buffer\n", r->req.data_len);
		abort();
	}
	r->req.execute(&r->req);
	return 0;
}

static uint32_t get_log_cdw10(uint8_t lid, uint32_t len, bool rae)
{
	uint32_t numd = len / 4 - 1;

	return lid | (rae ? 1u << 15 : 0) | (numd & 0xffff) << 16;
}

static uint32_t dw0(const struct treq *r)
{
	return (uint32_t)le64toh(r->req.cqe.result);
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* ---- tests ---- */
static void test_parse(struct tctx *t)
{
	struct world *w = world_new();
	struct treq *r;

	r = new_req(&w->asq, 0xc5, 0, 0, 0);
	CHECK(run(r) == SC_INVALID_OPCODE);
	free(r);

	/* Not enabled yet: Command Sequence Error. */
	w->ctrl.csts = 0;
	r = new_req(&w->asq, nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CTRL, 0);
	CHECK(run(r) == SC_SEQ_ERROR);
	free(r);
	w->ctrl.csts = 1;

	r = new_req(&w->asq, nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CTRL, 0);
	CHECK(nvmg_parse_admin(&r->req) == 0);
	CHECK(r->req.data_len == 4096 && r->req.dir == NVMG_DIR_TO_HOST);
	CHECK(r->req.execute == nvmg_execute_identify);
	free(r);

	/* NUMDL in cdw10 31:16, NUMDU in cdw11 15:0. */
	r = new_req(&w->asq, nvme_admin_get_log_page, 0, 0x00ff0002, 0x0001);
	CHECK(nvmg_parse_admin(&r->req) == 0);
	CHECK(r->req.data_len == (0x100ffu + 1) * 4);
	free(r);
	r = new_req(&w->asq, nvme_admin_get_log_page, 0, 0xffff0002, 0x0004);
	CHECK(nvmg_parse_admin(&r->req) == SC_INVALID_FIELD);
	free(r);

	r = new_req(&w->asq, nvme_admin_set_features, 0, NVME_FEAT_FID_TIMESTAMP, 0);
	CHECK(nvmg_parse_admin(&r->req) == 0);
	CHECK(r->req.dir == NVMG_DIR_FROM_HOST && r->req.data_len == 8);
	free(r);
	r = new_req(&w->asq, nvme_admin_get_features, 0, NVME_FEAT_FID_NUM_QUEUES, 0);
	CHECK(nvmg_parse_admin(&r->req) == 0);
	CHECK(r->req.dir == NVMG_DIR_NONE && r->req.data_len == 0);
	free(r);
	r = new_req(&w->asq, nvme_admin_get_features, 0, NVME_FEAT_FID_HOST_ID, 1);
	CHECK(nvmg_parse_admin(&r->req) == 0);
	CHECK(r->req.dir == NVMG_DIR_TO_HOST && r->req.data_len == 16);
	free(r);
	r = new_req(&w->asq, nvme_admin_get_features, 0, NVME_FEAT_FID_HOST_ID, 0);
	CHECK(nvmg_parse_admin(&r->req) == SC_INVALID_FIELD);
	free(r);
	r = new_req(&w->asq, nvme_admin_set_features, 0, NVME_FEAT_FID_HOST_ID, 1);
	CHECK(nvmg_parse_admin(&r->req) == SC_SEQ_ERROR);
	free(r);
	r = new_req(&w->asq, nvme_admin_set_features, 0, NVME_FEAT_FID_LBA_RANGE, 0);
	CHECK(nvmg_parse_admin(&r->req) == SC_INVALID_FIELD);
	free(r);

	/* Keep Alive and Abort. */
	r = new_req(&w->asq, nvme_admin_keep_alive, 0, 0, 0);
	CHECK(run(r) == 0 && r->done && r->status == 0);
	CHECK(w->ctrl.last_keepalive_ms == 1);
	free(r);
	r = new_req(&w->asq, nvme_admin_abort_cmd, 0, 7u << 16 | 1, 0);
	CHECK(run(r) == 0 && r->done && r->status == 0 && (dw0(r) & 1));
	free(r);
	r = new_req(&w->asq, nvme_admin_async_event, 0, 0, 0);
	CHECK(nvmg_parse_admin(&r->req) == 0 && r->req.execute == nvmg_execute_async_event);
	free(r);

	/* Discovery controllers: a narrower command set. */
	r = new_req(&w->dsq, nvme_admin_identify, 0, NVME_IDENTIFY_CNS_NS, 0);
	CHECK(run(r) == SC_INVALID_FIELD);
	free(r);
	r = new_req(&w->dsq, nvme_admin_format_nvm, 0, 0, 0);
	CHECK(run(r) == SC_INVALID_OPCODE);
	free(r);
	r = new_req(&w->dsq, nvme_admin_abort_cmd, 0, 0, 0);
	CHECK(run(r) == SC_INVALID_OPCODE);
	free(r);
	r = new_req(&w->dsq, nvme_admin_set_features, 0, NVME_FEAT_FID_NUM_QUEUES, 0);
	CHECK(run(r) == SC_INVALID_FIELD);
	free(r);
	r = new_req(&w->dsq, nvme_admin_set_features, 0, NVME_FEAT_FID_TIMESTAMP, 0);
	CHECK(run(r) == SC_INVALID_FIELD);
	free(r);
	r = new_req(&w->dsq, nvme_admin_keep_alive, 0, 0, 0);
	CHECK(run(r) == 0 && r->done && r->status == 0);
	free(r);
	w->dctrl.cc = 0;
	r = new_req(&w->dsq, nvme_admin_keep_alive, 0, 0, 0);
	CHECK(run(r) == SC_SEQ_ERROR);
	free(r);
	world_free(w);
}

static void test_identify_ctrl(struct tctx *t)
{
	struct world *w = world_new();
	struct treq *r = new_req(&w->asq, nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CTRL, 0);
	const struct nvme_id_ctrl *id = (const void *)r->buf;
	char sn[21];

	CHECK(run(r) == 0 && r->done && r->status == 0);
	CHECK(le16toh(id->cntlid) == 5);
	CHECK(!strcmp(id->subnqn, NQN_A));
	CHECK(le32toh(id->ioccsz) == (64 + 16384) / 16);
	CHECK(le32toh(id->iorcsz) == 1);
	CHECK(le16toh(id->icdoff) == 0);
	CHECK(le16toh(id->kas) == NVMG_KAS);
	CHECK(le16toh(id->maxcmd) == NVMG_MAXCMD);
	CHECK((le32toh(id->sgls) & 3) == 1);
	CHECK(le32toh(id->sgls) & NVME_CTRL_SGLS_OFFSET);
	CHECK(!(le32toh(id->sgls) & NVME_CTRL_SGLS_KEYED));
	CHECK(id->cntrltype == NVME_CTRL_CNTRLTYPE_IO);
	CHECK(le32toh(id->oaes) == (NVME_CTRL_OAES_NA | NVME_CTRL_OAES_ANA));
	CHECK(le32toh(id->ctratt) & NVME_CTRL_CTRATT_128_ID);
	CHECK(id->cmic & NVME_CTRL_CMIC_MULTI_ANA_REPORTING);
	CHECK(le32toh(id->anagrpmax) == NVMG_ANAGRPMAX && le32toh(id->nanagrpid) == NVMG_ANAGRPMAX);
	CHECK(le32toh(id->mnan) && le32toh(id->mnan) <= le32toh(id->nn));
	CHECK(le32toh(id->nn) == 1024);
	CHECK(id->mdts == NVMG_MDTS);
	CHECK(le32toh(id->ver) == 0x20000);
	CHECK(id->sqes == 0x66 && id->cqes == 0x44);
	CHECK(id->aerl == NVMG_AERL && id->acl == 3);
	CHECK(id->elpe == NVMG_ERROR_LOG_ENTRIES - 1);
	CHECK(id->lpa & NVME_CTRL_LPA_CMD_EFFECTS);
	CHECK(id->lpa & NVME_CTRL_LPA_EXTENDED);
	CHECK(le16toh(id->oncs) == (NVME_CTRL_ONCS_COMPARE | NVME_CTRL_ONCS_DSM |
				    NVME_CTRL_ONCS_WRITE_ZEROES | NVME_CTRL_ONCS_TIMESTAMP |
				    NVME_CTRL_ONCS_RESERVATIONS));
	CHECK(id->vwc & NVME_CTRL_VWC_PRESENT);
	CHECK(id->frmw == 0x03);
	CHECK(le16toh(id->psd[0].mp) == 0x09c4);
	nvmg_derive_serial(NQN_A, sn);
	CHECK(!memcmp(id->sn, sn, 20));
	CHECK(!memcmp(id->mn, "nvmegate", 8) && id->mn[8] == ' ' && id->mn[39] == ' ');
	CHECK(!memcmp(id->fr, NVMG_VERSION, strlen(NVMG_VERSION)) && id->fr[7] == ' ');
	free(r);

	/* No volatile cache anywhere: VWC not present. */
	w->bdev_cache.volatile_cache = false;
	r = new_req(&w->asq, nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CTRL, 0);
	id = (const void *)r->buf;
	CHECK(run(r) == 0 && r->status == 0 && id->vwc == 0);
	free(r);

	/* Discovery controller. */
	r = new_req(&w->dsq, nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CTRL, 0);
	id = (const void *)r->buf;
	CHECK(run(r) == 0 && r->done && r->status == 0);
	CHECK(id->cntrltype == NVME_CTRL_CNTRLTYPE_DISCOVERY);
	CHECK(le32toh(id->oaes) == (uint32_t)NVME_CTRL_OAES_DL);
	CHECK(!strcmp(id->subnqn, NVMG_DISC_NQN));
	CHECK(le16toh(id->cntlid) == 9);
	CHECK(!(id->lpa & NVME_CTRL_LPA_CMD_EFFECTS));
	CHECK(le16toh(id->oncs) == 0 && le32toh(id->nn) == 0);
	CHECK(le16toh(id->maxcmd) == NVMG_MAXCMD && le32toh(id->iorcsz) == 1);
	free(r);

	/* NN covers every NSID. */
	w->ns7.nsid = 3000;
	r = new_req(&w->asq, nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CTRL, 0);
	id = (const void *)r->buf;
	CHECK(run(r) == 0 && le32toh(id->nn) == 3000);
	free(r);
	world_free(w);
}

static void test_identify_ns(struct tctx *t)
{
	struct world *w = world_new();
	struct treq *r;
	const struct nvme_id_ns *id;

	r = new_req(&w->asq, nvme_admin_identify, 1, NVME_IDENTIFY_CNS_NS, 0);
	id = (const void *)r->buf;
	CHECK(run(r) == 0 && r->done && r->status == 0);
	CHECK(le64toh(id->nsze) == (1ull << 30) >> 12);
	CHECK(le64toh(id->ncap) == le64toh(id->nsze) && le64toh(id->nuse) == le64toh(id->nsze));
	CHECK(id->nlbaf == 0 && id->flbas == 0 && id->lbaf[0].ds == 12);
	CHECK(id->dlfeat == NVME_NS_DLFEAT_RB_ALL_0S);
	CHECK(id->nsfeat & NVME_NS_FEAT_ID_REUSE);
	CHECK(id->nsattr == 0);
	CHECK(!memcmp(id->nguid, w->ns1.nguid, 16) && !memcmp(id->eui64, w->ns1.eui64, 8));
	CHECK(atomic_load(&w->ns1.refs) == 0);
	free(r);

	r = new_req(&w->asq, nvme_admin_identify, 2, NVME_IDENTIFY_CNS_NS, 0);
	id = (const void *)r->buf;
	CHECK(run(r) == 0 && r->status == 0);
	CHECK(id->dlfeat == 0);
	CHECK(id->nsattr == NVME_NS_NSATTR_WRITE_PROTECTED);
	CHECK(id->lbaf[0].ds == 9 && le64toh(id->nsze) == 2048);
	free(r);

	/* Inactive but valid: zeros, success (Linux relies on it). */
	r = new_req(&w->asq, nvme_admin_identify, 5, NVME_IDENTIFY_CNS_NS, 0);
	CHECK(run(r) == 0 && r->done && r->status == 0 && all_zero(r->buf, 4096));
	free(r);
	r = new_req(&w->asq, nvme_admin_identify, 0, NVME_IDENTIFY_CNS_NS, 0);
	CHECK(run(r) == 0 && r->status == SC_INVALID_NS);
	free(r);
	r = new_req(&w->asq, nvme_admin_identify, 0xffffffff, NVME_IDENTIFY_CNS_NS, 0);
	CHECK(run(r) == 0 && r->status == SC_INVALID_NS);
	free(r);
	r = new_req(&w->asq, nvme_admin_identify, 2000, NVME_IDENTIFY_CNS_NS, 0);
	CHECK(run(r) == 0 && r->status == SC_INVALID_NS);
	free(r);

	/* CNS 05h: NVM only. */
	r = new_req(&w->asq, nvme_admin_identify, 1, NVME_IDENTIFY_CNS_CSI_NS, NVME_CSI_NVM << 24);
	CHECK(run(r) == 0 && r->status == 0 && all_zero(r->buf, 4096));
	free(r);
	r = new_req(&w->asq, nvme_admin_identify, 1, NVME_IDENTIFY_CNS_CSI_NS, NVME_CSI_ZNS << 24);
	CHECK(run(r) == 0 && r->status == SC_INVALID_FIELD);
	free(r);

	/* CNS 06h. */
	r = new_req(&w->asq, nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CSI_CTRL, 0);
	CHECK(run(r) == 0 && r->status == 0 && all_zero(r->buf, 4096));
	free(r);
	r = new_req(&w->asq, nvme_admin_identify, 0, NVME_IDENTIFY_CNS_CSI_CTRL, NVME_CSI_KV << 24);
	CHECK(run(r) == 0 && r->status == SC_INVALID_FIELD);
	free(r);

	/* CNS 08h. */
	r = new_req(&w->asq, nvme_admin_identify, 2, NVME_IDENTIFY_CNS_CSI_INDEPENDENT_ID_NS, 0);
	{
		const struct nvme_id_independent_id_ns *ind = (const void *)r->buf;

		CHECK(run(r) == 0 && r->status == 0);
		CHECK(ind->nstat == 1 && ind->nsattr == 1 && (ind->nsfeat & NVME_NS_FEAT_ID_REUSE));
	}
	free(r);
	r = new_req(&w->asq, nvme_admin_identify, 6, NVME_IDENTIFY_CNS_CSI_INDEPENDENT_ID_NS, 0);
	CHECK(run(r) == 0 && r->status == 0 && all_zero(r->buf, 4096));
	free(r);

	/* CNS 1Ch. */
	r = new_req(&w->asq, nvme_admin_identify, 0, NVME_IDENTIFY_CNS_COMMAND_SET_STRUCTURE, 0);
	CHECK(run(r) == 0 && r->status == 0);
	CHECK(le64toh(((const struct nvme_id_iocs *)(const void *)r->buf)->iocsc[0]) == 1);
	CHECK(all_zero(r->buf + 8, 4096 - 8));
	free(r);

	/* Invalid CNS. */
	r = new_req(&w->asq, nvme_admin_identify, 0, NVME_IDENTIFY_CNS_ALLOCATED_NS_LIST, 0);
	CHECK(run(r) == 0 && r->done && r->status == SC_INVALID_FIELD);
	free(r);
	r = new_req(&w->asq, nvme_admin_identify, 0, NVME_IDENTIFY_CNS_NVMSET_LIST, 0);
	CHECK(run(r) == 0 && r->status == SC_INVALID_FIELD);
	free(r);
	world_free(w);
}

static void test_identify_lists(struct tctx *t)
{
	struct world *w = world_new();
	struct treq *r;
	const uint32_t *list;

	r = new_req(&w->asq, nvme_admin_identify, 0, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0);
	list = (const void *)r->buf;
	CHECK(run(r) == 0 && r->status == 0);
	CHECK(le32toh(list[0]) == 1 && le32toh(list[1]) == 2 && le32toh(list[2]) == 7);
	CHECK(all_zero(&list[3], 4096 - 12));
	free(r);
	r = new_req(&w->asq, nvme_admin_identify, 2, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0);
	list = (const void *)r->buf;
	CHECK(run(r) == 0 && r->status == 0 && le32toh(list[0]) == 7 && list[1] == 0);
	free(r);
	r = new_req(&w->asq, nvme_admin_identify, 0xfffffffe, NVME_IDENTIFY_CNS_NS_ACTIVE_LIST, 0);
	CHECK(run(r) == 0 && r->status == SC_INVALID_NS);
	free(r);

	/* NS descriptor list: EUI64, NGUID, UUID, CSI, then zeros. */
	r = new_req(&w->asq, nvme_admin_identify, 7, NVME_IDENTIFY_CNS_NS_DESC_LIST, 0);
	CHECK(run(r) == 0 && r->status == 0);
	{
		const uint8_t *p = r->buf;
		static const uint8_t types[] = { NVME_NIDT_EUI64, NVME_NIDT_NGUID, NVME_NIDT_UUID,
						 NVME_NIDT_CSI };
		static const uint8_t lens[] = { 8, 16, 16, 1 };
		const uint8_t *vals[] = { w->ns7.eui64, w->ns7.nguid, w->ns7.uuid, NULL };
		size_t off = 0;

		for (int i = 0; i < 4; i++) {
			CHECK(p[off] == types[i] && p[off + 1] == lens[i]);
			CHECK(p[off + 2] == 0 && p[off + 3] == 0);
			if (vals[i])
				CHECK(!memcmp(p + off + 4, vals[i], lens[i]));
			else
				CHECK(p[off + 4] == NVME_CSI_NVM);
			off += 4 + lens[i];
		}
		CHECK(all_zero(p + off, 4096 - off));
	}
	free(r);
	r = new_req(&w->asq, nvme_admin_identify, 3, NVME_IDENTIFY_CNS_NS_DESC_LIST, 0);
	CHECK(run(r) == 0 && r->status == SC_INVALID_NS);
	free(r);
	CHECK(atomic_load(&w->ns7.refs) == 0);
	world_free(w);
}

static void test_log_pages(struct tctx *t)
{
	struct world *w = world_new();
	struct treq *r;
	const uint32_t *list;

	/* Changed namespace list, RAE=1 keeps it. */
	w->ctrl.changed_ns[0] = 7; /* reported in increasing order */
	w->ctrl.changed_ns[1] = 2;
	w->ctrl.nr_changed_ns = 2;
	w->ctrl.aen_masked = 1u << NVME_AER_NOTICE;
	r = new_req(&w->asq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_CHANGED_NS, 4096, true), 0);
	list = (const void *)r->buf;
	CHECK(run(r) == 0 && r->done && r->status == 0);
	CHECK(le32toh(list[0]) == 2 && le32toh(list[1]) == 7 && list[2] == 0);
	CHECK(w->ctrl.nr_changed_ns == 2 && w->ctrl.aen_masked);
	free(r);
	/* RAE=0 clears it and unmasks notices. */
	r = new_req(&w->asq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_CHANGED_NS, 4096, false), 0);
	list = (const void *)r->buf;
	CHECK(run(r) == 0 && r->status == 0 && le32toh(list[1]) == 7);
	CHECK(w->ctrl.nr_changed_ns == 0 && w->ctrl.aen_masked == 0);
	free(r);
	/* Overflow: FFFFFFFFh first, then nothing. */
	w->ctrl.nr_changed_ns = NVMG_MAX_CHANGED_NS + 1;
	r = new_req(&w->asq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_CHANGED_NS, 4096, false), 0);
	list = (const void *)r->buf;
	CHECK(run(r) == 0 && r->status == 0);
	CHECK(list[0] == 0xffffffff && all_zero(&list[1], 4092));
	CHECK(w->ctrl.nr_changed_ns == 0);
	free(r);

	/* Misaligned offset. */
	r = new_req(&w->asq, nvme_admin_get_log_page, 0, get_log_cdw10(NVME_LOG_LID_SMART, 512, true),
		    0);
	r->req.cmd.cdw12 = htole32(2);
	CHECK(run(r) == 0 && r->status == SC_INVALID_FIELD);
	free(r);

	/* Unsupported pages. */
	r = new_req(&w->asq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_DEVICE_SELF_TEST, 4096, true), 0);
	CHECK(run(r) == 0 && r->status == SC_INVALID_LOG);
	CHECK((r->status >> 8 & 7) == NVME_SCT_CMD_SPECIFIC && (r->status & 0xff) == 0x09);
	free(r);
	r = new_req(&w->asq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_DISCOVER, 4096, true), 0);
	CHECK(run(r) == 0 && r->status == SC_INVALID_LOG);
	free(r);
	r = new_req(&w->dsq, nvme_admin_get_log_page, 0, get_log_cdw10(NVME_LOG_LID_SMART, 512, true),
		    0);
	CHECK(run(r) == 0 && r->status == SC_INVALID_LOG);
	free(r);

	/* Effects. */
	r = new_req(&w->asq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_CMD_EFFECTS, 4096, true), 0);
	CHECK(run(r) == 0 && r->status == 0);
	{
		const struct nvme_cmd_effects_log *e = (const void *)r->buf;

		CHECK(le32toh(e->acs[nvme_admin_identify]) == NVME_CMD_EFFECTS_CSUPP);
		CHECK(le32toh(e->acs[nvme_admin_keep_alive]) == NVME_CMD_EFFECTS_CSUPP);
		CHECK(e->acs[nvme_admin_format_nvm] == 0);
		CHECK(le32toh(e->iocs[nvme_cmd_read]) == NVME_CMD_EFFECTS_CSUPP);
		CHECK(le32toh(e->iocs[nvme_cmd_write]) ==
		      (NVME_CMD_EFFECTS_CSUPP | NVME_CMD_EFFECTS_LBCC));
		CHECK(le32toh(e->iocs[nvme_cmd_dsm]) & NVME_CMD_EFFECTS_LBCC);
		CHECK(le32toh(e->iocs[nvme_cmd_resv_register]) == NVME_CMD_EFFECTS_CSUPP);
		CHECK(e->iocs[nvme_cmd_verify] == 0);
	}
	free(r);

	/* SMART sums the queues' counters. */
	w->ctrl.sqs[0] = &w->asq;
	w->ctrl.sqs[1] = &w->iosq1;
	w->ctrl.sqs[2] = &w->iosq2;
	w->iosq1.stats.read_cmds = 10;
	w->iosq1.stats.read_bytes = 512000;
	w->iosq2.stats.read_cmds = 5;
	w->iosq2.stats.read_bytes = 1;
	w->iosq2.stats.write_cmds = 3;
	w->iosq2.stats.write_bytes = 4096;
	r = new_req(&w->asq, nvme_admin_get_log_page, 0xffffffff,
		    get_log_cdw10(NVME_LOG_LID_SMART, 512, false), 0);
	CHECK(run(r) == 0 && r->status == 0);
	{
		const struct nvme_smart_log *s = (const void *)r->buf;

		CHECK(s->temperature[0] == (293 & 0xff) && s->temperature[1] == 293 >> 8);
		CHECK(s->avail_spare == 100 && s->spare_thresh == 10);
		CHECK(s->data_units_read[0] == 2 && all_zero(s->data_units_read + 1, 15));
		CHECK(s->data_units_written[0] == 1);
		CHECK(s->host_reads[0] == 15 && s->host_writes[0] == 3);
	}
	free(r);

	/* Firmware slot; a window past the end reads zeros. */
	r = new_req(&w->asq, nvme_admin_get_log_page, 0, get_log_cdw10(NVME_LOG_LID_FW_SLOT, 512, true),
		    0);
	CHECK(run(r) == 0 && r->status == 0);
	CHECK(r->buf[0] == 1 && !memcmp(r->buf + 8, NVMG_VERSION, strlen(NVMG_VERSION)));
	CHECK(r->buf[15] == ' ');
	free(r);
	r = new_req(&w->asq, nvme_admin_get_log_page, 0, get_log_cdw10(NVME_LOG_LID_FW_SLOT, 64, true),
		    0);
	r->req.cmd.cdw13 = htole32(1);
	CHECK(run(r) == 0 && r->status == 0 && all_zero(r->buf, 64));
	free(r);
	/* Partial window at an offset. */
	r = new_req(&w->asq, nvme_admin_get_log_page, 0, get_log_cdw10(NVME_LOG_LID_FW_SLOT, 8, true),
		    0);
	r->req.cmd.cdw12 = htole32(8);
	CHECK(run(r) == 0 && r->status == 0 && !memcmp(r->buf, NVMG_VERSION, strlen(NVMG_VERSION)));
	free(r);

	/* Supported log pages and error log. */
	r = new_req(&w->asq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_SUPPORTED_LOG_PAGES, 1024, true), 0);
	list = (const void *)r->buf;
	CHECK(run(r) == 0 && r->status == 0);
	CHECK(le32toh(list[NVME_LOG_LID_CHANGED_NS]) == 1 && le32toh(list[NVME_LOG_LID_ANA]) == 1);
	free(r);
	r = new_req(&w->asq, nvme_admin_get_log_page, 0, get_log_cdw10(NVME_LOG_LID_ERROR, 4096, true),
		    0);
	CHECK(run(r) == 0 && r->status == 0 && all_zero(r->buf, 4096));
	free(r);
	world_free(w);
}

static const struct nvmf_disc_log_entry *disc_entry(const uint8_t *buf, unsigned i)
{
	return (const void *)(buf + 1024 + 1024 * i);
}

static void test_discovery_log(struct tctx *t)
{
	struct world *w = world_new();
	const struct nvmf_discovery_log *hdr;
	const struct nvmf_disc_log_entry *e;
	struct treq *r;
	char pad[NVMF_TRSVCID_SIZE];

	/* HOST1 on p1: current discovery entry + A (B does not allow HOST1,
	 * C is not on p1). */
	w->dctrl.aen_masked = 1u << NVME_AER_NOTICE;
	r = new_req(&w->dsq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_DISCOVER, 4096, false), 0);
	hdr = (const void *)r->buf;
	CHECK(run(r) == 0 && r->done && r->status == 0);
	CHECK(le64toh(hdr->genctr) == 42 && le64toh(hdr->numrec) == 2 && hdr->recfmt == 0);
	e = disc_entry(r->buf, 0);
	CHECK(e->subtype == NVME_NQN_CURR && !strcmp(e->subnqn, NVMG_DISC_NQN));
	CHECK(le16toh(e->eflags) & NVMF_DISC_EFLAGS_EPCSD);
	e = disc_entry(r->buf, 1);
	CHECK(e->subtype == NVME_NQN_NVME && !strcmp(e->subnqn, NQN_A));
	CHECK(e->trtype == NVMF_TRTYPE_TCP && e->adrfam == NVMF_ADDR_FAMILY_IP4);
	CHECK(e->treq == (NVMF_TREQ_NOT_SPECIFIED | NVMF_TREQ_DISABLE_SQFLOW));
	CHECK(le16toh(e->portid) == 1 && le16toh(e->cntlid) == 0xffff && le16toh(e->asqsz) == 32);
	memset(pad, ' ', sizeof(pad));
	memcpy(pad, "4420", 4);
	CHECK(!memcmp(e->trsvcid, pad, sizeof(pad)));
	CHECK(!memcmp(e->traddr, "10.0.0.1 ", 9) && e->traddr[NVMF_TRADDR_SIZE - 1] == ' ');
	CHECK(e->tsas.tcp.sectype == NVMF_TCP_SECTYPE_NONE);
	CHECK(all_zero(r->buf + 3 * 1024, 1024));
	CHECK(w->dctrl.aen_masked == 0);
	free(r);

	/* HOST2 also sees B. */
	snprintf(w->dctrl.hostnqn, sizeof(w->dctrl.hostnqn), "%s", HOST2);
	r = new_req(&w->dsq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_DISCOVER, 4096, true), 0);
	hdr = (const void *)r->buf;
	CHECK(run(r) == 0 && r->status == 0 && le64toh(hdr->numrec) == 3);
	CHECK(!strcmp(disc_entry(r->buf, 2)->subnqn, NQN_B));
	free(r);

	/* Window: LPO 2048 returns entry 1 then zeros. */
	r = new_req(&w->dsq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_DISCOVER, 4096, true), 0);
	r->req.cmd.cdw12 = htole32(2048);
	CHECK(run(r) == 0 && r->status == 0);
	e = (const void *)r->buf;
	CHECK(!strcmp(e->subnqn, NQN_A) && !strcmp(((const struct nvmf_disc_log_entry *)
						    (const void *)(r->buf + 1024))->subnqn, NQN_B));
	CHECK(all_zero(r->buf + 2048, 2048));
	free(r);
	/* Window inside a record: the header's NUMREC and beyond. */
	r = new_req(&w->dsq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_DISCOVER, 16, true), 0);
	r->req.cmd.cdw12 = htole32(8);
	CHECK(run(r) == 0 && r->status == 0 && le64toh(*(const uint64_t *)(const void *)r->buf) == 3);
	free(r);
	/* An offset near 2^64 reads zeros and does not wrap. */
	r = new_req(&w->dsq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_DISCOVER, 1024, true), 0);
	r->req.cmd.cdw12 = htole32(0xfffffffc);
	r->req.cmd.cdw13 = htole32(0xffffffff);
	CHECK(run(r) == 0 && r->status == 0 && all_zero(r->buf, 1024));
	free(r);

	/* A referral of p1: listed after the subsystems, as another
	 * discovery service; a disabled one is not in the model at all. */
	{
		static const struct nvmg_referral ref = {
			.portid = 9, .trtype = NVMF_TRTYPE_TCP, .adrfam = NVMF_ADDR_FAMILY_IP4,
			.treq = NVMF_TREQ_NOT_SPECIFIED, .sectype = NVMF_TCP_SECTYPE_NONE,
			.traddr = "10.0.0.2", .trsvcid = "8009",
		};

		w->p1.referrals = (struct nvmg_referral *)&ref;
		w->p1.nr_referrals = 1;
		r = new_req(&w->dsq, nvme_admin_get_log_page, 0,
			    get_log_cdw10(NVME_LOG_LID_DISCOVER, 8192, true), 0);
		hdr = (const void *)r->buf;
		CHECK(run(r) == 0 && r->status == 0 && le64toh(hdr->numrec) == 4);
		e = disc_entry(r->buf, 3);
		CHECK(e->subtype == NVME_NQN_DISC && !strcmp(e->subnqn, NVMG_DISC_NQN));
		CHECK(e->trtype == NVMF_TRTYPE_TCP && e->adrfam == NVMF_ADDR_FAMILY_IP4);
		CHECK(le16toh(e->portid) == 9 && le16toh(e->cntlid) == 0xffff);
		CHECK(!memcmp(e->traddr, "10.0.0.2 ", 9) && !memcmp(e->trsvcid, "8009 ", 5));
		free(r);
		w->p1.referrals = NULL;
		w->p1.nr_referrals = 0;
	}

	/* Wildcard p2: C listed with the connection's local address, then
	 * p1's A and B at p1's own address; p1's referral is not p2's. */
	w->dctrl.port = &w->p2;
	w->dsq.port = &w->p2;
	r = new_req(&w->dsq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_DISCOVER, 8192, true), 0);
	hdr = (const void *)r->buf;
	CHECK(run(r) == 0 && r->status == 0 && le64toh(hdr->numrec) == 4);
	e = disc_entry(r->buf, 1);
	CHECK(!strcmp(e->subnqn, NQN_C) && e->adrfam == NVMF_ADDR_FAMILY_IP6);
	CHECK(!memcmp(e->traddr, "192.0.2.7 ", 10) && le16toh(e->portid) == 2);
	CHECK(!memcmp(e->trsvcid, "4421 ", 5));
	e = disc_entry(r->buf, 2);
	CHECK(!strcmp(e->subnqn, NQN_A) && le16toh(e->portid) == 1);
	CHECK(!memcmp(e->traddr, "10.0.0.1 ", 9) && !memcmp(e->trsvcid, "4420 ", 5));
	CHECK(!strcmp(disc_entry(r->buf, 3)->subnqn, NQN_B));
	free(r);

	/* From p1, the wildcard p2 is listed at the local address when the
	 * families match (it listens there too), and skipped otherwise. */
	w->dctrl.port = &w->p1;
	w->dsq.port = &w->p1;
	w->p2.adrfam = AF_INET;
	r = new_req(&w->dsq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_DISCOVER, 8192, true), 0);
	hdr = (const void *)r->buf;
	CHECK(run(r) == 0 && r->status == 0 && le64toh(hdr->numrec) == 4);
	e = disc_entry(r->buf, 3);
	CHECK(!strcmp(e->subnqn, NQN_C) && le16toh(e->portid) == 2);
	CHECK(!memcmp(e->traddr, "192.0.2.7 ", 10));
	free(r);
	world_free(w);
}

/* A transport unlike NVMe/TCP in every field it owns; the key depends on
 * the port, to show the port is the one asked. */
static uint8_t other_adrfam(const struct nvmg_port *p)
{
	(void)p;
	return NVMF_ADDR_FAMILY_IB;
}

static uint8_t other_treq(const struct nvmg_port *p)
{
	(void)p;
	return NVMF_TREQ_REQUIRED;
}

static void other_tsas(const struct nvmg_port *p, union nvmf_tsas *tsas)
{
	tsas->rdma.qptype = NVMF_RDMA_QPTYPE_CONNECTED;
	tsas->rdma.prtype = NVMF_RDMA_PRTYPE_IB;
	tsas->rdma.cms = NVMF_RDMA_CMS_RDMA_CM;
	tsas->rdma.pkey = htole16((uint16_t)(0x1000 + p->portid));
}

/* TRTYPE, ADRFAM, TREQ and TSAS are the port's transport's, on every
 * entry; the queue's own transport (the world's, TCP-like) has no say. */
static void test_discovery_entry_from_port_transport(struct tctx *t)
{
	struct world *w = world_new();
	struct nvmg_transport other = {
		.name = "other",
		.trtype = NVMF_TRTYPE_RDMA,
		.disc_adrfam = other_adrfam,
		.disc_treq = other_treq,
		.disc_tsas = other_tsas,
	};
	const struct nvmf_disc_log_entry *e;
	struct treq *r;

	w->p1.transport = &other;
	r = new_req(&w->dsq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_DISCOVER, 4096, true), 0);
	CHECK(run(r) == 0 && r->status == 0);
	CHECK(le64toh(((const struct nvmf_discovery_log *)(const void *)r->buf)->numrec) == 2);
	for (unsigned i = 0; i < 2; i++) {
		e = disc_entry(r->buf, i);
		CHECK(e->trtype == NVMF_TRTYPE_RDMA && e->adrfam == NVMF_ADDR_FAMILY_IB);
		CHECK(e->treq == NVMF_TREQ_REQUIRED);
		CHECK(e->tsas.rdma.qptype == NVMF_RDMA_QPTYPE_CONNECTED &&
		      e->tsas.rdma.prtype == NVMF_RDMA_PRTYPE_IB &&
		      e->tsas.rdma.cms == NVMF_RDMA_CMS_RDMA_CM && le16toh(e->tsas.rdma.pkey) == 0x1001);
		/* The rest stays the core's. */
		CHECK(le16toh(e->portid) == 1 && le16toh(e->cntlid) == 0xffff);
		CHECK(!memcmp(e->traddr, "10.0.0.1 ", 9));
	}
	CHECK(!strcmp(disc_entry(r->buf, 1)->subnqn, NQN_A));
	free(r);
	world_free(w);
}

static void test_features(struct tctx *t)
{
	struct world *w = world_new();
	struct treq *r;

	/* Get before Set reports the maximum. */
	r = new_req(&w->asq, nvme_admin_get_features, 0, NVME_FEAT_FID_NUM_QUEUES, 0);
	CHECK(run(r) == 0 && r->status == 0 && dw0(r) == (127u | 127u << 16));
	free(r);
	/* Clamp to NVMG_MAX_IO_QUEUES. */
	r = new_req(&w->asq, nvme_admin_set_features, 0, NVME_FEAT_FID_NUM_QUEUES, 199u << 16 | 199);
	CHECK(run(r) == 0 && r->status == 0);
	CHECK(dw0(r) == ((NVMG_MAX_IO_QUEUES - 1u) | (NVMG_MAX_IO_QUEUES - 1u) << 16));
	CHECK(w->ctrl.nr_io_queues == NVMG_MAX_IO_QUEUES);
	free(r);
	r = new_req(&w->asq, nvme_admin_set_features, 0, NVME_FEAT_FID_NUM_QUEUES, 3u << 16 | 3);
	CHECK(run(r) == 0 && r->status == 0 && dw0(r) == (3u | 3u << 16));
	CHECK(w->ctrl.nr_io_queues == 4);
	free(r);
	r = new_req(&w->asq, nvme_admin_get_features, 0, NVME_FEAT_FID_NUM_QUEUES, 0);
	CHECK(run(r) == 0 && r->status == 0 && dw0(r) == (3u | 3u << 16));
	free(r);
	r = new_req(&w->asq, nvme_admin_set_features, 0, NVME_FEAT_FID_NUM_QUEUES, 0xffff);
	CHECK(run(r) == 0 && r->status == SC_INVALID_FIELD);
	free(r);
	/* Not once I/O queues exist. */
	w->ctrl.sqs[1] = &w->iosq1;
	r = new_req(&w->asq, nvme_admin_set_features, 0, NVME_FEAT_FID_NUM_QUEUES, 7u << 16 | 7);
	CHECK(run(r) == 0 && r->status == SC_SEQ_ERROR && w->ctrl.nr_io_queues == 4);
	free(r);
	w->ctrl.sqs[1] = NULL;
	/* Save is not supported. */
	r = new_req(&w->asq, nvme_admin_set_features, 0, 1u << 31 | NVME_FEAT_FID_NUM_QUEUES, 0);
	CHECK(run(r) == 0 && r->status == (NVMG_SC_CMD(NVME_SC_FEATURE_NOT_SAVEABLE) | NVME_SC_DNR));
	free(r);

	/* Async event configuration keeps only what OAES advertises. */
	r = new_req(&w->asq, nvme_admin_set_features, 0, NVME_FEAT_FID_ASYNC_EVENT, 0xffffffff);
	CHECK(run(r) == 0 && r->status == 0 && w->ctrl.aen_enabled == (1u << 8 | 1u << 11));
	free(r);
	r = new_req(&w->asq, nvme_admin_get_features, 0, NVME_FEAT_FID_ASYNC_EVENT, 0);
	CHECK(run(r) == 0 && dw0(r) == (1u << 8 | 1u << 11));
	free(r);
	r = new_req(&w->dsq, nvme_admin_set_features, 0, NVME_FEAT_FID_ASYNC_EVENT, 0xffffffff);
	CHECK(run(r) == 0 && r->status == 0 && w->dctrl.aen_enabled == (1u << 31));
	free(r);

	/* KATO, rounded up to the KAS granularity (1 s); also on discovery controllers. */
	r = new_req(&w->asq, nvme_admin_set_features, 0, NVME_FEAT_FID_KATO, 1234);
	CHECK(run(r) == 0 && r->status == 0 && w->ctrl.kato_ms == 2000);
	free(r);
	r = new_req(&w->asq, nvme_admin_get_features, 0, NVME_FEAT_FID_KATO, 0);
	CHECK(run(r) == 0 && dw0(r) == 2000);
	free(r);
	r = new_req(&w->dsq, nvme_admin_set_features, 0, NVME_FEAT_FID_KATO, 0);
	CHECK(run(r) == 0 && r->status == 0 && w->dctrl.kato_ms == 0);
	free(r);
	r = new_req(&w->dsq, nvme_admin_get_features, 0, NVME_FEAT_FID_NUM_QUEUES, 0);
	CHECK(run(r) == SC_INVALID_FIELD);
	free(r);

	/* Timestamp: Set, then Get reads it back, marked host-set. */
	{
		uint64_t ts = 1700000000000ull;
		uint64_t got = 0;

		r = new_req(&w->asq, nvme_admin_get_features, 0, NVME_FEAT_FID_TIMESTAMP, 0);
		CHECK(run(r) == 0 && r->status == 0 && (r->buf[6] & 0x0e) == 0);
		free(r);
		r = new_req(&w->asq, nvme_admin_set_features, 0, NVME_FEAT_FID_TIMESTAMP, 0);
		CHECK(nvmg_parse_admin(&r->req) == 0);
		for (int i = 0; i < 8; i++)
			r->buf[i] = i < 6 ? (uint8_t)(ts >> (8 * i)) : 0;
		r->req.execute(&r->req);
		CHECK(r->done && r->status == 0 && w->ctrl.timestamp_set);
		free(r);
		r = new_req(&w->asq, nvme_admin_get_features, 0, NVME_FEAT_FID_TIMESTAMP, 0);
		CHECK(run(r) == 0 && r->status == 0);
		for (int i = 0; i < 6; i++)
			got |= (uint64_t)r->buf[i] << (8 * i);
		CHECK(got >= ts && got < ts + 5000);
		CHECK((r->buf[6] & 0x0e) == 0x02 && r->buf[7] == 0);
		free(r);
	}

	/* Host identifier. */
	r = new_req(&w->asq, nvme_admin_get_features, 0, NVME_FEAT_FID_HOST_ID, 1);
	CHECK(run(r) == 0 && r->status == 0 && !memcmp(r->buf, w->ctrl.hostid, 16));
	free(r);

	/* Power management: only PS 0. */
	r = new_req(&w->asq, nvme_admin_set_features, 0, NVME_FEAT_FID_POWER_MGMT, 0);
	CHECK(run(r) == 0 && r->status == 0);
	free(r);
	r = new_req(&w->asq, nvme_admin_set_features, 0, NVME_FEAT_FID_POWER_MGMT, 1);
	CHECK(run(r) == 0 && r->status == SC_INVALID_FIELD);
	free(r);
	r = new_req(&w->asq, nvme_admin_get_features, 0, NVME_FEAT_FID_ARBITRATION, 0);
	CHECK(run(r) == 0 && r->status == 0 && dw0(r) == 0);
	free(r);

	/* Volatile write cache. */
	r = new_req(&w->asq, nvme_admin_set_features, 0, NVME_FEAT_FID_VOLATILE_WC, 0);
	CHECK(run(r) == 0 && r->status == 0 && !w->ctrl.vwc_enabled);
	free(r);
	r = new_req(&w->asq, nvme_admin_get_features, 0, NVME_FEAT_FID_VOLATILE_WC, 0);
	CHECK(run(r) == 0 && r->status == 0 && dw0(r) == 0);
	free(r);
	w->bdev_cache.volatile_cache = false;
	r = new_req(&w->asq, nvme_admin_set_features, 0, NVME_FEAT_FID_VOLATILE_WC, 1);
	CHECK(run(r) == 0 && r->status == SC_INVALID_FIELD);
	free(r);

	/* SEL 011b: capabilities. */
	r = new_req(&w->asq, nvme_admin_get_features, 0, 3u << 8 | NVME_FEAT_FID_KATO, 0);
	CHECK(run(r) == 0 && r->status == 0 && dw0(r) == 4);
	free(r);
	world_free(w);
}

static void test_ident(struct tctx *t)
{
	uint8_t g1[16], u1[16], e1[8], g2[16], u2[16], e2[8], g3[16], u3[16], e3[8];
	char s1[21], s2[21], s3[21];

	nvmg_derive_ns_ids(NQN_A, 1, g1, u1, e1);
	nvmg_derive_ns_ids(NQN_A, 1, g2, u2, e2);
	CHECK(!memcmp(g1, g2, 16) && !memcmp(u1, u2, 16) && !memcmp(e1, e2, 8));
	nvmg_derive_ns_ids(NQN_A, 2, g2, u2, e2);
	nvmg_derive_ns_ids(NQN_B, 1, g3, u3, e3);
	CHECK(memcmp(g1, g2, 16) && memcmp(u1, u2, 16) && memcmp(e1, e2, 8));
	CHECK(memcmp(g1, g3, 16) && memcmp(u1, u3, 16) && memcmp(e1, e3, 8));
	CHECK(memcmp(g1, u1, 16)); /* purposes differ too */
	CHECK(!all_zero(g1, 16) && !all_zero(e1, 8));
	CHECK((u1[6] >> 4) == 5 && (u1[8] & 0xc0) == 0x80);
	CHECK((e1[0] & 0x03) == 0x02);

	nvmg_derive_serial(NQN_A, s1);
	nvmg_derive_serial(NQN_A, s2);
	nvmg_derive_serial(NQN_B, s3);
	CHECK(strlen(s1) == 20 && strspn(s1, "0123456789abcdef") == 20);
	CHECK(!strcmp(s1, s2) && strcmp(s1, s3));
}

static void test_copy_to_buf(struct tctx *t)
{
	struct nvmg_req req;
	uint8_t buf[8];
	const uint8_t src[4] = { 1, 2, 3, 4 };

	memset(&req, 0, sizeof(req));
	req.buf = buf;
	req.data_len = sizeof(buf);
	memset(buf, 0xff, sizeof(buf));
	nvmg_req_copy_to_buf(&req, src, sizeof(src), 2);
	CHECK(buf[0] == 3 && buf[1] == 4 && all_zero(buf + 2, 6));
	memset(buf, 0xff, sizeof(buf));
	nvmg_req_copy_to_buf(&req, src, sizeof(src), 100);
	CHECK(all_zero(buf, 8));
	req.data_len = 0;
	req.buf = NULL;
	nvmg_req_copy_to_buf(&req, src, sizeof(src), 0);
	CHECK(true);
}

/* The ANA log of the controller's port: groups in ascending order, each
 * with its state, change count and namespaces; RGO drops the lists; the
 * I/O check gives the path-related status per state. */
static void test_ana_log(struct tctx *t)
{
	struct world *w = world_new();
	struct nvme_ana_group_desc d;
	const uint8_t *p;
	struct treq *r;
	uint32_t nsid;

	w->ns7.anagrpid = 3;
	w->p1.ana.state[1] = NVME_ANA_STATE_OPTIMIZED;
	w->p1.ana.state[3] = NVME_ANA_STATE_CHANGE;
	w->p1.ana.grp_chgcnt[3] = 4;
	w->p1.ana.chgcnt = 9;
	w->p1.ana.listed[5] = true; /* listed, no namespace: still reported */
	w->p1.ana.state[5] = NVME_ANA_STATE_INACCESSIBLE;
	r = new_req(&w->asq, nvme_admin_get_log_page, 0, get_log_cdw10(NVME_LOG_LID_ANA, 4096, true),
		    0);
	CHECK(run(r) == 0 && r->status == 0);
	p = r->buf;
	CHECK(le64toh(((const struct nvme_ana_log *)p)->chgcnt) == 9);
	CHECK(le16toh(((const struct nvme_ana_log *)p)->ngrps) == 3);
	p += sizeof(struct nvme_ana_log);
	memcpy(&d, p, sizeof(d));
	CHECK(le32toh(d.grpid) == 1 && le32toh(d.nnsids) == 2 && d.state == NVME_ANA_STATE_OPTIMIZED);
	memcpy(&nsid, p + sizeof(d) + 4, 4);
	CHECK(le32toh(nsid) == 2);
	p += sizeof(d) + 8;
	memcpy(&d, p, sizeof(d));
	CHECK(le32toh(d.grpid) == 3 && le32toh(d.nnsids) == 1 && d.state == NVME_ANA_STATE_CHANGE &&
	      le64toh(d.chgcnt) == 4);
	memcpy(&nsid, p + sizeof(d), 4);
	CHECK(le32toh(nsid) == 7);
	p += sizeof(d) + 4;
	memcpy(&d, p, sizeof(d));
	CHECK(le32toh(d.grpid) == 5 && le32toh(d.nnsids) == 0 &&
	      d.state == NVME_ANA_STATE_INACCESSIBLE);
	free(r);

	/* RGO: the same groups, no NSIDs. */
	r = new_req(&w->asq, nvme_admin_get_log_page, 0,
		    get_log_cdw10(NVME_LOG_LID_ANA, 4096, true) | 1u << 8, 0);
	CHECK(run(r) == 0 && r->status == 0);
	p = (const uint8_t *)r->buf + sizeof(struct nvme_ana_log) + sizeof(d);
	memcpy(&d, p, sizeof(d));
	CHECK(le32toh(d.grpid) == 3 && le32toh(d.nnsids) == 0);
	free(r);

	CHECK(nvmg_ana_check(&w->p1, &w->ns1) == 0);
	CHECK(nvmg_ana_check(&w->p1, &w->ns7) ==
	      NVMG_STATUS(NVME_SCT_PATH, NVME_SC_ANA_TRANSITION));
	w->p1.ana.state[3] = NVME_ANA_STATE_INACCESSIBLE;
	CHECK(nvmg_ana_check(&w->p1, &w->ns7) ==
	      NVMG_STATUS(NVME_SCT_PATH, NVME_SC_ANA_INACCESSIBLE));
	w->p1.ana.state[3] = NVME_ANA_STATE_PERSISTENT_LOSS;
	CHECK(nvmg_ana_check(&w->p1, &w->ns7) ==
	      NVMG_STATUS(NVME_SCT_PATH, NVME_SC_ANA_PERSISTENT_LOSS));
	w->p1.ana.state[3] = NVME_ANA_STATE_NONOPTIMIZED;
	CHECK(nvmg_ana_check(&w->p1, &w->ns7) == 0);
	CHECK(nvmg_ana_check(NULL, &w->ns7) == 0); /* in-process front end */
	world_free(w);
}

int main(void)
{
	struct tctx ctx = { 0 };
	struct tctx *t = &ctx;

	test_parse(t);
	test_identify_ctrl(t);
	test_identify_ns(t);
	test_identify_lists(t);
	test_log_pages(t);
	test_ana_log(t);
	test_discovery_log(t);
	test_discovery_entry_from_port_transport(t);
	test_features(t);
	test_ident(t);
	test_copy_to_buf(t);
	printf("%d passed, %d failed\n", t->pass, t->fail);
	return t->fail ? 1 : 0;
}
