/* PCIe backend: one namespace of a userspace-driven NVMe controller.
 * Namespaces of one device share its controller (devreg.c, the registry its opener passes); each
 * reactor submits on its own I/O queue pair. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nvme/bdev/devreg.h"
#include "lib/log.h"
#include "nvme/bdev/pcie/pcie.h"

static void *ctrlr_open(const char *bdf, char *err, size_t errlen, int *ret)
{
	struct pcie_ctrlr *c = NULL;

	*ret = pcie_ctrlr_open(bdf, &c, err, errlen);
	return *ret ? NULL : c;
}

static void ctrlr_close(void *dev)
{
	pcie_ctrlr_close(dev);
}

/* A command from a reactor that shares another reactor's queue pair: it
 * is submitted and completed on the owner's thread, then completed to the
 * caller on its own thread, as every backend completes. */
struct pcie_fwd {
	struct nvmg_bdev_io proxy; /* what the owner's queue pair sees */
	struct nvmg_bdev_io *io;
	struct nvmg_reactor *origin;
	struct pcie_qpair *qp;
	struct pcie_ns *ns;
	struct nvmg_msg msg;
	int res;
};

static void fwd_complete(void *arg)
{
	struct pcie_fwd *f = arg;
	struct nvmg_bdev_io *io = f->io;
	int res = f->res;

	free(f);
	io->complete(io, res);
}

static void fwd_done(struct nvmg_bdev_io *proxy, int res)
{
	struct pcie_fwd *f = nvmg_container_of(proxy, struct pcie_fwd, proxy);

	f->res = res;
	f->msg.fn = fwd_complete;
	nvmg_reactor_send(f->origin, &f->msg);
}

static void fwd_submit(void *arg)
{
	struct pcie_fwd *f = arg;

	pcie_qp_submit(f->qp, f->ns, &f->proxy);
}

static void forward(struct pcie_ns *ns, struct pcie_qpair *qp, struct nvmg_reactor *r,
		    struct nvmg_bdev_io *io)
{
	struct pcie_fwd *f = calloc(1, sizeof(*f));

	if (!f) {
		io->complete(io, -ENOMEM);
		return;
	}
	if (!atomic_exchange(&ns->c->warned_queues, true))
		log_warn("pcie %s: the device grants %u I/O queues for more reactors: reactors share "
			 "them (reactor %u through reactor %u's queue), one thread hop per command",
			 ns->c->bdf, ns->c->nr_ioq, nvmg_reactor_id(r), nvmg_reactor_id(qp->r));
	f->proxy.op = io->op;
	f->proxy.fua = io->fua;
	f->proxy.offset = io->offset;
	f->proxy.len = io->len;
	f->proxy.buf = io->buf;
	f->proxy.bdev = io->bdev;
	f->proxy.reactor = qp->r;
	f->proxy.complete = fwd_done;
	f->io = io;
	f->origin = r;
	f->qp = qp;
	f->ns = ns;
	f->msg.fn = fwd_submit;
	f->msg.arg = f;
	nvmg_reactor_send(qp->r, &f->msg);
}

static void pcie_submit(struct nvmg_bdev *b, struct nvmg_reactor *r, struct nvmg_bdev_io *io)
{
	struct pcie_ns *ns = (struct pcie_ns *)b;
	struct pcie_qpair *qp;
	int res;

	if (b->readonly && io->op != NVMG_BDEV_READ && io->op != NVMG_BDEV_FLUSH) {
		io->complete(io, -EROFS);
		return;
	}
	qp = pcie_ctrlr_ioq(ns->c, r, &res);
	if (!qp) {
		/* A reset is under way, or creating the queue failed (logged). */
		io->complete(io, res);
		return;
	}
	if (qp->r != r)
		forward(ns, qp, r, io);
	else
		pcie_qp_submit(qp, ns, io);
}

static int pcie_smart_log(struct nvmg_bdev *b, struct nvme_smart_log *log)
{
	return pcie_ctrlr_smart(((struct pcie_ns *)b)->c, log);
}

static void pcie_close(struct nvmg_bdev *b)
{
	struct pcie_ns *ns = (struct pcie_ns *)b;

	nvmg_devreg_put(ns->reg, ns->c->bdf, ctrlr_close);
	free(ns);
}

static const struct nvmg_bdev_ops pcie_ops = {
	.name = "pcie",
	.submit = pcie_submit,
	/* No flush_sync: close ends in CC.SHN, which makes the device
	 * write back its cache; I/O queues are per reactor, not callable
	 * from the closing thread. */
	.close = pcie_close,
	.smart_log = pcie_smart_log,
};

int nvmg_bdev_pcie_open(struct nvmg_devreg *reg, const char *bdf, uint32_t nsid, bool readonly, struct nvmg_bdev **out,
			char *err, size_t errlen)
{
	struct pcie_ns *ns = calloc(1, sizeof(*ns));
	char why[256] = "";
	int ret;

	if (!ns)
		return -ENOMEM;
	if (!nvmg_vfio_valid_bdf(bdf)) {
		free(ns);
		return -EINVAL;
	}
	ns->reg = reg;
	ns->c = nvmg_devreg_get(reg, bdf, ctrlr_open, why, sizeof(why), &ret);
	if (!ns->c) {
		if (err)
			snprintf(err, errlen, "%s", why[0] ? why : strerror(-ret));
		free(ns);
		return ret ? ret : -ENODEV;
	}
	ns->nsid = nsid;
	ns->b.ops = &pcie_ops;
	ret = pcie_ctrlr_ns_info(ns->c, ns, why, sizeof(why));
	if (ret) {
		if (err)
			snprintf(err, errlen, "%s", why);
		nvmg_devreg_put(reg, bdf, ctrlr_close);
		free(ns);
		return ret;
	}
	ns->b.readonly = readonly;
	log_info("pcie %s: namespace %u: %llu blocks of %u bytes%s%s%s", bdf, nsid,
		 (unsigned long long)(ns->b.size >> ns->lba_shift), 1u << ns->lba_shift,
		 ns->b.volatile_cache ? ", volatile cache" : "", ns->has_wz ? ", write zeroes" : "",
		 ns->has_dsm ? (ns->b.dealloc_zeroes ? ", deallocate (reads zeros)" : ", deallocate") : "");
	*out = &ns->b;
	return 0;
}
