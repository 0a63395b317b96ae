/* The admin command set (nvme/admin.c, identify.c, log_page.c,
 * features.c, discovery.c) and the I/O command parser (io_cmd.c) on the
 * small target of tests/unit/admin_world.h, with every command field
 * random.
 *
 * Input: commands back to back, each one byte choosing the queue (I/O
 * controller's admin queue, discovery controller's, an I/O queue), the
 * 64-byte SQE, on an I/O queue two bytes of SGL length, then the data
 * the command moves to the target. The state
 * (features set, AENs masked) carries from one command to the next.
 * Each reply must hold: a status of a valid type, parsed data lengths
 * within MDTS and matching the direction, the handler completing exactly
 * once and writing only within the data_len bytes it asked for (the
 * buffer is exactly that size), and per command what a host relies on
 * (Identify's CNTLID and NN, the active namespace list ascending above
 * the NSID given, the queue counts granted). */
#include "tests/fuzz/fuzz.h"
#include "tests/unit/admin_world.h"

/* The backend completes at once: the parse and the range checks are what
 * is fuzzed here, not a backend. What reaches it lies within the device,
 * and a transfer is the command's data_len. */
static void fake_submit(struct nvmg_bdev *b, struct nvmg_reactor *r, struct nvmg_bdev_io *io)
{
	struct nvmg_req *req = nvmg_container_of(io, struct nvmg_req, io);

	(void)r;
	if (io->op != NVMG_BDEV_FLUSH)
		FUZZ_CHECK(io->offset <= b->size && io->len <= b->size - io->offset);
	/* Compare reads into its own buffer of data_len bytes. */
	if (io->op == NVMG_BDEV_READ || io->op == NVMG_BDEV_WRITE)
		FUZZ_CHECK(io->len == req->data_len &&
			   (io->buf == req->buf || req->cmd.opcode == nvme_cmd_compare));
	if (io->op != NVMG_BDEV_READ && io->op != NVMG_BDEV_FLUSH)
		FUZZ_CHECK(!req->ns->readonly);
	io->complete(io, 0);
}

static const struct nvmg_bdev_ops fake_ops = { .name = "fake", .submit = fake_submit };

static void check_identify(struct world *w, struct treq *r, const uint8_t *buf)
{
	uint8_t cns = le32toh(r->req.cmd.cdw10) & 0xff;
	uint32_t nsid = le32toh(r->req.cmd.nsid);

	if (r->status)
		return;
	if (cns == NVME_IDENTIFY_CNS_CTRL) {
		const struct nvme_id_ctrl *id = (const void *)buf;

		FUZZ_CHECK(le16toh(id->cntlid) == r->req.sq->ctrl->cntlid);
		if (!r->req.sq->ctrl->subsys->discovery)
			FUZZ_CHECK(le32toh(id->nn) >= 7);
	} else if (cns == NVME_IDENTIFY_CNS_NS_ACTIVE_LIST) {
		const uint32_t *list = (const void *)buf;
		uint32_t prev = nsid;
		size_t i;

		for (i = 0; i < 1024 && list[i]; i++) {
			FUZZ_CHECK(le32toh(list[i]) > prev);
			prev = le32toh(list[i]);
			FUZZ_CHECK(prev == 1 || prev == 2 || prev == 7);
		}
		for (; i < 1024; i++)
			FUZZ_CHECK(list[i] == 0);
	}
	(void)w;
}

static void check_features(struct treq *r)
{
	uint8_t fid = le32toh(r->req.cmd.cdw10) & 0xff;
	uint32_t dw0 = (uint32_t)le64toh(r->req.cqe.result);

	if (r->status)
		return;
	if (fid == NVME_FEAT_FID_NUM_QUEUES) {
		/* 0's based counts, never more than we have. */
		FUZZ_CHECK((dw0 & 0xffff) < NVMG_MAX_IO_QUEUES);
		FUZZ_CHECK((dw0 >> 16) < NVMG_MAX_IO_QUEUES);
	}
}

static void run_one(struct world *w, struct fuzz_in *in)
{
	struct nvmg_sq *sqs[] = { &w->asq, &w->dsq, &w->iosq1, &w->iosq2 };
	struct nvmg_sq *sq = sqs[fuzz_u8(in) % 4];
	struct treq *r = new_req(sq, 0, 0, 0, 0);
	uint8_t *buf;
	uint16_t st;

	fuzz_take(in, &r->req.cmd, sizeof(r->req.cmd));
	/* What the transport read from the SGL (DSM takes up to 4 KiB). */
	if (sq->qid)
		r->req.sgl_len = fuzz_u16(in) & 0x1fff;
	if (sq->qid)
		st = nvmg_parse_io(&r->req);
	else if (sq->ctrl->subsys->discovery)
		st = nvmg_parse_discovery_admin(&r->req);
	else
		st = nvmg_parse_admin(&r->req);
	FUZZ_CHECK(!r->done);
	if (st) {
		FUZZ_CHECK(fuzz_status_ok(st) && st);
		if (r->req.ns) /* the core's nvmg_req_complete drops it */
			nvmg_ns_put(r->req.ns);
		free(r);
		return;
	}
	FUZZ_CHECK(r->req.execute);
	FUZZ_CHECK(r->req.data_len <= NVMG_MAX_DATA);
	FUZZ_CHECK((r->req.dir == NVMG_DIR_NONE) == (r->req.data_len == 0));
	/* Exactly data_len bytes: ASan stops a handler that writes past. */
	buf = malloc(r->req.data_len ? r->req.data_len : 1);
	if (r->req.dir == NVMG_DIR_FROM_HOST)
		fuzz_take(in, buf, r->req.data_len);
	else
		memset(buf, 0xa5, r->req.data_len);
	r->req.buf = buf;
	r->req.execute(&r->req);
	FUZZ_CHECK(r->done);
	FUZZ_CHECK(fuzz_status_ok(r->status));
	if (r->req.ns) {
		nvmg_ns_put(r->req.ns); /* the core's nvmg_req_complete drops it */
		r->req.ns = NULL;
	}
	if (!sq->qid && r->req.cmd.opcode == nvme_admin_identify)
		check_identify(w, r, buf);
	if (!sq->qid && r->req.cmd.opcode == nvme_admin_get_features)
		check_features(r);
	free(buf);
	free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* One world, put back to its first state before each input: a copy
	 * at the same address keeps its pointers, and world_new's identity
	 * hashing is not redone 10,000 times a second. */
	static struct world *w, *fresh;
	struct fuzz_in in = { data, size };

	if (!w) {
		w = world_new();
		w->bdev_cache.ops = &fake_ops;
		w->bdev_plain.ops = &fake_ops;
		fresh = malloc(sizeof(*fresh));
		memcpy(fresh, w, sizeof(*w));
	}
	memcpy(w, fresh, sizeof(*w));
	for (int n = 0; in.left && n < 64; n++)
		run_one(w, &in);
	for (size_t i = 0; i < w->a.nr_ns; i++)
		FUZZ_CHECK(atomic_load(&w->a.ns[i]->refs) == 0);
	return 0;
}
