/* Connect (nvme/fabrics.c) with a random command and random Connect data,
 * on a queue of the small target of tests/unit/admin_world.h that no
 * Connect has bound yet. The controller functions are fakes: what is
 * fuzzed is what Connect checks before and around them.
 *
 * Input: one byte choosing the port (p1 exports A and B, B for HOST2
 * only; p2 exports C), the 64-byte SQE, the 1024 bytes of Connect data.
 * A success must name a subsystem the port exports (or discovery), a host
 * it allows, SQSIZE within MQES, and CNTLID FFFFh for an admin queue; it
 * answers the controller's CNTLID and binds the queue. A failure leaves
 * the queue unbound, with a status of a valid type, and Connect Invalid
 * Parameters names a field inside the SQE or the data. */
#include "tests/fuzz/fuzz.h"
#include "nvme/auth.h"
#include "tests/unit/admin_world.h"

static struct world *w;
static struct nvmg_ctrl *made; /* what the fake nvmg_ctrl_create returned */
static int host_queues;        /* nvmg_target_host_queue_get minus _put */

struct nvmg_subsys *nvmg_target_find_subsys(struct nvmg_target *t, const char *nqn)
{
	if (!strcmp(nqn, NVMG_DISC_NQN))
		return t->discovery;
	for (size_t i = 0; i < t->nr_subsys; i++)
		if (!strcmp(t->subsys[i]->nqn, nqn))
			return t->subsys[i];
	return NULL;
}

bool nvmg_port_exports(struct nvmg_target *t, const struct nvmg_port *p,
		       const struct nvmg_subsys *s)
{
	(void)t;
	return nvmg_port_exports_locked(p, s);
}

bool nvmg_target_host_queue_get(struct nvmg_target *t, const char *hostnqn)
{
	(void)t;
	/* An empty host NQN is a host too (allow-any-host subsystems take it,
	 * as the Linux target and SPDK do); it counts like any other. */
	FUZZ_CHECK(strlen(hostnqn) < NVME_NQN_LENGTH);
	host_queues++;
	return true;
}

void nvmg_target_host_queue_put(struct nvmg_target *t, const char *hostnqn)
{
	(void)t;
	(void)hostnqn;
	host_queues--;
}

/* No host has a DH-HMAC-CHAP key here: no queue must authenticate. */
int nvmg_auth_queue_setup(struct nvmg_sq *sq, const char *hostnqn, const struct nvmg_subsys *s)
{
	(void)hostnqn;
	(void)s;
	sq->auth = NULL;
	return 0;
}

uint32_t nvmg_auth_queue_start(struct nvmg_sq *sq)
{
	(void)sq;
	return 0;
}

void nvmg_auth_queue_free(struct nvmg_sq *sq)
{
	(void)sq;
}

bool nvmg_auth_queue_ok(const struct nvmg_sq *sq)
{
	(void)sq;
	return true;
}

uint16_t nvmg_parse_auth(struct nvmg_req *req)
{
	(void)req;
	return NVMG_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVME_SC_DNR;
}

struct nvmg_ctrl *nvmg_ctrl_create(struct nvmg_target *tgt, struct nvmg_subsys *s,
				   struct nvmg_port *port, const struct nvmf_connect_data *d,
				   uint32_t kato_ms, uint16_t *status)
{
	(void)tgt;
	(void)port;
	(void)kato_ms;
	(void)status;
	FUZZ_CHECK(!made);
	made = calloc(1, sizeof(*made));
	made->subsys = s;
	made->cntlid = 33;
	memcpy(made->hostnqn, d->hostnqn, sizeof(made->hostnqn));
	memcpy(made->hostid, d->hostid, sizeof(made->hostid));
	pthread_mutex_init(&made->lock, NULL);
	return made;
}

/* The world's I/O controller (CNTLID 5 on A, HOST1) takes I/O queues. */
struct nvmg_ctrl *nvmg_ctrl_find(struct nvmg_subsys *s, uint16_t cntlid)
{
	return s == w->ctrl.subsys && cntlid == w->ctrl.cntlid ? &w->ctrl : NULL;
}

uint16_t nvmg_ctrl_install_sq(struct nvmg_ctrl *c, struct nvmg_sq *sq)
{
	if (sq->qid > NVMG_MAX_IO_QUEUES || c->sqs[sq->qid])
		return NVMG_SC_CMD(NVME_SC_CONNECT_INVALID_PARAM) | NVME_SC_DNR;
	c->sqs[sq->qid] = sq;
	sq->ctrl = c;
	return 0;
}

