/* Controller bring-up, namespaces, per-reactor I/O queues and shutdown. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "lib/log.h"
#include "nvme/bdev/pcie/pcie.h"

#define CAP_CSS_NVM (1ull << 37)
#define CAP_MPSMIN(cap) (((cap) >> 48) & 0xf)
#define SHN_TIMEOUT_MS 10000

/* With admin_lock held: removal unmaps the registers holding it, and a
 * disabled controller (reset) only takes the reset's own commands. */
static int admin_locked(struct pcie_ctrlr *c, struct nvmg_sqe *cmd, uint32_t *cdw0)
{
	if (atomic_load(&c->gone))
		return -ENODEV;
	if (atomic_load(&c->resetting) && !(c->svc_running && pthread_equal(pthread_self(), c->svc)))
		return -EAGAIN;
	return pcie_qp_sync(&c->admin, cmd, PCIE_ADMIN_TIMEOUT_MS, cdw0);
}

int pcie_admin(struct pcie_ctrlr *c, struct nvmg_sqe *cmd, uint32_t *cdw0)
{
	int ret;

	pthread_mutex_lock(&c->admin_lock);
	ret = admin_locked(c, cmd, cdw0);
	pthread_mutex_unlock(&c->admin_lock);
	return ret;
}

/* Admin command whose data lands in (or comes from) c->admin_buf; the
 * caller holds admin_lock so the buffer stays theirs. */
static int admin_data(struct pcie_ctrlr *c, struct nvmg_sqe *cmd, uint32_t *cdw0)
{
	pcie_sqe_prp(cmd, c->admin_buf.iova, c->admin_buf.iova + PCIE_PAGE);
	return admin_locked(c, cmd, cdw0);
}

static int wait_csts(struct pcie_ctrlr *c, uint32_t mask, uint32_t want, uint32_t timeout_ms)
{
	uint64_t deadline = nvmg_now_ms() + timeout_ms;
	struct timespec ts = { 0, 100000 };

	for (;;) {
		uint32_t csts = nvmg_vfio_rd32(&c->vfio, NVME_REG_CSTS);

		if (csts == UINT32_MAX)
			return -ENODEV;
		if ((csts & mask) == want)
			return 0;
		if (nvmg_now_ms() > deadline)
			return -ETIMEDOUT;
		nanosleep(&ts, NULL);
	}
}

int pcie_ctrlr_disable(struct pcie_ctrlr *c)
{
	uint32_t cc = nvmg_vfio_rd32(&c->vfio, NVME_REG_CC);

	if (cc & 1)
		nvmg_vfio_wr32(&c->vfio, NVME_REG_CC, cc & ~1u);
	return wait_csts(c, NVME_CSTS_RDY_MASK << NVME_CSTS_RDY_SHIFT, 0, c->to_ms);
}

int pcie_ctrlr_enable(struct pcie_ctrlr *c, char *err, size_t errlen)
{
	uint32_t aqa = (uint32_t)(c->admin.depth - 1) << 16 | (uint32_t)(c->admin.depth - 1);
	uint32_t cc = 1u /* EN */ | 0u << 4 /* CSS NVM */ | 0u << 7 /* MPS 4 KiB */ |
		      6u << 16 /* IOSQES 64 B */ | 4u << 20 /* IOCQES 16 B */;
	int ret;

	nvmg_vfio_wr32(&c->vfio, NVME_REG_AQA, aqa);
	nvmg_vfio_wr64(&c->vfio, NVME_REG_ASQ, c->admin.sq_iova);
	nvmg_vfio_wr64(&c->vfio, NVME_REG_ACQ, c->admin.cq_iova);
	nvmg_vfio_wr32(&c->vfio, NVME_REG_CC, cc);
	ret = wait_csts(c, NVME_CSTS_RDY_MASK << NVME_CSTS_RDY_SHIFT, 1, c->to_ms);
	if (ret) {
		snprintf(err, errlen, "%s: controller did not become ready within CAP.TO (%u ms): %s",
			 c->bdf, c->to_ms, strerror(-ret));
		return ret;
	}
	if (NVME_CSTS_CFS(nvmg_vfio_rd32(&c->vfio, NVME_REG_CSTS))) {
		snprintf(err, errlen, "%s: controller fatal status after enable", c->bdf);
		return -EIO;
	}
	return 0;
}

