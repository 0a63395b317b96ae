/* Identify (admin opcode 06h): the controller, namespace and list data
 * structures a host reads to bring a controller and its namespaces up. */
#include <string.h>
#include "nvme/admin.h"
#include "nvme/resv.h"

#define INVALID_FIELD (NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR)
#define INVALID_NS (NVMG_SC_GENERIC(NVME_SC_INVALID_NS) | NVME_SC_DNR)
#define PSD0_MAX_POWER 0x09c4 /* 25 W in 0.01 W units */

union id_data {
	struct nvme_id_ctrl ctrl;
	struct nvme_id_ns ns;
	struct nvme_nvm_id_ns nvm_ns;
	struct nvme_id_ctrl_nvm nvm_ctrl;
	struct nvme_id_independent_id_ns ind_ns;
	struct nvme_id_iocs iocs;
	uint32_t list[NVME_ID_NS_LIST_MAX];
	uint8_t raw[NVME_IDENTIFY_DATA_SIZE];
};
_Static_assert(sizeof(union id_data) == NVME_IDENTIFY_DATA_SIZE, "identify data is 4 KiB");

/* Namespaces the subsystem may have: at least NVMG_MIN_NN (<= NN). */
static uint32_t subsys_mnan(struct nvmg_subsys *s)
{
	uint32_t n;

	pthread_mutex_lock(&s->lock);
	n = s->nr_ns > NVMG_MIN_NN ? (uint32_t)s->nr_ns : NVMG_MIN_NN;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void identify_ctrl(struct nvmg_req *req, struct nvme_id_ctrl *id)
{
	struct nvmg_ctrl *c = req->sq->ctrl;
	struct nvmg_subsys *s = c->subsys;
	bool disc = s->discovery;

	nvmg_copy_padded(id->sn, sizeof(id->sn), s->serial);
	nvmg_copy_padded(id->mn, sizeof(id->mn), s->model);
	nvmg_copy_padded(id->fr, sizeof(id->fr), NVMG_VERSION);
	id->rab = 6;
	/* A subsystem has one controller per association, so a host with two
	 * paths sees two: Linux refuses the second unless MULTI_CTRL is set.
	 * ANA reporting tells the host which of them to use (ana.h). */
	if (!disc)
		id->cmic = NVME_CTRL_CMIC_MULTI_PORT | NVME_CTRL_CMIC_MULTI_CTRL |
			   NVME_CTRL_CMIC_MULTI_ANA_REPORTING;
	id->mdts = NVMG_MDTS;
	id->cntlid = htole16(c->cntlid);
	id->ver = htole32(s->version);
	id->oaes = htole32(disc ? (uint32_t)NVME_CTRL_OAES_DL
				: (uint32_t)(NVME_CTRL_OAES_NA | NVME_CTRL_OAES_ANA));
	id->ctratt = htole32(NVME_CTRL_CTRATT_128_ID);
	id->cntrltype = disc ? NVME_CTRL_CNTRLTYPE_DISCOVERY : NVME_CTRL_CNTRLTYPE_IO;
	id->acl = 3;
	id->aerl = NVMG_AERL;
	id->frmw = NVME_CTRL_FRMW_1ST_RO | (1 << 1); /* one read-only slot */
	/* Linux fails controller init if the effects log is advertised but
	 * errors, and discovery controllers do not serve it. */
	id->lpa = NVME_CTRL_LPA_EXTENDED | (disc ? 0 : NVME_CTRL_LPA_CMD_EFFECTS);
	id->elpe = NVMG_ERROR_LOG_ENTRIES - 1;
	id->avscc = NVME_CTRL_AVSCC_AVS;
	id->wctemp = htole16(0x157);
	id->cctemp = htole16(0x175);
	id->kas = htole16(NVMG_KAS);
	id->sqes = 0x66; /* 64-byte SQEs */
	id->cqes = 0x44; /* 16-byte CQEs */
	id->maxcmd = htole16(NVMG_MAXCMD);
	if (!disc) {
		id->nn = htole32(nvmg_subsys_nn(s));
		id->oncs = htole16(NVME_CTRL_ONCS_COMPARE | NVME_CTRL_ONCS_DSM |
				   NVME_CTRL_ONCS_WRITE_ZEROES | NVME_CTRL_ONCS_TIMESTAMP |
				   (atomic_load(&s->resv_off) ? 0 : NVME_CTRL_ONCS_RESERVATIONS));
		/* Flush with NSID FFFFFFFFh: report 10b "not supported"; 1.4+
		 * controllers may not leave it unreported (00b). */
		if (nvmg_subsys_has_vwc(s))
			id->vwc = NVME_CTRL_VWC_PRESENT | (2 << 1);
		/* Every state; a reload may move a namespace to another group,
		 * so no GRPID_NO_CHG. */
		id->anacap = NVME_CTRL_ANACAP_OPT | NVME_CTRL_ANACAP_NON_OPT |
			     NVME_CTRL_ANACAP_INACCESSIBLE | NVME_CTRL_ANACAP_PERSISTENT_LOSS |
			     NVME_CTRL_ANACAP_CHANGE;
		id->anatt = NVMG_ANATT;
		id->anagrpmax = htole32(NVMG_ANAGRPMAX);
		id->nanagrpid = htole32(NVMG_ANAGRPMAX);
		/* Linux sizes its ANA log buffer by MNAN (so MNAN must cover
		 * every namespace's NSID entry, yet keep the log within MDTS)
		 * and refuses a controller reporting ANA with MNAN 0 or above
		 * NN. */
		id->mnan = htole32(subsys_mnan(s));
	}
	/* SGLs without alignment rules (01b) and in-capsule data at an
	 * offset; TCP has no keyed SGLs. */
	id->sgls = htole32(1 | NVME_CTRL_SGLS_OFFSET);
	memcpy(id->subnqn, s->nqn, strnlen(s->nqn, sizeof(id->subnqn) - 1));
	id->ioccsz = htole32((uint32_t)(sizeof(struct nvmg_sqe) + c->port->inline_data_size) / 16);
	id->iorcsz = htole32(sizeof(struct nvmg_cqe) / 16);
	id->icdoff = 0;
	id->fcatt = 0; /* dynamic controller model */
	id->msdbd = 1; /* one data SGL descriptor per command */
	id->psd[0].mp = htole16(PSD0_MAX_POWER);
}

static void identify_ns(struct nvme_id_ns *id, const struct nvmg_ns *ns, bool resv_off)
{
	id->nsze = id->ncap = id->nuse = htole64(nvmg_ns_nsze(ns));
	id->nsfeat = NVME_NS_FEAT_ID_REUSE;
	id->nlbaf = 0;
	id->flbas = 0;
	id->dlfeat = ns->bdev && ns->bdev->dealloc_zeroes ? NVME_NS_DLFEAT_RB_ALL_0S : 0;
	id->nmic = NVME_NS_NMIC_SHARED; /* matches CMIC.MULTI_CTRL */
	id->anagrpid = htole32(atomic_load(&ns->anagrpid));
	id->rescap = resv_off ? 0 : nvmg_resv_rescap(ns);
	id->nsattr = ns->readonly ? NVME_NS_NSATTR_WRITE_PROTECTED : 0;
	memcpy(id->nguid, ns->nguid, sizeof(id->nguid));
	memcpy(id->eui64, ns->eui64, sizeof(id->eui64));
	id->lbaf[0].ds = ns->lba_shift;
}

static void identify_ind_ns(struct nvme_id_independent_id_ns *id, const struct nvmg_ns *ns)
{
	id->nsfeat = NVME_NS_FEAT_ID_REUSE;
	id->nmic = NVME_NS_NMIC_SHARED;
	id->nsattr = ns->readonly ? NVME_NS_NSATTR_WRITE_PROTECTED : 0;
	id->nstat = 1; /* namespace ready */
}

static size_t add_desc(uint8_t *p, size_t off, uint8_t nidt, const void *nid, uint8_t nidl)
{
	struct nvme_ns_id_desc *d = (struct nvme_ns_id_desc *)(p + off);

	d->nidt = nidt;
	d->nidl = nidl;
	memcpy(p + off + sizeof(*d), nid, nidl);
	return off + sizeof(*d) + nidl;
}

static void identify_desc_list(uint8_t *p, const struct nvmg_ns *ns)
{
	const uint8_t csi = NVME_CSI_NVM;
	size_t off = 0;

	off = add_desc(p, off, NVME_NIDT_EUI64, ns->eui64, NVME_NIDT_EUI64_LEN);
	off = add_desc(p, off, NVME_NIDT_NGUID, ns->nguid, NVME_NIDT_NGUID_LEN);
	off = add_desc(p, off, NVME_NIDT_UUID, ns->uuid, NVME_NIDT_UUID_LEN);
	/* Linux skips a namespace without a CSI descriptor once CAP.CSS
	 * advertises I/O command sets. */
	add_desc(p, off, NVME_NIDT_CSI, &csi, NVME_NIDT_CSI_LEN);
}

/* Active NSIDs above start, ascending (s->ns is sorted). */
static void identify_active_list(struct nvmg_subsys *s, uint32_t start, uint32_t *list)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_ns && n < NVME_ID_NS_LIST_MAX; i++)
		if (s->ns[i]->nsid > start)
			list[n++] = htole32(s->ns[i]->nsid);
	pthread_mutex_unlock(&s->lock);
}