void nvmg_ctrl_kill(struct nvmg_ctrl *c, bool io_only, const char *why)
{
	(void)c;
	(void)io_only;
	(void)why;
}

void nvmg_ctrl_put(struct nvmg_ctrl *c)
{
	(void)c;
}

uint16_t nvmg_ctrl_prop_get(struct nvmg_ctrl *c, uint32_t off, bool eight, uint64_t *val)
{
	(void)c;
	(void)off;
	(void)eight;
	*val = 0;
	return 0;
}

uint16_t nvmg_ctrl_prop_set(struct nvmg_req *req, uint32_t off, uint64_t val)
{
	(void)req;
	(void)off;
	(void)val;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct world *fresh;
	struct fuzz_in in = { data, size };
	struct nvmg_port *port;
	struct nvmf_connect_data *d, sent;
	const struct nvmg_connect_cmd *cmd;
	struct nvmg_sq sq;
	struct treq *r;
	uint16_t st;

	if (!w) {
		w = world_new();
		fresh = malloc(sizeof(*fresh));
		memcpy(fresh, w, sizeof(*w));
	}
	memcpy(w, fresh, sizeof(*w));
	made = NULL;
	host_queues = 0;
	port = fuzz_u8(&in) & 1 ? &w->p2 : &w->p1;
	memset(&sq, 0, sizeof(sq));
	sq.tgt = &w->tgt;
	sq.port = port;
	sq.transport = &w->tr;

	r = new_req(&sq, 0, 0, 0, 0);
	fuzz_take(&in, &r->req.cmd, sizeof(r->req.cmd));
	cmd = (const struct nvmg_connect_cmd *)&r->req.cmd;
	st = nvmg_parse_fabrics(&r->req);
	if (st) {
		/* Only Connect runs on a queue no Connect has bound. */
		FUZZ_CHECK(fuzz_status_ok(st));
		FUZZ_CHECK(st == (NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR));
		free(r);
		return 0;
	}
	FUZZ_CHECK(r->req.dir == NVMG_DIR_FROM_HOST && r->req.data_len == sizeof(*d));
	d = malloc(sizeof(*d));
	fuzz_take(&in, d, sizeof(*d));
	sent = *d;
	r->req.buf = d;
	r->req.execute(&r->req);
	FUZZ_CHECK(r->done && fuzz_status_ok(r->status));
	if (!r->status) {
		struct nvmg_subsys *s = nvmg_target_find_subsys(&w->tgt, d->subsysnqn);
		uint16_t qid = le16toh(cmd->qid);

		FUZZ_CHECK(s && nvmg_port_exports_locked(port, s));
		FUZZ_CHECK(s->discovery || s->allow_any_host ||
			   nvmg_subsys_host_allowed(s, d->hostnqn));
		/* An empty host NQN can match no allow list. */
		FUZZ_CHECK(sent.hostnqn[0] || s->discovery || s->allow_any_host);
		FUZZ_CHECK(le16toh(cmd->sqsize) >= 1 && le16toh(cmd->sqsize) <= NVMG_MQES);
		FUZZ_CHECK(sq.ctrl && sq.qid == qid && sq.size == le16toh(cmd->sqsize) + 1);
		FUZZ_CHECK((uint16_t)le64toh(r->req.cqe.result) == sq.ctrl->cntlid);
		if (!qid)
			FUZZ_CHECK(le16toh(sent.cntlid) == 0xffff && sq.ctrl == made);
		else
			FUZZ_CHECK(sq.ctrl == &w->ctrl && !s->discovery &&
				   !strcmp(w->ctrl.hostnqn, d->hostnqn));
		FUZZ_CHECK(host_queues == 1);
	} else {
		uint16_t sc = r->status & (NVME_SC_MASK | (NVME_SCT_MASK << NVME_SCT_SHIFT));

		FUZZ_CHECK(!sq.ctrl && sq.qid == 0 && sq.size == 0);
		FUZZ_CHECK(host_queues == 0);
		if (sc == NVMG_SC_CMD(NVME_SC_CONNECT_INVALID_PARAM)) {
			uint32_t ipo = (uint32_t)le64toh(r->req.cqe.result);

			FUZZ_CHECK(ipo & (1u << 16) ? (ipo & 0xffff) < sizeof(*d)
						    : ipo < sizeof(struct nvmg_sqe));
		}
	}
	if (made) {
		pthread_mutex_destroy(&made->lock);
		free(made);
	}
	free(d);
	free(r);
	return 0;
}
