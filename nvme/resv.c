/* Persistent reservations: the four commands, the access check on I/O and
 * the notifications they owe (resv_admin.c serves log page 80h and the
 * features, resv_ptpl.c the state file). The rules are the NVMe Base
 * Specification's "Reservations" section; where it leaves room we behave
 * as the Linux target (drivers/nvme/target/pr.c) does, so hosts see one
 * behaviour from both. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "nvme/resv_int.h"

#define INVALID_FIELD (NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR)
#define CONFLICT (NVMG_SC_GENERIC(NVME_SC_RESERVATION_CONFLICT) | NVME_SC_DNR)
#define SEQ_ERROR (NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR)
#define INTERNAL NVMG_SC_GENERIC(NVME_SC_INTERNAL)
#define CDW10_IEKEY (1u << 3)

/* Who is owed which notification, gathered under r->lock and sent after
 * it is dropped (sending takes the subsystem's and controllers' locks). */
struct notes {
	struct {
		uint8_t hostid[16];
		uint8_t type;
	} *v;
	size_t nr, cap;
	bool oom;
};

static const uint8_t zero_id[16];

static bool all_regs(uint8_t rtype)
{
	return rtype == NVME_RESERVATION_RTYPE_WEAR || rtype == NVME_RESERVATION_RTYPE_EAAR;
}

static bool id_eq(const uint8_t a[16], const uint8_t b[16])
{
	return !memcmp(a, b, 16);
}

static struct nvmg_resv_reg *find_reg(struct nvmg_resv *r, const uint8_t hostid[16])
{
	for (size_t i = 0; i < r->nr_regs; i++)
		if (id_eq(r->regs[i].hostid, hostid))
			return &r->regs[i];
	return NULL;
}

/* In types 5 and 6 every registrant holds the reservation. */
static bool is_holder(struct nvmg_resv *r, const uint8_t hostid[16])
{
	uint8_t t = atomic_load_explicit(&r->rtype, memory_order_relaxed);

	if (!t)
		return false;
	return all_regs(t) ? find_reg(r, hostid) != NULL : id_eq(r->holder, hostid);
}

static void note(struct nvmg_resv *r, struct notes *n, const uint8_t hostid[16], uint8_t type)
{
	/* Mask bit n masks the notification of log page type n. */
	if (nvmg_resv_mask_of(r, hostid) & (1u << type))
		return;
	if (n->nr == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 4;
		void *v = realloc(n->v, cap * sizeof(*n->v));

		if (!v) {
			n->oom = true;
			return;
		}
		n->v = v;
		n->cap = cap;
	}
	memcpy(n->v[n->nr].hostid, hostid, 16);
	n->v[n->nr++].type = type;
}

/* Every registrant but except (NULL: all) is told type. */
static void note_registrants(struct nvmg_resv *r, struct notes *n, const uint8_t *except, uint8_t type)
{
	for (size_t i = 0; i < r->nr_regs; i++)
		if (!except || !id_eq(r->regs[i].hostid, except))
			note(r, n, r->regs[i].hostid, type);
}

static void set_rtype(struct nvmg_resv *r, uint8_t t)
{
	atomic_store_explicit(&r->rtype, t, memory_order_relaxed);
}

/* Remove registrant i. A holder leaving ends the reservation, except in
 * types 5-6 while registrants remain; a registrants-only reservation that
 * ends this way is a release the other registrants hear of. */
static void unregister_at(struct nvmg_resv *r, size_t i, struct notes *n)
{
	uint8_t id[16], t = atomic_load_explicit(&r->rtype, memory_order_relaxed);

	memcpy(id, r->regs[i].hostid, 16);
	memmove(&r->regs[i], &r->regs[i + 1], (r->nr_regs - i - 1) * sizeof(r->regs[0]));
	r->nr_regs--;
	if (!t)
		return;
	if (all_regs(t)) {
		if (!r->nr_regs)
			set_rtype(r, 0);
		return;
	}
	if (!id_eq(r->holder, id))
		return;
	set_rtype(r, 0);
	memset(r->holder, 0, 16);
	if (t == NVME_RESERVATION_RTYPE_WERO || t == NVME_RESERVATION_RTYPE_EARO)
		note_registrants(r, n, NULL, NVME_RESV_NOTIFY_RNLPT_RESERVATION_RELEASED);
}

/* Unregister every registrant with key prkey but keep (NULL: none kept);
 * each other than self hears its registration was preempted. Returns how
 * many went. */