static int setup_msix(struct pcie_ctrlr *c)
{
	unsigned n = c->nr_ioq + 1;
	int ret;

	if (c->vfio.msix_count < 2)
		return -ENOTSUP;
	if (n > c->vfio.msix_count)
		n = c->vfio.msix_count;
	c->efds = calloc(n, sizeof(int));
	if (!c->efds)
		return -ENOMEM;
	c->efds[0] = -1; /* the admin queue is polled */
	for (unsigned i = 1; i < n; i++) {
		c->efds[i] = eventfd(0, EFD_CLOEXEC);
		if (c->efds[i] < 0) {
			ret = -errno;
			c->nr_vec = i;
			return ret;
		}
	}
	c->nr_vec = n;
	return nvmg_vfio_set_msix(&c->vfio, c->efds, n);
}

static void close_efds(struct pcie_ctrlr *c)
{
	for (unsigned i = 1; i < c->nr_vec; i++)
		if (c->efds[i] >= 0)
			close(c->efds[i]);
	free(c->efds);
	c->efds = NULL;
	c->nr_vec = 0;
}

static int identify_ctrlr(struct pcie_ctrlr *c, char *err, size_t errlen)
{
	struct nvmg_sqe cmd;
	int ret;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = nvme_admin_identify;
	cmd.cdw10 = htole32(NVME_IDENTIFY_CNS_CTRL);
	pthread_mutex_lock(&c->admin_lock);
	ret = admin_data(c, &cmd, NULL);
	if (!ret)
		memcpy(&c->id, c->admin_buf.va, sizeof(c->id));
	pthread_mutex_unlock(&c->admin_lock);
	if (ret) {
		snprintf(err, errlen, "%s: Identify Controller failed: %s%d", c->bdf,
			 ret < 0 ? "error " : "status 0x", ret < 0 ? ret : ret);
		return ret < 0 ? ret : -EIO;
	}
	/* SGLS bits 1:0 = 01b or 10b: SGLs for the NVM command set (we only
	 * ever need dword-aligned Data Block descriptors). */
	c->use_sgl = (le32toh(c->id.sgls) & 3) == 1 || (le32toh(c->id.sgls) & 3) == 2;
	/* MDTS is in units of CAP.MPSMIN pages (4 KiB here); 0 = no limit. */
	c->max_xfer = PCIE_MAX_XFER;
	if (c->id.mdts && c->id.mdts < 20 && (PCIE_PAGE << c->id.mdts) < c->max_xfer)
		c->max_xfer = PCIE_PAGE << c->id.mdts;

	ret = pcie_ctrlr_set_queues(c, &c->nr_ioq);
	if (ret) {
		snprintf(err, errlen, "%s: Set Features Number of Queues failed: %s%d", c->bdf,
			 ret < 0 ? "error " : "status 0x", ret);
		return ret < 0 ? ret : -EIO;
	}
	return 0;
}

int pcie_ctrlr_set_queues(struct pcie_ctrlr *c, unsigned *granted)
{
	struct nvmg_sqe cmd;
	uint32_t dw0 = 0;
	int ret;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = nvme_admin_set_features;
	cmd.cdw10 = htole32(NVME_FEAT_FID_NUM_QUEUES);
	cmd.cdw11 = htole32((PCIE_WANT_QUEUES - 1) << 16 | (PCIE_WANT_QUEUES - 1));
	ret = pcie_admin(c, &cmd, &dw0);
	if (ret)
		return ret;
	/* Pairs: the smaller of the SQ and CQ counts (both 0's based). */
	*granted = (dw0 & 0xffff) < (dw0 >> 16) ? (dw0 & 0xffff) + 1 : (dw0 >> 16) + 1;
	if (*granted > PCIE_WANT_QUEUES)
		*granted = PCIE_WANT_QUEUES;
	return 0;
}

