/* Unit tests for the userspace PCIe driver (nvme/pcie/, nvme/bdev_pcie.c)
 * against a software model of an NVMe controller: the register file is
 * plain memory a model thread polls, DMA goes through a fake IOMMU table,
 * MSI-X through the driver's eventfds. nvme/pcie/vfio.c is replaced by the
 * fakes below; everything else (reactor, bufpool, DMA memory, controller,
 * queue pairs, reset thread) is the real code. Faults the QEMU device cannot
 * produce are injected here: CSTS.CFS, a command that never completes,
 * device removal. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "tests/unit/check.h"
#include "lib/log.h"
#include "nvme/bdev/devreg.h"
#include "nvme/bdev/pcie/pcie.h"


/* ---------------------------------------------------------- the model */

#define BAR_SIZE 0x4000
#define NS_BLOCKS 8192 /* 4 MiB of 512-byte blocks */
#define MDTS 2         /* 16 KiB: 1 MiB commands split, PRP lists needed */
#define MAXQ 8
#define NMAP 64

struct mq {
	bool live;
	uint64_t base;
	uint16_t size, head, tail, cqid, iv;
	bool ien;
	uint8_t phase;
};

static struct model {
	uint8_t *bar;
	pthread_t thr;
	volatile bool stop;
	pthread_mutex_t lock;
	struct { uint64_t iova; uint8_t *va; size_t len; } map[NMAP];
	uint64_t next_iova;
	int efds[16];
	unsigned nefd;
	int req_fd;
	bool released;
	bool en;
	struct mq sq[MAXQ], cq[MAXQ];
	uint8_t *disk;
	/* fault knobs and observations */
	volatile bool cfs, hang_next_read, shutdown_seen;
	volatile unsigned hang_reads; /* this many more reads never complete */
	volatile unsigned hung, aborts, resets, max_prp_entries, reads, writes, wz, dsm, flushes;
} M;

static uint32_t rd32(uint32_t off)
{
	return __atomic_load_n((uint32_t *)(M.bar + off), __ATOMIC_ACQUIRE);
}

static void wr32(uint32_t off, uint32_t v)
{
	__atomic_store_n((uint32_t *)(M.bar + off), v, __ATOMIC_RELEASE);
}

static uint8_t *xlate(uint64_t iova, size_t len)
{
	uint8_t *p = NULL;

	pthread_mutex_lock(&M.lock);
	for (int i = 0; i < NMAP; i++)
		if (M.map[i].va && iova >= M.map[i].iova && iova + len <= M.map[i].iova + M.map[i].len)
			p = M.map[i].va + (iova - M.map[i].iova);
	pthread_mutex_unlock(&M.lock);
	if (!p) {
		fprintf(stderr, "model: DMA to unmapped IOVA 0x%llx (+%zu)\n", (unsigned long long)iova, len);
		abort(); /* a DMAR fault: the driver handed out a bad address */
	}
	return p;
}

/* Copies between the disk/buffer and the PRP-described host memory. */
static void prp_xfer(const struct nvmg_sqe *c, uint8_t *data, size_t len, bool to_host)
{
	uint64_t prp1, prp2, *list = NULL;
	size_t first, done = 0;
	unsigned n = 0;

	memcpy(&prp1, (const uint8_t *)c + 24, 8);
	memcpy(&prp2, (const uint8_t *)c + 32, 8);
	first = 4096 - (prp1 & 4095);
	if (first > len)
		first = len;
	if (len - first > 4096) {
		list = (uint64_t *)xlate(prp2, 8);
		if (prp2 & 7)
			abort();
	}
	for (uint64_t addr = prp1; done < len; n++) {
		size_t chunk = n ? (len - done < 4096 ? len - done : 4096) : first;

		if (n && (addr & 4095)) {
			fprintf(stderr, "model: PRP entry %u not page aligned\n", n);
			abort();
		}
		if (to_host)
			memcpy(xlate(addr, chunk), data + done, chunk);
		else
			memcpy(data + done, xlate(addr, chunk), chunk);
		done += chunk;
		if (done < len)
			addr = list ? list[n] : prp2;
	}
	if (list && n - 1 > M.max_prp_entries)
		M.max_prp_entries = n - 1;
}