static size_t unregister_key(struct nvmg_resv *r, uint64_t prkey, const uint8_t *keep,
			     const uint8_t self[16], struct notes *n)
{
	size_t gone = 0;

	for (size_t i = 0; i < r->nr_regs;) {
		uint8_t id[16];

		if (r->regs[i].rkey != prkey || (keep && id_eq(r->regs[i].hostid, keep))) {
			i++;
			continue;
		}
		memcpy(id, r->regs[i].hostid, 16);
		unregister_at(r, i, n);
		if (!id_eq(id, self))
			note(r, n, id, NVME_RESV_NOTIFY_RNLPT_REGISTRATION_PREEMPTED);
		gone++;
	}
	return gone;
}

/* ---- notifications ---- */

static void log_add(struct nvmg_ctrl *c, uint8_t type, uint32_t nsid)
{
	struct nvmg_resv_log *l;

	pthread_mutex_lock(&c->lock);
	if (!c->resv_log)
		c->resv_log = calloc(1, sizeof(*c->resv_log));
	l = c->resv_log;
	if (l) {
		/* A page that does not fit is lost; the count still moves, so
		 * the host sees the gap in the next page's count. */
		if (++l->lpc == 0)
			l->lpc = 1;
		if (l->nr < NVMG_RESV_LOG_QUEUE) {
			unsigned at = (l->head + l->nr++) % NVMG_RESV_LOG_QUEUE;

			l->q[at].lpc = l->lpc;
			l->q[at].nsid = nsid;
			l->q[at].type = type;
		}
	}
	pthread_mutex_unlock(&c->lock);
	nvmg_ctrl_raise_aen(c, NVME_AER_CSS, NVME_AER_CSS_NVM_RESERVATION, NVME_LOG_LID_RESERVATION);
}

/* Under s->lock, as the namespace-change events (subsys.c): raising an
 * event takes only the controller's lock. */
static void notes_send(struct nvmg_subsys *s, uint32_t nsid, struct notes *n)
{
	if (n->nr) {
		pthread_mutex_lock(&s->lock);
		for (size_t i = 0; i < n->nr; i++)
			for (size_t j = 0; j < s->nr_ctrls; j++)
				if (id_eq(s->ctrls[j]->hostid, n->v[i].hostid))
					log_add(s->ctrls[j], n->v[i].type, nsid);
		pthread_mutex_unlock(&s->lock);
	}
	if (n->oom)
		log_err("namespace %u: out of memory: reservation notifications lost", nsid);
	free(n->v);
}

/* ---- commands ---- */

static uint64_t key_at(const struct nvmg_req *req, size_t off)
{
	uint64_t k;

	memcpy(&k, (const uint8_t *)req->buf + off, sizeof(k));
	return le64toh(k);
}

/* Every change of state: under the lock, from a snapshot that the commit
 * restores when the PTPL file cannot be written, then the notifications
 * (only for a change that stood) and the completion. */
static void run_change(struct nvmg_req *req,
		       uint16_t (*change)(struct nvmg_req *req, struct nvmg_resv *r,
					  const uint8_t *self, struct notes *n))
{
	struct nvmg_resv *r = req->ns->resv;
	struct nvmg_resv_snapshot snap;
	struct notes n = { 0 };
	uint16_t status;

	pthread_mutex_lock(&r->lock);
	if (!nvmg_resv_snapshot(r, &snap)) {
		pthread_mutex_unlock(&r->lock);
		nvmg_req_complete(req, INTERNAL);
		return;
	}
	status = nvmg_resv_commit(r, &snap, change(req, r, req->sq->ctrl->hostid, &n));
	pthread_mutex_unlock(&r->lock);
	if (status)
		n.nr = 0;
	notes_send(req->sq->ctrl->subsys, r->nsid, &n);
	nvmg_req_complete(req, status);
}

/* Reservation Register: CDW10 RREGA 2:0, IEKEY 3, CPTPL 31:30; data CRKEY, NRKEY. */
static uint16_t do_register(struct nvmg_req *req, struct nvmg_resv *r, const uint8_t *self,
			    struct notes *n)
{
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint8_t act = cdw10 & 7, cptpl = cdw10 >> 30;
	bool iekey = cdw10 & CDW10_IEKEY;
	uint64_t crkey = key_at(req, 0), nrkey = key_at(req, 8);
	struct nvmg_resv_reg *reg = find_reg(r, self);
	uint16_t status = 0;