static uint16_t io_depth(const struct pcie_ctrlr *c)
{
	return c->mqes < PCIE_IO_DEPTH ? (uint16_t)c->mqes : PCIE_IO_DEPTH;
}

int pcie_ctrlr_open(const char *bdf, struct pcie_ctrlr **out, char *err, size_t errlen)
{
	struct pcie_ctrlr *c = calloc(1, sizeof(*c));
	char why[224], mn[NVMG_ESCAPED_SIZE(sizeof(c->id.mn))], sn[NVMG_ESCAPED_SIZE(sizeof(c->id.sn))];
	uint32_t vs;
	int ret;

	if (!c)
		return -ENOMEM;
	snprintf(c->bdf, sizeof(c->bdf), "%s", bdf);
	pthread_mutex_init(&c->admin_lock, NULL);
	pthread_mutex_init(&c->abort_lock, NULL);
	pthread_mutex_init(&c->ioq_lock, NULL);
	atomic_init(&c->gone, false);
	atomic_init(&c->resetting, false);
	atomic_init(&c->reset_req, false);
	atomic_init(&c->stop, false);
	atomic_init(&c->warned_queues, false);
	c->req_efd = c->wake_efd = -1;
	ret = nvmg_vfio_open(&c->vfio, bdf, err, errlen);
	if (ret) {
		pthread_mutex_destroy(&c->admin_lock);
		pthread_mutex_destroy(&c->abort_lock);
		pthread_mutex_destroy(&c->ioq_lock);
		free(c);
		return ret;
	}
	c->cap = nvmg_vfio_rd64(&c->vfio, NVME_REG_CAP);
	vs = nvmg_vfio_rd32(&c->vfio, NVME_REG_VS);
	if (c->cap == UINT64_MAX || !(c->cap & CAP_CSS_NVM) || CAP_MPSMIN(c->cap) > 0) {
		snprintf(err, errlen, "%s: not a usable NVMe controller (CAP 0x%016llx)", bdf,
			 (unsigned long long)c->cap);
		ret = -ENODEV;
		goto fail_vfio;
	}
	c->io_timeout_ms = PCIE_IO_TIMEOUT_MS;
	c->dstrd = 4u << NVME_CAP_DSTRD(c->cap);
	c->mqes = (uint32_t)NVME_CAP_MQES(c->cap) + 1;
	c->to_ms = (uint32_t)NVME_CAP_TO(c->cap) * 500;
	if (!c->to_ms)
		c->to_ms = 500;
	if (c->mqes < 2) {
		snprintf(err, errlen, "%s: CAP.MQES %u is too small", bdf, c->mqes);
		ret = -ENODEV;
		goto fail_vfio;
	}
	ret = pcie_ctrlr_disable(c);
	if (ret) {
		snprintf(err, errlen, "%s: controller did not stop within CAP.TO (%u ms): %s", bdf,
			 c->to_ms, strerror(-ret));
		goto fail_vfio;
	}
	ret = pcie_qp_alloc(c, &c->admin, 0, c->mqes < PCIE_ADMIN_DEPTH ? (uint16_t)c->mqes : PCIE_ADMIN_DEPTH,
			    false, err, errlen);
	if (ret)
		goto fail_vfio;
	ret = nvmg_dma_alloc(&c->vfio, 2 * PCIE_PAGE, &c->admin_buf, err, errlen);
	if (ret)
		goto fail_admin;
	ret = pcie_ctrlr_enable(c, err, errlen);
	if (ret)
		goto fail_buf;
	ret = identify_ctrlr(c, err, errlen);
	if (ret)
		goto fail_enabled;
	/* I/O queues are pinned on first I/O: refuse now, with the reason,
	 * if not even one fits, rather than fail every command later. */
	ret = nvmg_dma_can_pin(pcie_qp_dma_len(io_depth(c), true), why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "%s: %s", bdf, why);
		goto fail_enabled;
	}
	c->ioq = calloc(c->nr_ioq, sizeof(*c->ioq));
	if (!c->ioq) {
		ret = -ENOMEM;
		goto fail_enabled;
	}
	ret = setup_msix(c);
	if (ret) {
		log_warn("pcie %s: no MSI-X (%s): completions are polled", bdf, strerror(-ret));
		nvmg_vfio_set_msix(&c->vfio, NULL, 0);
		close_efds(c);
	}
	ret = pcie_svc_start(c);
	if (ret) {
		snprintf(err, errlen, "%s: cannot start its service thread: %s", bdf, strerror(-ret));
		goto fail_msix;
	}
	/* Model and serial are the device's bytes: escaped like a host's. */
	log_info("pcie %s: NVMe %u.%u \"%s\" sn \"%s\": %u namespace(s), %u I/O queues, "
		 "max transfer %u KiB, doorbell stride %u, %s, %s",
		 bdf, vs >> 16, (vs >> 8) & 0xff, nvmg_escape(mn, sizeof(mn), c->id.mn, sizeof(c->id.mn)),
		 nvmg_escape(sn, sizeof(sn), c->id.sn, sizeof(c->id.sn)), le32toh(c->id.nn), c->nr_ioq,
		 c->max_xfer >> 10, c->dstrd, c->nr_vec ? "MSI-X" : "polled", c->use_sgl ? "SGLs" : "PRPs");
	*out = c;
	return 0;