static void complete(uint16_t sqid, uint16_t cid, uint16_t status, uint32_t dw0)
{
	struct mq *sq = &M.sq[sqid], *cq = &M.cq[sq->cqid];
	struct nvmg_cqe *e = (struct nvmg_cqe *)xlate(cq->base + (uint64_t)cq->tail * 16, 16);
	uint64_t one = 1;

	e->result = dw0;
	e->sqhd = sq->head;
	e->sqid = sqid;
	e->cid = cid;
	__atomic_store_n(&e->status, (uint16_t)(status << 1 | cq->phase), __ATOMIC_RELEASE);
	if (++cq->tail == cq->size) {
		cq->tail = 0;
		cq->phase ^= 1;
	}
	if (cq->ien && cq->iv < M.nefd && M.efds[cq->iv] >= 0 && write(M.efds[cq->iv], &one, 8) != 8)
		abort();
}

static void admin_cmd(const struct nvmg_sqe *c)
{
	uint32_t dw10 = c->cdw10, dw11 = c->cdw11;
	uint8_t buf[4096];
	uint16_t qid = dw10 & 0xffff;

	memset(buf, 0, sizeof(buf));
	switch (c->opcode) {
	case nvme_admin_identify:
		if ((dw10 & 0xff) == NVME_IDENTIFY_CNS_CTRL) {
			struct nvme_id_ctrl *id = (void *)buf;

			memcpy(id->mn, "model controller", 16);
			memcpy(id->sn, "MODEL0001", 9);
			id->mdts = MDTS;
			id->nn = 1;
			id->ver = 0x10400;
			id->vwc = NVME_CTRL_VWC_PRESENT;
			id->oncs = NVME_CTRL_ONCS_WRITE_ZEROES | NVME_CTRL_ONCS_DSM;
		} else if ((dw10 & 0xff) == NVME_IDENTIFY_CNS_NS) {
			struct nvme_id_ns *id = (void *)buf;

			if (c->nsid == 1) {
				id->nsze = id->ncap = NS_BLOCKS;
				id->lbaf[0].ds = 9;
				id->dlfeat = 1;
				memset(id->nguid, 0xab, 16);
				memset(id->eui64, 0xcd, 8);
			}
		} else if ((dw10 & 0xff) == NVME_IDENTIFY_CNS_NS_DESC_LIST) {
			buf[0] = NVME_NIDT_CSI; /* 1 byte: the UUID lands at an odd offset */
			buf[1] = 1;
			buf[5] = NVME_NIDT_UUID;
			buf[6] = 16;
			memset(buf + 9, 0xef, 16);
		}
		prp_xfer(c, buf, 4096, true);
		complete(0, c->cid, 0, 0);
		return;
	case nvme_admin_set_features:
		complete(0, c->cid, 0, 3u << 16 | 3u); /* 4 SQs, 4 CQs */
		return;
	case nvme_admin_create_cq:
		M.cq[qid] = (struct mq){ .live = true, .size = (uint16_t)((dw10 >> 16) + 1), .phase = 1,
					 .ien = dw11 & 2, .iv = (uint16_t)(dw11 >> 16) };
		memcpy(&M.cq[qid].base, (const uint8_t *)c + 24, 8);
		complete(0, c->cid, 0, 0);
		return;
	case nvme_admin_create_sq:
		M.sq[qid] = (struct mq){ .live = true, .size = (uint16_t)((dw10 >> 16) + 1),
					 .cqid = (uint16_t)(dw11 >> 16) };
		memcpy(&M.sq[qid].base, (const uint8_t *)c + 24, 8);
		complete(0, c->cid, 0, 0);
		return;
	case nvme_admin_delete_sq:
	case nvme_admin_delete_cq:
		complete(0, c->cid, 0, 0);
		if (c->opcode == nvme_admin_delete_sq)
			M.sq[qid].live = false;
		else
			M.cq[qid].live = false;
		return;
	case nvme_admin_get_log_page: {
		struct nvme_smart_log *l = (void *)buf;

		l->temperature[0] = 0x36; /* 310 K */
		l->temperature[1] = 0x01;
		prp_xfer(c, buf, sizeof(*l), true);
		complete(0, c->cid, 0, 0);
		return;
	}
	case nvme_admin_abort_cmd:
		M.aborts++;
		complete(0, c->cid, 0, 1); /* not aborted, like QEMU */
		return;
	default:
		complete(0, c->cid, NVME_SC_INVALID_OPCODE, 0);
	}
}