/* NSID rules of CNS 00h/05h/08h: 0, FFFFFFFFh and NSIDs above NN are
 * invalid; a valid NSID with no namespace gets a zero-filled structure
 * (*ns stays NULL). */
static uint16_t lookup_ns(struct nvmg_subsys *s, uint32_t nsid, struct nvmg_ns **ns)
{
	*ns = NULL;
	if (nsid == NVME_NSID_NONE || nsid == NVME_NSID_ALL || nsid > nvmg_subsys_nn(s))
		return INVALID_NS;
	*ns = nvmg_subsys_get_ns(s, nsid);
	return 0;
}

void nvmg_execute_identify(struct nvmg_req *req)
{
	struct nvmg_subsys *s = req->sq->ctrl->subsys;
	uint8_t cns = le32toh(req->cmd.cdw10) & 0xff;
	uint8_t csi = le32toh(req->cmd.cdw11) >> 24;
	uint32_t nsid = le32toh(req->cmd.nsid);
	struct nvmg_ns *ns = NULL;
	union id_data d;
	uint16_t status = 0;

	memset(&d, 0, sizeof(d));
	if (s->discovery && cns != NVME_IDENTIFY_CNS_CTRL) {
		nvmg_req_complete(req, INVALID_FIELD);
		return;
	}
	switch (cns) {
	case NVME_IDENTIFY_CNS_NS:
		status = lookup_ns(s, nsid, &ns);
		if (ns)
			identify_ns(&d.ns, ns, atomic_load(&s->resv_off));
		break;
	case NVME_IDENTIFY_CNS_CTRL:
		identify_ctrl(req, &d.ctrl);
		break;
	case NVME_IDENTIFY_CNS_NS_ACTIVE_LIST:
	case NVME_IDENTIFY_CNS_CSI_NS_ACTIVE_LIST:
		/* NVM is our only command set: its list is the full list. */
		if (cns == NVME_IDENTIFY_CNS_CSI_NS_ACTIVE_LIST && csi != NVME_CSI_NVM)
			status = INVALID_FIELD;
		else if (nsid >= NVME_NSID_ALL - 1)
			status = INVALID_NS;
		else
			identify_active_list(s, nsid, d.list);
		break;
	case NVME_IDENTIFY_CNS_NS_DESC_LIST:
		ns = nvmg_subsys_get_ns(s, nsid);
		if (ns)
			identify_desc_list(d.raw, ns);
		else
			status = INVALID_NS;
		break;
	case NVME_IDENTIFY_CNS_CSI_NS:
		if (csi != NVME_CSI_NVM)
			status = INVALID_FIELD;
		else
			status = lookup_ns(s, nsid, &ns);
		/* No protection information, no storage tags: all zero. */
		break;
	case NVME_IDENTIFY_CNS_CSI_CTRL:
		/* All-zero NVM limits (VSL, WZSL, DMRL, DMRSL...) mean none
		 * beyond MDTS. */
		if (csi != NVME_CSI_NVM)
			status = INVALID_FIELD;
		break;
	case NVME_IDENTIFY_CNS_CSI_INDEPENDENT_ID_NS:
		status = lookup_ns(s, nsid, &ns);
		if (ns)
			identify_ind_ns(&d.ind_ns, ns);
		break;
	case NVME_IDENTIFY_CNS_COMMAND_SET_STRUCTURE:
		d.iocs.iocsc[0] = htole64(1ull << NVME_CSI_NVM);
		break;
	default:
		status = INVALID_FIELD;
		break;
	}
	if (ns)
		nvmg_ns_put(ns);
	if (!status)
		nvmg_req_copy_to_buf(req, &d, sizeof(d), 0);
	nvmg_req_complete(req, status);
}