fail_msix:
	pcie_svc_stop(c);
	nvmg_vfio_set_msix(&c->vfio, NULL, 0);
	close_efds(c);
	free(c->ioq);
fail_enabled:
	pcie_ctrlr_disable(c);
fail_buf:
	nvmg_dma_free(&c->vfio, &c->admin_buf);
fail_admin:
	pcie_qp_free(&c->admin);
fail_vfio:
	nvmg_vfio_close(&c->vfio);
	pthread_mutex_destroy(&c->admin_lock);
	pthread_mutex_destroy(&c->abort_lock);
	pthread_mutex_destroy(&c->ioq_lock);
	free(c);
	return ret;
}

/* Create I/O CQ then SQ for qp on the device (also after a reset). */
int pcie_ctrlr_create_queue(struct pcie_ctrlr *c, struct pcie_qpair *qp)
{
	struct nvmg_sqe cmd;
	int ret;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = nvme_admin_create_cq;
	pcie_sqe_prp(&cmd, qp->cq_iova, 0);
	cmd.cdw10 = htole32((uint32_t)(qp->depth - 1) << 16 | qp->qid);
	/* PC=1; IEN and the vector only when an eventfd listens on it. */
	cmd.cdw11 = htole32(qp->efd >= 0 ? (uint32_t)qp->qid << 16 | 3u : 1u);
	ret = pcie_admin(c, &cmd, NULL);
	if (ret) {
		log_err("pcie %s: Create I/O CQ %u: %s%d", c->bdf, qp->qid, ret < 0 ? "error " : "status 0x", ret);
		return -EIO;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = nvme_admin_create_sq;
	pcie_sqe_prp(&cmd, qp->sq_iova, 0);
	cmd.cdw10 = htole32((uint32_t)(qp->depth - 1) << 16 | qp->qid);
	cmd.cdw11 = htole32((uint32_t)qp->qid << 16 | 1u);
	ret = pcie_admin(c, &cmd, NULL);
	if (ret) {
		log_err("pcie %s: Create I/O SQ %u: %s%d", c->bdf, qp->qid, ret < 0 ? "error " : "status 0x", ret);
		memset(&cmd, 0, sizeof(cmd));
		cmd.opcode = nvme_admin_delete_cq;
		cmd.cdw10 = htole32(qp->qid);
		pcie_admin(c, &cmd, NULL);
		return -EIO;
	}
	return 0;
}

/* Map the reactor's network buffer arena for zero copy; without it every
 * transfer bounces through the slots' buffers, which still works. */
static void map_arena(struct pcie_ctrlr *c, struct pcie_qpair *qp, struct nvmg_reactor *r)
{
	void *base;
	size_t size;
	int ret = nvmg_bufpool_arena(nvmg_reactor_bufpool(r), &base, &size);

	if (!ret)
		ret = nvmg_vfio_map(&c->vfio, base, size, &qp->zc_iova);
	if (ret) {
		log_warn("pcie %s: queue %u: buffer arena not mapped (%s): data is copied", c->bdf,
			 qp->qid, strerror(-ret));
		return;
	}
	qp->zc_base = base;
	qp->zc_size = size;
}

/* The queue pair for reactor r: queue id % nr_ioq, created on first use
 * and owned (polled, completed) by the reactor that created it. With
 * more reactors than the device grants queues, reactors share them and
 * the caller forwards to the owner (bdev_pcie.c). */
struct pcie_qpair *pcie_ctrlr_ioq(struct pcie_ctrlr *c, struct nvmg_reactor *r, int *res)
{
	unsigned id = nvmg_reactor_id(r), idx;
	struct pcie_qpair *qp;
	char err[256] = "";
	uint16_t qid;
	int ret;

	*res = -EIO;
	if (!c->nr_ioq)
		return NULL;
	idx = id % c->nr_ioq;
	qid = (uint16_t)(idx + 1);
	qp = __atomic_load_n(&c->ioq[idx], __ATOMIC_ACQUIRE);
	if (qp)
		return qp;
	/* Not while a reset runs: it would fail, after pinning the queue's
	 * memory, on every command until the reset ends. */
	if ((*res = pcie_ctrlr_unusable(c)))
		return NULL;
	*res = -EIO;
	/* Two reactors may share idx: one creates, the other waits for it. */
	pthread_mutex_lock(&c->ioq_lock);
	qp = __atomic_load_n(&c->ioq[idx], __ATOMIC_ACQUIRE);
	if (qp)
		goto out;
	qp = calloc(1, sizeof(*qp));
	if (!qp)
		goto out;
	ret = pcie_qp_alloc(c, qp, qid, io_depth(c), true, err, sizeof(err));
	if (ret) {
		log_err("pcie %s: I/O queue %u: %s", c->bdf, qid, err);
		free(qp);
		qp = NULL;
		goto out;
	}
	qp->r = r;
	qp->efd = qid < c->nr_vec ? c->efds[qid] : -1;
	map_arena(c, qp, r);
	if (pcie_ctrlr_create_queue(c, qp))
		goto fail;
	/* Published under the admin lock, where a reset takes its list of
	 * queues to re-create; one that started meanwhile already
	 * destroyed this queue on the device. */
	pthread_mutex_lock(&c->admin_lock);
	if (pcie_ctrlr_unusable(c)) {
		pthread_mutex_unlock(&c->admin_lock);
		goto fail;
	}
	__atomic_store_n(&c->ioq[idx], qp, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&c->admin_lock);
	log_info("pcie %s: I/O queue %u (%u entries, %s) for reactor %u%s", c->bdf, qid, qp->depth,
		 qp->efd >= 0 ? "MSI-X" : "polled", id, qp->zc_base ? ", network buffers mapped: zero copy" : "");
	goto out;
fail:
	pcie_qp_free(qp);
	free(qp);
	qp = NULL;
	/* A reset or removal that began meanwhile is why it failed. */
	if ((ret = pcie_ctrlr_unusable(c)))
		*res = ret;
out:
	pthread_mutex_unlock(&c->ioq_lock);
	return qp;
}

int pcie_ctrlr_ns_info(struct pcie_ctrlr *c, struct pcie_ns *ns, char *err, size_t errlen)
{
	struct nvme_id_ns id;
	struct nvmg_sqe cmd;
	uint8_t lbaf, ds;
	uint16_t oncs = le16toh(c->id.oncs);
	int ret;

	if (!ns->nsid || ns->nsid > le32toh(c->id.nn)) {
		snprintf(err, errlen, "%s has no namespace %u (NN = %u)", c->bdf, ns->nsid, le32toh(c->id.nn));
		return -ENODEV;
	}
	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = nvme_admin_identify;
	cmd.nsid = htole32(ns->nsid);
	cmd.cdw10 = htole32(NVME_IDENTIFY_CNS_NS);
	pthread_mutex_lock(&c->admin_lock);
	ret = admin_data(c, &cmd, NULL);
	if (!ret)
		memcpy(&id, c->admin_buf.va, sizeof(id));
	pthread_mutex_unlock(&c->admin_lock);
	if (ret) {
		snprintf(err, errlen, "%s: Identify Namespace %u failed: %s%d", c->bdf, ns->nsid,
			 ret < 0 ? "error " : "status 0x", ret);
		return ret < 0 ? ret : -ENODEV;
	}
	if (!id.nsze) {
		snprintf(err, errlen, "%s has no active namespace %u", c->bdf, ns->nsid);
		return -ENODEV;
	}
	lbaf = id.flbas & 0xf;
	if (id.nlbaf < 16 && lbaf > id.nlbaf) {
		snprintf(err, errlen, "%s: namespace %u: bad FLBAS %u", c->bdf, ns->nsid, id.flbas);
		return -EIO;
	}
	ds = id.lbaf[lbaf].ds;
	if (ds != 9 && ds != 12) {
		snprintf(err, errlen, "%s: namespace %u: LBA size 2^%u not supported (512 or 4096)",
			 c->bdf, ns->nsid, ds);
		return -ENOTSUP;
	}
	if (id.lbaf[lbaf].ms) {
		snprintf(err, errlen, "%s: namespace %u: LBA format with %u bytes of metadata not supported",
			 c->bdf, ns->nsid, le16toh(id.lbaf[lbaf].ms));
		return -ENOTSUP;
	}
	ns->lba_shift = ds;
	ns->b.size = le64toh(id.nsze) << ds;
	ns->b.block_size = 1u << ds;
	ns->b.volatile_cache = c->id.vwc & NVME_CTRL_VWC_PRESENT;
	ns->has_wz = oncs & NVME_CTRL_ONCS_WRITE_ZEROES;
	ns->has_dsm = oncs & NVME_CTRL_ONCS_DSM;
	/* Deallocated blocks read as zeros only where DLFEAT says so. */
	ns->b.dealloc_zeroes = ns->has_dsm && (id.dlfeat & 7) == NVME_NS_DLFEAT_RB_ALL_0S;
	ns->b.readonly = false;
	memcpy(ns->b.nguid, id.nguid, sizeof(ns->b.nguid));
	memcpy(ns->b.eui64, id.eui64, sizeof(ns->b.eui64));

	/* The UUID is only in the descriptor list (NVMe 1.3+). */
	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = nvme_admin_identify;
	cmd.nsid = htole32(ns->nsid);
	cmd.cdw10 = htole32(NVME_IDENTIFY_CNS_NS_DESC_LIST);
	pthread_mutex_lock(&c->admin_lock);
	memset(c->admin_buf.va, 0, PCIE_PAGE);
	if (le32toh(c->id.ver) >= 0x10300 && !admin_data(c, &cmd, NULL)) {
		const uint8_t *p = c->admin_buf.va;

		/* Descriptors are byte-packed (a 1-byte CSI one leaves the next at
		 * an odd offset): read NIDT/NIDL as bytes, never as a struct. */
		for (size_t off = 0; off + sizeof(struct nvme_ns_id_desc) <= PCIE_PAGE;) {
			uint8_t nidt = p[off + offsetof(struct nvme_ns_id_desc, nidt)];
			uint8_t nidl = p[off + offsetof(struct nvme_ns_id_desc, nidl)];
			size_t data = off + sizeof(struct nvme_ns_id_desc);

			if (!nidt || data + nidl > PCIE_PAGE)
				break;
			if (nidt == NVME_NIDT_UUID && nidl == 16)
				memcpy(ns->b.uuid, p + data, 16);
			off = data + nidl;
		}
	}
	pthread_mutex_unlock(&c->admin_lock);
	return 0;
}

int pcie_ctrlr_smart(struct pcie_ctrlr *c, struct nvme_smart_log *log)
{
	struct nvmg_sqe cmd;
	int ret;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = nvme_admin_get_log_page;
	cmd.nsid = htole32(NVME_NSID_ALL);
	cmd.cdw10 = htole32((uint32_t)(sizeof(*log) / 4 - 1) << 16 | NVME_LOG_LID_SMART);
	pthread_mutex_lock(&c->admin_lock);
	ret = admin_data(c, &cmd, NULL);
	if (!ret)
		memcpy(log, c->admin_buf.va, sizeof(*log));
	pthread_mutex_unlock(&c->admin_lock);
	return ret < 0 ? ret : ret ? -EIO : 0;
}

/* Delete the I/O queues, then a normal shutdown (CC.SHN) so the device
 * records a clean power-off, then give the device up. */
void pcie_ctrlr_close(struct pcie_ctrlr *c)
{
	struct nvmg_sqe cmd;
	bool gone;
	int ret;

	pcie_svc_stop(c);
	gone = atomic_load(&c->gone) || nvmg_vfio_rd32(&c->vfio, NVME_REG_CSTS) == UINT32_MAX;
	for (unsigned i = 0; i < c->nr_ioq; i++) {
		struct pcie_qpair *qp = c->ioq[i];

		if (!qp)
			continue;
		pcie_qp_detach(qp);
		if (!gone) {
			memset(&cmd, 0, sizeof(cmd));
			cmd.opcode = nvme_admin_delete_sq;
			cmd.cdw10 = htole32(qp->qid);
			ret = pcie_admin(c, &cmd, NULL);
			memset(&cmd, 0, sizeof(cmd));
			cmd.opcode = nvme_admin_delete_cq;
			cmd.cdw10 = htole32(qp->qid);
			if (!ret)
				ret = pcie_admin(c, &cmd, NULL);
			if (ret)
				log_warn("pcie %s: deleting I/O queue %u: %s%d", c->bdf, qp->qid,
					 ret < 0 ? "error " : "status 0x", ret);
		}
		pcie_qp_free(qp);
		free(qp);
	}
	free(c->ioq);
	if (!gone) {
		uint32_t cc = nvmg_vfio_rd32(&c->vfio, NVME_REG_CC);

		cc = (cc & ~(3u << 14)) | NVME_CC_SHN_NORMAL << 14;
		nvmg_vfio_wr32(&c->vfio, NVME_REG_CC, cc);
		ret = wait_csts(c, NVME_CSTS_SHST_MASK << NVME_CSTS_SHST_SHIFT,
				NVME_CSTS_SHST_CMPLT << NVME_CSTS_SHST_SHIFT, SHN_TIMEOUT_MS);
		if (ret)
			log_err("pcie %s: shutdown did not complete: %s", c->bdf, strerror(-ret));
		else
			log_info("pcie %s: clean shutdown", c->bdf);
		pcie_ctrlr_disable(c);
	}
	nvmg_vfio_set_msix(&c->vfio, NULL, 0);
	close_efds(c);
	nvmg_dma_free(&c->vfio, &c->admin_buf);
	pcie_qp_free(&c->admin);
	nvmg_vfio_close(&c->vfio);
	pthread_mutex_destroy(&c->admin_lock);
	pthread_mutex_destroy(&c->abort_lock);
	pthread_mutex_destroy(&c->ioq_lock);
	free(c);
}