static void io_cmd(uint16_t sqid, const struct nvmg_sqe *c)
{
	uint64_t slba = c->cdw10 | (uint64_t)c->cdw11 << 32;
	uint32_t nlb = (c->cdw12 & 0xffff) + 1;

	switch (c->opcode) {
	case nvme_cmd_read:
		if (M.hang_next_read || M.hang_reads) {
			if (M.hang_next_read)
				M.hang_next_read = false;
			else
				M.hang_reads--;
			M.hung++;
			return; /* never completes */
		}
		M.reads++;
		prp_xfer(c, M.disk + slba * 512, (size_t)nlb * 512, true);
		break;
	case nvme_cmd_write:
		M.writes++;
		prp_xfer(c, M.disk + slba * 512, (size_t)nlb * 512, false);
		break;
	case nvme_cmd_write_zeroes:
		M.wz++;
		memset(M.disk + slba * 512, 0, (size_t)nlb * 512);
		break;
	case nvme_cmd_dsm: {
		struct nvme_dsm_range r;

		M.dsm++;
		prp_xfer(c, (uint8_t *)&r, sizeof(r), false);
		memset(M.disk + r.slba * 512, 0, (size_t)r.nlb * 512);
		break;
	}
	case nvme_cmd_flush:
		M.flushes++;
		break;
	default:
		complete(sqid, c->cid, NVME_SC_INVALID_OPCODE, 0);
		return;
	}
	complete(sqid, c->cid, 0, 0);
}

