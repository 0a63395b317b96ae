/* The userspace NVMe PCIe driver: controller, queue pairs, and the
 * namespace backend glue. Internal to nvme/pcie/ and nvme/bdev_pcie.c. */
#ifndef NVMG_PCIE_H
#define NVMG_PCIE_H

#include <pthread.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <endian.h>
#include "lib/reactor.h"
#include "nvme/bdev/bdev.h"
#include "nvme/spec.h"
#include "nvme/bdev/pcie/dma.h"
#include "nvme/bdev/pcie/vfio.h"

#define PCIE_PAGE 4096u
#define PCIE_ADMIN_DEPTH 32
#define PCIE_IO_DEPTH 128        /* capped by CAP.MQES */
#define PCIE_CHUNK (128u << 10)  /* bounce buffer per command slot */
#define PCIE_MAX_XFER (1u << 20) /* one PRP list page covers it */
#define PCIE_SGL_THRESHOLD (32u << 10) /* SGLs from this size, PRPs below */
#define PCIE_IO_TIMEOUT_MS 30000
#define PCIE_ADMIN_TIMEOUT_MS 10000
#define PCIE_WANT_QUEUES 64      /* asked of Set Features Number of Queues */

struct pcie_ctrlr;

struct pcie_slot {
	struct nvmg_bdev_io *io; /* NULL when free */
	uint64_t off, len;       /* bytes of io this command moves */
	uint64_t *prp_list;
	uint64_t prp_iova;
	uint8_t *bounce;
	uint64_t bounce_iova;
	uint64_t start_ms;
	uint16_t next_free;
	bool aborted;
	bool zc;                 /* data moves in place (no bounce copy) */
};

struct pcie_qpair {
	struct pcie_ctrlr *c;
	uint16_t qid, depth;
	struct nvmg_dma mem;
	struct nvmg_sqe *sq;
	volatile struct nvmg_cqe *cq;
	uint64_t sq_iova, cq_iova;
	uint16_t sq_tail, cq_head;
	uint16_t phase;
	uint32_t sq_db, cq_db;    /* doorbell offsets in BAR0 */
	struct pcie_slot *slots;
	uint16_t free_head;
	unsigned outstanding;
	STAILQ_HEAD(, nvmg_bdev_io) wait; /* waiting for a slot, oldest first */
	/* Completion notification: an MSI-X eventfd read, or without one a
	 * short io_uring timeout, armed only while commands are outstanding. */
	struct nvmg_reactor *r;
	int efd;
	uint64_t efd_val;
	struct __kernel_timespec poll_ts;
	struct nvmg_ev ev;
	atomic_bool armed;
	struct nvmg_ticker ticker;
	bool ticking;
	struct { struct nvmg_bdev_io *io; int res; } *done; /* reap scratch */
	/* The reactor's buffer arena (daemon/bufpool), mapped for the device:
	 * network buffers from it need no bounce copy. */
	uint8_t *zc_base;
	size_t zc_size;
	uint64_t zc_iova;
};

/* One controller, shared by all of its exported namespaces. */
struct pcie_ctrlr {
	char bdf[16];
	struct nvmg_vfio vfio;
	uint64_t cap;
	uint32_t dstrd;           /* doorbell stride in bytes */
	uint32_t mqes;            /* entries per queue, 1's based */
	uint32_t to_ms;           /* CAP.TO */
	uint32_t max_xfer;        /* bytes, from MDTS */
	uint32_t io_timeout_ms;   /* PCIE_IO_TIMEOUT_MS (tests shorten it) */
	bool use_sgl;             /* SGLS: one Data Block descriptor per command */
	struct nvme_id_ctrl id;
	pthread_mutex_t admin_lock;
	struct pcie_qpair admin;
	struct nvmg_dma admin_buf; /* data for admin commands */
	unsigned nr_ioq;           /* granted by Set Features Number of Queues */
	struct pcie_qpair **ioq;   /* index = reactor id % nr_ioq; created on first use */
	pthread_mutex_t ioq_lock;  /* serialises creating them */
	int *efds;                 /* MSI-X eventfds, index = vector */
	unsigned nr_vec;
	/* Slow path (ctrlr.c): a service thread per controller performs
	 * resets and device removal, so reactors never block on them. While
	 * resetting or gone, reactors touch no register and fail new I/O. */
	atomic_bool gone;          /* removed or dead: I/O fails with ENODEV */
	atomic_bool resetting;     /* I/O fails with EAGAIN (host retries) */
	atomic_bool reset_req, stop;
	atomic_bool warned_queues; /* "reactors share I/O queues" said once */
	pthread_mutex_t abort_lock;
	uint32_t aborts[32];       /* Abort CDW10s (CID << 16 | SQID) to send */
	unsigned nr_aborts;
	int req_efd;               /* VFIO device request: the kernel wants it back */
	int wake_efd;              /* reset request or stop */
	pthread_t svc;
	bool svc_running;
};