	switch (act) {
	case NVME_RESERVATION_RREGA_REGISTER_KEY:
		/* Registering again with the same key is not an error. */
		if (reg)
			status = reg->rkey == nrkey ? 0 : CONFLICT;
		else if (!nvmg_resv_add_reg(r, self, nrkey))
			status = INTERNAL;
		break;
	case NVME_RESERVATION_RREGA_UNREGISTER_KEY:
		if (!reg || (!iekey && reg->rkey != crkey))
			status = CONFLICT;
		else
			unregister_at(r, (size_t)(reg - r->regs), n);
		break;
	default: /* replace: a holder stays the holder under its new key */
		if (!reg || (!iekey && reg->rkey != crkey))
			status = CONFLICT;
		else
			reg->rkey = nrkey;
		break;
	}
	if (!status) {
		r->gen++;
		if (cptpl)
			r->ptpl = cptpl == NVME_RESERVATION_CPTPL_PERSIST;
	}
	return status;
}

static void execute_register(struct nvmg_req *req)
{
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint8_t act = cdw10 & 7, cptpl = cdw10 >> 30;

	if (act > NVME_RESERVATION_RREGA_REPLACE_KEY || cptpl == 1 ||
	    (cptpl == NVME_RESERVATION_CPTPL_PERSIST && !req->ns->resv->path)) {
		nvmg_req_complete(req, INVALID_FIELD);
		return;
	}
	run_change(req, do_register);
}

static uint16_t preempt(struct nvmg_resv *r, const uint8_t self[16], uint8_t rtype, uint64_t prkey,
			struct notes *n)
{
	uint8_t cur = atomic_load_explicit(&r->rtype, memory_order_relaxed);
	struct nvmg_resv_reg *holder;

	if (!cur)
		return unregister_key(r, prkey, NULL, self, n) ? 0 : CONFLICT;
	if (all_regs(cur)) {
		if (prkey)
			return unregister_key(r, prkey, NULL, self, n) ? 0 : CONFLICT;
		/* PRKEY 0 takes an all-registrants reservation over: the
		 * requester holds it alone, in the new type, and everyone
		 * else loses their registration. Holder first, so no other
		 * host slips in between. */
		memcpy(r->holder, self, 16);
		set_rtype(r, rtype);
		for (size_t i = 0; i < r->nr_regs;) {
			uint8_t id[16];

			if (id_eq(r->regs[i].hostid, self)) {
				i++;
				continue;
			}
			memcpy(id, r->regs[i].hostid, 16);
			unregister_at(r, i, n);
			note(r, n, id, NVME_RESV_NOTIFY_RNLPT_REGISTRATION_PREEMPTED);
		}
		return 0;
	}
	holder = find_reg(r, r->holder);
	if (holder && holder->rkey == prkey) {
		/* The holder is preempted (it may be the requester changing
		 * its own type): the requester holds the new reservation and
		 * every other registrant with that key is unregistered. */
		memcpy(r->holder, self, 16);
		set_rtype(r, rtype);
		unregister_key(r, prkey, self, self, n);
		if (cur != rtype)
			note_registrants(r, n, self, NVME_RESV_NOTIFY_RNLPT_RESERVATION_RELEASED);
		return 0;
	}
	if (prkey)
		return unregister_key(r, prkey, NULL, self, n) ? 0 : CONFLICT;
	return INVALID_FIELD;
}

/* Reservation Acquire: CDW10 RACQA 2:0, IEKEY 3, RTYPE 15:8; data CRKEY, PRKEY. */
static uint16_t do_acquire(struct nvmg_req *req, struct nvmg_resv *r, const uint8_t *self,
			   struct notes *n)
{
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint8_t act = cdw10 & 7, rtype = (cdw10 >> 8) & 0xff;
	uint8_t cur = atomic_load_explicit(&r->rtype, memory_order_relaxed);
	struct nvmg_resv_reg *reg = find_reg(r, self);
	uint16_t status = 0;

	if (!reg || reg->rkey != key_at(req, 0))
		return CONFLICT;
	if (act == NVME_RESERVATION_RACQA_ACQUIRE) {
		/* A holder may acquire again in its type, not change it. */
		if (cur)
			return is_holder(r, self) && cur == rtype ? 0 : CONFLICT;
		memcpy(r->holder, self, 16);
		set_rtype(r, rtype);
		return 0;
	}
	/* Preempt and abort: the commands of the preempted hosts that reach
	 * us from now on fail the access check; the ones already at the
	 * backend cannot be recalled and complete. */
	status = preempt(r, self, rtype, key_at(req, 8), n);
	if (!status)
		r->gen++;
	return status;
}