static void *model_main(void *arg)
{
	struct timespec ts = { 0, 20000 };

	(void)arg;
	while (!M.stop) {
		uint32_t cc = rd32(NVME_REG_CC), csts = rd32(NVME_REG_CSTS);

		if (M.released) {
			nanosleep(&ts, NULL);
			continue;
		}
		if (M.en && !(cc & 1)) {
			/* disable = controller reset: every queue gone */
			M.en = false;
			M.cfs = false;
			memset(M.sq, 0, sizeof(M.sq));
			memset(M.cq, 0, sizeof(M.cq));
			memset(M.bar + 0x1000, 0, 8 * MAXQ); /* doorbells reset too */
			M.resets++;
			csts = 0;
		} else if (!M.en && (cc & 1)) {
			uint32_t aqa = rd32(NVME_REG_AQA);
			uint64_t asq = rd32(NVME_REG_ASQ) | (uint64_t)rd32(NVME_REG_ASQ + 4) << 32;
			uint64_t acq = rd32(NVME_REG_ACQ) | (uint64_t)rd32(NVME_REG_ACQ + 4) << 32;

			M.en = true;
			M.sq[0] = (struct mq){ .live = true, .base = asq, .size = (uint16_t)((aqa & 0xfff) + 1) };
			M.cq[0] = (struct mq){ .live = true, .base = acq, .size = (uint16_t)((aqa >> 16) + 1), .phase = 1 };
			csts = 1;
		}
		if (((cc >> 14) & 3) == NVME_CC_SHN_NORMAL) {
			M.shutdown_seen = true;
			csts = (csts & ~(3u << 2)) | NVME_CSTS_SHST_CMPLT << 2;
		}
		csts = M.cfs ? csts | 2 : csts & ~2u;
		wr32(NVME_REG_CSTS, csts);
		for (uint16_t q = 0; M.en && q < MAXQ; q++) {
			struct mq *sq = &M.sq[q];
			uint16_t tail = (uint16_t)rd32(0x1000 + 8 * q);

			if (!sq->live || M.cfs)
				continue;
			while (sq->head != tail && tail < sq->size) {
				struct nvmg_sqe c;

				memcpy(&c, xlate(sq->base + (uint64_t)sq->head * 64, 64), 64);
				if (++sq->head == sq->size)
					sq->head = 0;
				if (q)
					io_cmd(q, &c);
				else
					admin_cmd(&c);
			}
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* ------------------------------------------- fake VFIO (vfio.h) for it */

int nvmg_vfio_valid_bdf(const char *bdf)
{
	return bdf && strlen(bdf) == 12;
}

int nvmg_vfio_open(struct nvmg_vfio *v, const char *bdf, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	memset(v, 0, sizeof(*v));
	snprintf(v->bdf, sizeof(v->bdf), "%s", bdf);
	v->container = v->group = v->device = 1;
	v->bar0 = M.bar;
	v->bar0_size = BAR_SIZE;
	v->msix_count = 8;
	pthread_mutex_init(&v->lock, NULL);
	M.released = false;
	return 0;
}

void nvmg_vfio_release_device(struct nvmg_vfio *v)
{
	if (v->device < 0)
		return;
	M.released = true;
	v->bar0 = NULL;
	v->device = -1;
}

void nvmg_vfio_close(struct nvmg_vfio *v)
{
	nvmg_vfio_release_device(v);
	pthread_mutex_destroy(&v->lock);
}

int nvmg_vfio_map(struct nvmg_vfio *v, void *vaddr, size_t len, uint64_t *iova)
{
	(void)v;
	pthread_mutex_lock(&M.lock);
	for (int i = 0; i < NMAP; i++) {
		if (!M.map[i].va) {
			M.map[i].va = vaddr;
			M.map[i].len = len;
			M.map[i].iova = M.next_iova;
			*iova = M.next_iova;
			M.next_iova += (len + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
			pthread_mutex_unlock(&M.lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&M.lock);
	return -ENOSPC;
}

int nvmg_vfio_unmap(struct nvmg_vfio *v, uint64_t iova, size_t len)
{
	(void)v;
	pthread_mutex_lock(&M.lock);
	for (int i = 0; i < NMAP; i++)
		if (M.map[i].va && M.map[i].iova == iova && M.map[i].len == len)
			M.map[i].va = NULL;
	pthread_mutex_unlock(&M.lock);
	return 0;
}

int nvmg_vfio_set_msix(struct nvmg_vfio *v, const int *fds, unsigned n)
{
	(void)v;
	for (unsigned i = 0; i < n && i < 16; i++)
		M.efds[i] = fds[i];
	M.nefd = n;
	return 0;
}

int nvmg_vfio_set_req(struct nvmg_vfio *v, int fd)
{
	(void)v;
	M.req_fd = fd;
	return 0;
}

void nvmg_vfio_bus_master(struct nvmg_vfio *v, int on)
{
	(void)v;
	(void)on;
}

/* ------------------------------------------------------------ harness */

static struct nvmg_reactor *R;
static struct nvmg_devreg *Reg; /* the namespaces share the controller through it */
static struct nvmg_bdev *B;

struct tio {
	struct nvmg_bdev_io io;
	sem_t done;
	int res;
	struct nvmg_reactor *r;       /* submitted on */
	struct nvmg_reactor *done_on; /* completed on */
};

static void tio_done(struct nvmg_bdev_io *io, int res)
{
	struct tio *t = nvmg_container_of(io, struct tio, io);

	t->res = res;
	t->done_on = nvmg_reactor_self();
	sem_post(&t->done);
}

static void tio_submit(void *arg)
{
	struct tio *t = arg;

	nvmg_bdev_submit(B, t->r, &t->io);
}

/* Submit on reactor r; wait_io collects the result. */
static int start_io_on(struct nvmg_reactor *r, struct tio *t, enum nvmg_bdev_op op, uint64_t off,
		       uint64_t len, void *buf)
{
	memset(t, 0, sizeof(*t));
	sem_init(&t->done, 0, 0);
	t->io.op = op;
	t->io.offset = off;
	t->io.len = len;
	t->io.buf = buf;
	t->io.complete = tio_done;
	t->r = r;
	return nvmg_reactor_post(r, tio_submit, t);
}

static int start_io(struct tio *t, enum nvmg_bdev_op op, uint64_t off, uint64_t len, void *buf)
{
	return start_io_on(R, t, op, off, len, buf);
}

static int wait_io(struct tio *t, int secs)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += secs;
	if (sem_timedwait(&t->done, &until))
		return 1;
	sem_destroy(&t->done);
	return t->res;
}

static int do_io(enum nvmg_bdev_op op, uint64_t off, uint64_t len, void *buf)
{
	struct tio t;

	if (start_io(&t, op, off, len, buf))
		return -999;
	return wait_io(&t, 10);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* -------------------------------------------------------------- tests */

static void test_bring_up(void)
{
	struct pcie_ns *ns = (struct pcie_ns *)B;

	CHECK(B->size == (uint64_t)NS_BLOCKS * 512);
	CHECK(B->block_size == 512);
	CHECK(B->volatile_cache && B->dealloc_zeroes);
	CHECK(B->nguid[0] == 0xab && B->eui64[7] == 0xcd);
	CHECK(B->uuid[0] == 0xef && B->uuid[15] == 0xef); /* found after the odd-sized CSI descriptor */
	CHECK(ns->c->max_xfer == 16384);
	CHECK(ns->c->nr_ioq == 4);
	CHECK(ns->c->nr_vec == 5);
}

static void test_rw_split_prp(void)
{
	size_t len = 1u << 20;
	uint8_t *w = malloc(len), *r = malloc(len);

	for (size_t i = 0; i < len; i++)
		w[i] = (uint8_t)(i * 7 + 3);
	CHECK(do_io(NVMG_BDEV_WRITE, 512 * 3, len, w) == 0);
	CHECK(!memcmp(M.disk + 512 * 3, w, len));
	memset(r, 0, len);
	CHECK(do_io(NVMG_BDEV_READ, 512 * 3, len, r) == 0);
	CHECK(!memcmp(r, w, len));
	/* 1 MiB at MDTS 16 KiB: 64 commands each way, each with a PRP list */
	CHECK(M.writes >= 64 && M.reads >= 64);
	CHECK(M.max_prp_entries == 3);
	CHECK(do_io(NVMG_BDEV_READ, 100, 512, r) == -EINVAL); /* not block aligned */
	CHECK(do_io(NVMG_BDEV_READ, B->size, 512, r) == -EINVAL);
	free(w);
	free(r);
}

/* A bufpool buffer is DMA'd in place: the model writes straight into it. */
static void zc_read(void *arg)
{
	struct tio *t = arg;

	t->io.buf = nvmg_buf_get(nvmg_reactor_bufpool(R), t->io.len);
	nvmg_bdev_submit(B, R, &t->io);
}

static void test_zero_copy(void)
{
	struct tio t;

	memset(&t, 0, sizeof(t));
	sem_init(&t.done, 0, 0);
	t.io.op = NVMG_BDEV_READ;
	t.io.offset = 512 * 3;
	t.io.len = 65536;
	t.io.complete = tio_done;
	CHECK(!nvmg_reactor_post(R, zc_read, &t));
	CHECK(wait_io(&t, 10) == 0);
	CHECK(!memcmp(t.io.buf, M.disk + 512 * 3, 65536));
	CHECK(((struct pcie_ns *)B)->c->ioq[0]->zc_base != NULL);
}

/* More reactors than the device grants queues (4): reactor 5 creates
 * queue 2 and owns it, reactor 1 shares it, reactor 4 shares reactor 0's.
 * Every command completes on the reactor that submitted it. */
static struct nvmg_reactor *X[3]; /* ids 1, 4, 5 */

static void test_shared_queues(void)
{
	static const unsigned ids[3] = { 5, 1, 4 };
	struct pcie_ctrlr *c = ((struct pcie_ns *)B)->c;
	uint8_t *w = malloc(3 * 65536), *r = malloc(3 * 65536);
	struct tio t[6];
	int ret;

	for (int i = 0; i < 3; i++) {
		X[i] = nvmg_reactor_create(ids[i], &ret);
		CHECK(X[i] && !nvmg_reactor_start(X[i]));
	}
	for (size_t i = 0; i < 3 * 65536; i++)
		w[i] = (uint8_t)(i * 13 + 1);
	/* reactor 5 first: it creates the queue that reactor 1 then shares */
	CHECK(!start_io_on(X[0], &t[0], NVMG_BDEV_WRITE, 1 << 20, 65536, w));
	CHECK(wait_io(&t[0], 10) == 0);
	for (int i = 1; i < 3; i++)
		CHECK(!start_io_on(X[i], &t[i], NVMG_BDEV_WRITE, (1 << 20) + i * 65536, 65536, w + i * 65536));
	for (int i = 1; i < 3; i++)
		CHECK(wait_io(&t[i], 10) == 0);
	CHECK(!memcmp(M.disk + (1 << 20), w, 3 * 65536));
	memset(r, 0, 3 * 65536);
	for (int i = 0; i < 3; i++)
		CHECK(!start_io_on(X[i], &t[3 + i], NVMG_BDEV_READ, (1 << 20) + i * 65536, 65536, r + i * 65536));
	for (int i = 0; i < 3; i++) {
		CHECK(wait_io(&t[3 + i], 10) == 0);
		CHECK(t[i].done_on == X[i] && t[3 + i].done_on == X[i]);
	}
	CHECK(!memcmp(r, w, 3 * 65536));
	CHECK(c->ioq[1] && c->ioq[1]->r == X[0]); /* reactor 5 owns queue 2 */
	CHECK(c->ioq[0] && c->ioq[0]->r == R);
	CHECK(!c->ioq[2] && !c->ioq[3]);
	free(w);
	free(r);
}

static void test_zeroes_dsm_flush(void)
{
	uint8_t zero[8192] = { 0 };

	memset(M.disk, 0x5a, 65536);
	CHECK(do_io(NVMG_BDEV_WRITE_ZEROES, 0, 8192, NULL) == 0);
	CHECK(!memcmp(M.disk, zero, 8192));
	CHECK(do_io(NVMG_BDEV_DEALLOCATE, 16384, 8192, NULL) == 0);
	CHECK(!memcmp(M.disk + 16384, zero, 8192));
	CHECK(M.disk[8192] == 0x5a);
	CHECK(do_io(NVMG_BDEV_FLUSH, 0, 0, NULL) == 0);
	CHECK(M.wz == 1 && M.dsm == 1 && M.flushes == 1);
}

static void test_smart(void)
{
	struct nvme_smart_log log;

	CHECK(B->ops->smart_log(B, &log) == 0);
	CHECK(log.temperature[0] == 0x36 && log.temperature[1] == 0x01);
}

/* CSTS.CFS with a command outstanding: reset, the command fails with a
 * retryable error, and I/O works afterwards on re-created queues. */
static void test_cfs_reset(void)
{
	uint8_t buf[4096];
	struct tio t;
	unsigned resets = M.resets;

	M.hang_next_read = true;
	CHECK(!start_io(&t, NVMG_BDEV_READ, 0, 4096, buf));
	sleep_ms(100);
	M.cfs = true;
	CHECK(wait_io(&t, 10) == -EAGAIN);
	CHECK(M.resets == resets + 1);
	for (int i = 0; i < 100 && atomic_load(&((struct pcie_ns *)B)->c->resetting); i++)
		sleep_ms(20);
	memset(M.disk, 0x11, 4096);
	CHECK(do_io(NVMG_BDEV_READ, 0, 4096, buf) == 0);
	CHECK(buf[0] == 0x11 && buf[4095] == 0x11);
}

/* A reset with more commands than the queue has slots: the rest wait in
 * the driver's list, and every one of them fails retryably. */
static void test_reset_with_waiting(void)
{
	enum { N = 300 };
	static struct tio t[N];
	static uint8_t buf[N][512];
	int again = 0;

	M.hang_reads = N;
	for (int i = 0; i < N; i++)
		CHECK(!start_io(&t[i], NVMG_BDEV_READ, (uint64_t)i * 512, 512, buf[i]));
	sleep_ms(200);
	M.cfs = true;
	for (int i = 0; i < N; i++)
		again += wait_io(&t[i], 10) == -EAGAIN;
	CHECK(again == N);
	M.hang_reads = 0;
	for (int i = 0; i < 100 && atomic_load(&((struct pcie_ns *)B)->c->resetting); i++)
		sleep_ms(20);
	CHECK(do_io(NVMG_BDEV_READ, 0, 512, buf[0]) == 0);
}

/* A command that never completes: Abort (the model does not abort, like
 * QEMU), then a reset fails it with a retryable error. */
static void test_timeout_abort_reset(void)
{
	struct pcie_ns *ns = (struct pcie_ns *)B;
	uint8_t buf[4096];
	struct tio t;
	unsigned resets = M.resets, aborts = M.aborts;

	ns->c->io_timeout_ms = 300;
	M.hang_next_read = true;
	CHECK(!start_io(&t, NVMG_BDEV_READ, 0, 4096, buf));
	CHECK(wait_io(&t, 10) == -EAGAIN);
	CHECK(M.aborts == aborts + 1);
	CHECK(M.resets == resets + 1);
	ns->c->io_timeout_ms = PCIE_IO_TIMEOUT_MS;
	for (int i = 0; i < 100 && atomic_load(&ns->c->resetting); i++)
		sleep_ms(20);
	CHECK(do_io(NVMG_BDEV_READ, 0, 4096, buf) == 0);
}

/* The kernel asks for the device back: I/O fails, the device is released. */
static void test_removal(void)
{
	uint8_t buf[4096];
	uint64_t one = 1;

	CHECK(M.req_fd >= 0 && write(M.req_fd, &one, 8) == 8);
	for (int i = 0; i < 100 && !M.released; i++)
		sleep_ms(20);
	CHECK(M.released);
	CHECK(do_io(NVMG_BDEV_READ, 0, 4096, buf) == -ENODEV);
	CHECK(B->ops->smart_log(B, &(struct nvme_smart_log){ 0 }) != 0);
}

int main(void)
{
	char err[256] = "";
	int ret;

	nvmg_log_set_level(NVMG_LOG_ERROR);
	pthread_mutex_init(&M.lock, NULL);
	M.bar = aligned_alloc(4096, BAR_SIZE);
	memset(M.bar, 0, BAR_SIZE);
	/* CAP: MQES 255, CQR, TO 2 (1 s), DSTRD 0, CSS NVM, MPSMIN 0 */
	uint64_t cap = 255 | 1ull << 16 | 2ull << 24 | 1ull << 37;
	memcpy(M.bar + NVME_REG_CAP, &cap, 8);
	wr32(NVME_REG_VS, 0x10400);
	M.disk = calloc(NS_BLOCKS, 512);
	M.next_iova = 1ull << 32;
	M.req_fd = -1;
	pthread_create(&M.thr, NULL, model_main, NULL);

	Reg = nvmg_devreg_create();
	R = nvmg_reactor_create(0, &ret);
	if (!Reg || !R || nvmg_reactor_start(R)) {
		fprintf(stderr, "cannot start a reactor (io_uring)\n");
		return 1;
	}
	ret = nvmg_bdev_pcie_open(Reg, "0000:00:04.0", 1, false, &B, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "open: %s (%d)\n", err, ret);
		return 1;
	}
	CHECK(nvmg_bdev_pcie_open(Reg, "0000:00:04.0", 2, false, &(struct nvmg_bdev *){ NULL }, err, sizeof(err)) ==
	      -ENODEV);
	CHECK(strstr(err, "has no namespace 2") != NULL);

	test_bring_up();
	test_rw_split_prp();
	test_zero_copy();
	test_shared_queues();
	test_zeroes_dsm_flush();
	test_smart();
	test_cfs_reset();
	test_reset_with_waiting();
	test_timeout_abort_reset();

	/* a clean close: queues deleted, CC.SHN, SHST complete */
	B->ops->close(B);
	CHECK(M.shutdown_seen);
	for (int i = 0; i < 3; i++) { /* their queues are gone with the close */
		nvmg_reactor_stop(X[i]);
		nvmg_reactor_destroy(X[i]);
	}
	M.shutdown_seen = false;
	wr32(NVME_REG_CC, 0);
	sleep_ms(20);
	ret = nvmg_bdev_pcie_open(Reg, "0000:00:04.0", 1, false, &B, err, sizeof(err));
	CHECK(ret == 0);
	if (ret)
		fprintf(stderr, "reopen: %s\n", err);
	if (!ret) {
		test_removal();
		B->ops->close(B);
		CHECK(!M.shutdown_seen); /* a removed device gets no register access */
	}
	nvmg_reactor_stop(R);
	nvmg_reactor_destroy(R);
	nvmg_devreg_destroy(Reg);
	M.stop = true;
	pthread_join(M.thr, NULL);
	free(M.disk);
	free(M.bar);
	return check_report("test_pcie");
}