/* Why I/O cannot go to the device now: -ENODEV once gone (not EIO: no
 * media error for hosts to read into it), -EAGAIN while resetting (hosts
 * retry), else 0. */
static inline int pcie_ctrlr_unusable(struct pcie_ctrlr *c)
{
	if (atomic_load_explicit(&c->gone, memory_order_acquire))
		return -ENODEV;
	if (atomic_load_explicit(&c->resetting, memory_order_acquire))
		return -EAGAIN;
	return 0;
}

/* Per exported namespace (the nvmg_bdev of one NSID). */
struct pcie_ns {
	struct nvmg_bdev b;
	struct pcie_ctrlr *c;
	struct nvmg_devreg *reg; /* c's registry: close puts c back there */
	uint32_t nsid;
	uint8_t lba_shift;
	bool has_wz, has_dsm;
};

/* ctrlr.c */
int pcie_ctrlr_open(const char *bdf, struct pcie_ctrlr **out, char *err, size_t errlen);
void pcie_ctrlr_close(struct pcie_ctrlr *c);
/* Synchronous admin command; data (if any) is in c->admin_buf. Returns
 * the NVMe status (0 = success, > 0 status field) or -errno. */
int pcie_admin(struct pcie_ctrlr *c, struct nvmg_sqe *cmd, uint32_t *cdw0);
int pcie_ctrlr_ns_info(struct pcie_ctrlr *c, struct pcie_ns *ns, char *err, size_t errlen);
int pcie_ctrlr_smart(struct pcie_ctrlr *c, struct nvme_smart_log *log);
/* NULL with *res = -EAGAIN (resetting), -ENODEV (gone) or -EIO. */
struct pcie_qpair *pcie_ctrlr_ioq(struct pcie_ctrlr *c, struct nvmg_reactor *r, int *res);
int pcie_ctrlr_disable(struct pcie_ctrlr *c);
int pcie_ctrlr_enable(struct pcie_ctrlr *c, char *err, size_t errlen);
int pcie_ctrlr_create_queue(struct pcie_ctrlr *c, struct pcie_qpair *qp);
/* Set Features Number of Queues; *granted = I/O queue pairs allowed.
 * Returns 0, -errno or an NVMe status. */
int pcie_ctrlr_set_queues(struct pcie_ctrlr *c, unsigned *granted);

/* reset.c */
int pcie_svc_start(struct pcie_ctrlr *c);
void pcie_svc_stop(struct pcie_ctrlr *c);
/* From a reactor: ask the service thread for a controller reset. */
void pcie_ctrlr_request_reset(struct pcie_ctrlr *c, const char *why);
/* From a reactor: have the service thread send Abort for (sqid, cid). */
void pcie_ctrlr_request_abort(struct pcie_ctrlr *c, uint16_t sqid, uint16_t cid);

/* qpair.c */
/* Bytes of DMA memory a queue pair of depth entries pins. */
size_t pcie_qp_dma_len(uint16_t depth, bool io);
int pcie_qp_alloc(struct pcie_ctrlr *c, struct pcie_qpair *qp, uint16_t qid, uint16_t depth,
		  bool io, char *err, size_t errlen);
void pcie_qp_free(struct pcie_qpair *qp);
void pcie_qp_submit(struct pcie_qpair *qp, struct pcie_ns *ns, struct nvmg_bdev_io *io);
/* Admin queue: post one command, poll its completion. */
int pcie_qp_sync(struct pcie_qpair *qp, struct nvmg_sqe *cmd, uint32_t timeout_ms, uint32_t *cdw0);
void pcie_qp_detach(struct pcie_qpair *qp);
/* On the owning reactor: complete everything outstanding or waiting with
 * res (the controller is disabled or gone, so no DMA is pending); with
 * reset_rings, the rings restart empty for re-created queues. */
void pcie_qp_abort_all(struct pcie_qpair *qp, int res, bool reset_rings);
/* Empty rings, as a re-enabled controller expects them. */
void pcie_qp_reset_rings(struct pcie_qpair *qp);

static inline void pcie_sqe_prp(struct nvmg_sqe *cmd, uint64_t prp1, uint64_t prp2)
{
	/* PRP1/PRP2 overlay the SGL descriptor at SQE bytes 24..39. */
	uint64_t le1 = htole64(prp1), le2 = htole64(prp2);

	memcpy((uint8_t *)cmd + 24, &le1, 8);
	memcpy((uint8_t *)cmd + 32, &le2, 8);
}

#endif