static void execute_acquire(struct nvmg_req *req)
{
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint8_t act = cdw10 & 7, rtype = (cdw10 >> 8) & 0xff;

	/* Since NVMe 1.3 (RESCAP IEK_13) IEKEY is for Register only. */
	if ((cdw10 & CDW10_IEKEY) || act > NVME_RESERVATION_RACQA_PREEMPT_AND_ABORT ||
	    rtype < NVME_RESERVATION_RTYPE_WE || rtype > NVME_RESERVATION_RTYPE_EAAR) {
		nvmg_req_complete(req, INVALID_FIELD);
		return;
	}
	run_change(req, do_acquire);
}

/* Reservation Release: CDW10 RRELA 2:0, IEKEY 3, RTYPE 15:8; data CRKEY. */
static uint16_t do_release(struct nvmg_req *req, struct nvmg_resv *r, const uint8_t *self,
			   struct notes *n)
{
	uint32_t cdw10 = le32toh(req->cmd.cdw10);
	uint8_t act = cdw10 & 7, rtype = (cdw10 >> 8) & 0xff;
	uint8_t cur = atomic_load_explicit(&r->rtype, memory_order_relaxed);
	struct nvmg_resv_reg *reg = find_reg(r, self);

	if (!reg || reg->rkey != key_at(req, 0))
		return CONFLICT;
	if (act == NVME_RESERVATION_RRELA_RELEASE) {
		/* Releasing what one does not hold does nothing. */
		if (!is_holder(r, self))
			return 0;
		if (rtype != cur)
			return INVALID_FIELD;
		set_rtype(r, 0);
		memset(r->holder, 0, 16);
		if (cur != NVME_RESERVATION_RTYPE_WE && cur != NVME_RESERVATION_RTYPE_EA)
			note_registrants(r, n, self, NVME_RESV_NOTIFY_RNLPT_RESERVATION_RELEASED);
		return 0;
	}
	note_registrants(r, n, self, NVME_RESV_NOTIFY_RNLPT_RESERVATION_PREEMPTED);
	r->nr_regs = 0;
	set_rtype(r, 0);
	memset(r->holder, 0, 16);
	r->gen++;
	return 0;
}

static void execute_release(struct nvmg_req *req)
{
	uint32_t cdw10 = le32toh(req->cmd.cdw10);

	if ((cdw10 & CDW10_IEKEY) || (cdw10 & 7) > NVME_RESERVATION_RRELA_CLEAR) {
		nvmg_req_complete(req, INVALID_FIELD);
		return;
	}
	run_change(req, do_release);
}

/* Reservation Report: CDW10 NUMD (0's based dwords), CDW11 EDS bit 0. */
static void execute_report(struct nvmg_req *req)
{
	struct nvmg_resv *r = req->ns->resv;
	bool eds = le32toh(req->cmd.cdw11) & 1;
	size_t hdr = eds ? 64 : 24, ent = eds ? sizeof(struct nvme_registered_ctrl_ext)
					      : sizeof(struct nvme_registered_ctrl);
	struct nvme_resv_status *st;
	uint16_t status = 0, nr;
	size_t len;
	uint8_t t;

	pthread_mutex_lock(&r->lock);
	len = hdr + r->nr_regs * ent;
	st = calloc(1, len > sizeof(*st) ? len : sizeof(*st));
	if (!st) {
		pthread_mutex_unlock(&r->lock);
		nvmg_req_complete(req, INTERNAL);
		return;
	}
	t = atomic_load_explicit(&r->rtype, memory_order_relaxed);
	st->gen = htole32(r->gen);
	st->rtype = t;
	nr = r->nr_regs > 0xffff ? 0xffff : (uint16_t)r->nr_regs;
	st->regctl[0] = (uint8_t)nr;
	st->regctl[1] = (uint8_t)(nr >> 8);
	st->ptpls = r->ptpl;
	for (size_t i = 0; i < r->nr_regs && !status; i++) {
		const struct nvmg_resv_reg *g = &r->regs[i];
		bool held = t && (all_regs(t) || id_eq(r->holder, g->hostid));
		uint8_t *p = (uint8_t *)st + hdr + i * ent;

		/* Controller ID FFFFh: a dynamic controller model registers
		 * hosts, not controllers. */
		if (eds) {
			struct nvme_registered_ctrl_ext *e = (void *)p;

			e->cntlid = htole16(0xffff);
			e->rcsts = held;
			e->rkey = htole64(g->rkey);
			memcpy(e->hostid, g->hostid, 16);
		} else {
			struct nvme_registered_ctrl *e = (void *)p;
			uint64_t id;

			/* A 128-bit identifier does not fit the 64-bit field. */
			if (memcmp(g->hostid + 8, zero_id, 8)) {
				status = NVMG_SC_GENERIC(NVME_SC_HOSTID_FORMAT) | NVME_SC_DNR;
				break;
			}
			memcpy(&id, g->hostid, 8);
			e->cntlid = htole16(0xffff);
			e->rcsts = held;
			e->hostid = id; /* the identifier's bytes as they are */
			e->rkey = htole64(g->rkey);
		}
	}
	pthread_mutex_unlock(&r->lock);
	if (!status)
		nvmg_req_copy_to_buf(req, st, len, 0);
	free(st);
	nvmg_req_complete(req, status);
}

bool nvmg_resv_opcode(uint8_t opcode)
{
	return opcode == nvme_cmd_resv_register || opcode == nvme_cmd_resv_report ||
	       opcode == nvme_cmd_resv_acquire || opcode == nvme_cmd_resv_release;
}

uint16_t nvmg_resv_parse(struct nvmg_req *req)
{
	uint8_t op = req->cmd.opcode;
	uint64_t len;

	req->ns = nvmg_subsys_get_ns(req->sq->ctrl->subsys, le32toh(req->cmd.nsid));
	if (!req->ns)
		return NVMG_SC_GENERIC(NVME_SC_INVALID_NS) | NVME_SC_DNR;
	if (!req->ns->resv)
		return NVMG_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVME_SC_DNR;
	if (op == nvme_cmd_resv_report) {
		len = ((uint64_t)le32toh(req->cmd.cdw10) + 1) * 4;
		if (len > NVMG_MAX_DATA)
			return INVALID_FIELD;
		req->dir = NVMG_DIR_TO_HOST;
		req->data_len = (uint32_t)len;
		req->execute = execute_report;
		return 0;
	}
	/* A host that gave no Host Identifier cannot be told apart from
	 * another one: it may not register or hold anything. */
	if (id_eq(req->sq->ctrl->hostid, zero_id))
		return SEQ_ERROR;
	req->dir = NVMG_DIR_FROM_HOST;
	req->data_len = op == nvme_cmd_resv_release ? 8 : 16;
	req->execute = op == nvme_cmd_resv_register ? execute_register
		       : op == nvme_cmd_resv_acquire ? execute_acquire : execute_release;
	return 0;
}

/* The spec's read and write command groups; Flush is in the write group
 * (it makes data durable on the holder's behalf). Other opcodes never
 * get here. */
uint16_t nvmg_resv_check_slow(struct nvmg_req *req, struct nvmg_resv *r)
{
	const uint8_t *self = req->sq->ctrl->hostid;
	uint8_t op = req->cmd.opcode, t;
	bool write = op == nvme_cmd_write || op == nvme_cmd_write_zeroes || op == nvme_cmd_dsm ||
		     op == nvme_cmd_flush;
	bool read = op == nvme_cmd_read || op == nvme_cmd_compare;
	bool ok = true, reg;

	if (!read && !write)
		return 0;
	pthread_mutex_lock(&r->lock);
	t = atomic_load_explicit(&r->rtype, memory_order_relaxed);
	if (t && !is_holder(r, self)) {
		reg = find_reg(r, self) != NULL;
		switch (t) {
		case NVME_RESERVATION_RTYPE_WE:
			ok = !write;
			break;
		case NVME_RESERVATION_RTYPE_EA:
			ok = false;
			break;
		case NVME_RESERVATION_RTYPE_WERO:
		case NVME_RESERVATION_RTYPE_WEAR:
			ok = !write || reg;
			break;
		default: /* EARO, EAAR */
			ok = reg;
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return ok ? 0 : CONFLICT;
}

/* ---- namespace life ---- */

int nvmg_resv_create(struct nvmg_resv **out, const char *dir, const char *nqn, uint32_t nsid,
		     char *err, size_t errlen)
{
	struct nvmg_resv *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		goto nomem;
	pthread_mutex_init(&r->lock, NULL);
	r->nsid = nsid;
	if (dir) {
		r->dir = strdup(dir);
		r->path = nvmg_resv_state_path(dir, nqn, nsid);
		if (!r->dir || !r->path) {
			nvmg_resv_free(r);
			goto nomem;
		}
		ret = nvmg_resv_load(r, err, errlen);
		if (ret) {
			nvmg_resv_free(r);
			return ret;
		}
		if (r->ptpl)
			log_info("subsystem %s namespace %u: reservation state restored from %s (%zu "
				 "registrant%s, type %u)", nqn, nsid, r->path, r->nr_regs,
				 r->nr_regs == 1 ? "" : "s", (unsigned)atomic_load(&r->rtype));
	}
	*out = r;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

void nvmg_resv_free(struct nvmg_resv *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->regs);
	free(r->masks);
	free(r->dir);
	free(r->path);
	free(r);
}


