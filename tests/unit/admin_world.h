/* The admin tests' small target: fakes for the core functions the admin
 * command files call, a fake transport, and a world of subsystems, ports,
 * namespaces, controllers and queues (world_new). Shared by
 * tests/unit/test_admin.c and the libFuzzer harnesses of tests/fuzz/;
 * it defines functions, so one file of a program includes it. */
#ifndef NVMG_UNIT_ADMIN_WORLD_H
#define NVMG_UNIT_ADMIN_WORLD_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nvme/admin.h"

/* Each includer uses only some of the helpers below. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"

#define SC_INVALID_FIELD (NVMG_SC_GENERIC(NVME_SC_INVALID_FIELD) | NVME_SC_DNR)
#define SC_INVALID_NS (NVMG_SC_GENERIC(NVME_SC_INVALID_NS) | NVME_SC_DNR)
#define SC_INVALID_OPCODE (NVMG_SC_GENERIC(NVME_SC_INVALID_OPCODE) | NVME_SC_DNR)
#define SC_SEQ_ERROR (NVMG_SC_GENERIC(NVME_SC_CMD_SEQ_ERROR) | NVME_SC_DNR)
#define SC_INVALID_LOG (NVMG_SC_CMD(NVME_SC_INVALID_LOG_PAGE) | NVME_SC_DNR)

/* A request plus what its completion reported. */
struct treq {
	struct nvmg_req req;
	bool done;
	uint16_t status;
	uint8_t buf[16384] __attribute__((aligned(8)));
};

/* ---- fakes for the lead's functions ---- */
void nvmg_req_complete(struct nvmg_req *req, uint16_t status)
{
	struct treq *r = (struct treq *)((char *)req - offsetof(struct treq, req));

	if (r->done) {
		fprintf(stderr, "request completed twice\n");
		abort();
	}
	r->done = true;
	r->status = status;
}

struct nvmg_ns *nvmg_subsys_get_ns(struct nvmg_subsys *s, uint32_t nsid)
{
	struct nvmg_ns *ns = NULL;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_ns; i++)
		if (s->ns[i]->nsid == nsid)
			ns = s->ns[i];
	if (ns)
		atomic_fetch_add(&ns->refs, 1);
	pthread_mutex_unlock(&s->lock);
	return ns;
}

void nvmg_ns_put(struct nvmg_ns *ns)
{
	atomic_fetch_sub(&ns->refs, 1);
}

bool nvmg_port_exports_locked(const struct nvmg_port *p, const struct nvmg_subsys *s)
{
	if (s->discovery) /* every port serves discovery, as subsys.c's */
		return true;
	for (size_t i = 0; i < p->nr_subsys; i++)
		if (!strcmp(p->subsys_nqns[i], s->nqn))
			return true;
	return false;
}

bool nvmg_subsys_host_allowed(struct nvmg_subsys *s, const char *hostnqn)
{
	if (s->allow_any_host)
		return true;
	for (size_t i = 0; i < s->nr_allowed_hosts; i++)
		if (!strcmp(s->allowed_hosts[i], hostnqn))
			return true;
	return false;
}

void nvmg_ctrl_keepalive(struct nvmg_ctrl *c)
{
	c->last_keepalive_ms++;
}

/* ctrl->lock is an error-checking mutex here: taking it while the caller
 * already holds it fails instead of deadlocking. */
void nvmg_ctrl_clear_aen_mask(struct nvmg_ctrl *c, uint8_t type)
{
	if (pthread_mutex_lock(&c->lock)) {
		fprintf(stderr, "clear_aen_mask called with ctrl->lock held\n");
		abort();
	}
	c->aen_masked &= ~(1u << type);
	pthread_mutex_unlock(&c->lock);
}

void nvmg_execute_async_event(struct nvmg_req *req)
{
	nvmg_req_complete(req, 0);
}

/* What nvme/resv.c's notifications call (io_cmd.c links it): this world's
 * namespaces have no reservation state, so it never runs. */
void nvmg_ctrl_raise_aen(struct nvmg_ctrl *c, uint8_t type, uint8_t info, uint8_t lid)
{
	(void)c;
	(void)type;
	(void)info;
	(void)lid;
}

static int fake_local_addr(struct nvmg_sq *sq, char *traddr, size_t len)
{
	(void)sq;
	snprintf(traddr, len, "192.0.2.7");
	return 0;
}

static void fake_queue_response(struct nvmg_req *req)
{
	(void)req;
}

/* The world's transport reports what NVMe/TCP does. */
static uint8_t fake_adrfam(const struct nvmg_port *p)
{
	return p->adrfam == AF_INET6 ? NVMF_ADDR_FAMILY_IP6 : NVMF_ADDR_FAMILY_IP4;
}

static uint8_t fake_treq(const struct nvmg_port *p)
{
	(void)p;
	return NVMF_TREQ_NOT_SPECIFIED | NVMF_TREQ_DISABLE_SQFLOW;
}

static void fake_tsas(const struct nvmg_port *p, union nvmf_tsas *tsas)
{
	(void)p;
	tsas->tcp.sectype = NVMF_TCP_SECTYPE_NONE;
}

/* ---- a small target ---- */
#define HOST1 "nqn.2014-08.org.nvmexpress:uuid:host1"
#define HOST2 "nqn.2014-08.org.nvmexpress:uuid:host2"
#define NQN_A "nqn.2026-11.io.nvmegate:a"
#define NQN_B "nqn.2026-11.io.nvmegate:b"
#define NQN_C "nqn.2026-11.io.nvmegate:c"

struct world {
	struct nvmg_target tgt;
	struct nvmg_subsys disc, a, b, c;
	struct nvmg_subsys *subs[3];
	struct nvmg_port p1, p2;
	struct nvmg_port *ports[2];
	char *p1_nqns[2], *p2_nqns[1];
	char *b_hosts[1];
	struct nvmg_bdev bdev_cache, bdev_plain;
	struct nvmg_ns ns1, ns2, ns7;
	struct nvmg_ns *a_ns[3];
	struct nvmg_ctrl ctrl, dctrl;
	struct nvmg_sq asq, dsq, iosq1, iosq2;
	struct nvmg_transport tr;
};

static void init_mutex(pthread_mutex_t *m)
{
	pthread_mutexattr_t attr;

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(m, &attr);
	pthread_mutexattr_destroy(&attr);
}

static void init_subsys(struct nvmg_subsys *s, const char *nqn, bool disc)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->nqn, sizeof(s->nqn), "%s", nqn);
	s->discovery = disc;
	s->allow_any_host = true;
	nvmg_derive_serial(nqn, s->serial);
	snprintf(s->model, sizeof(s->model), "nvmegate");
	s->version = 0x20000;
	init_mutex(&s->lock);
}

static void init_ns(struct nvmg_ns *ns, const char *nqn, uint32_t nsid, struct nvmg_bdev *b)
{
	memset(ns, 0, sizeof(*ns));
	ns->nsid = nsid;
	ns->bdev = b;
	ns->lba_shift = 12;
	ns->anagrpid = 1; /* subsys.c's default group */
	ns->nsze = b->size >> 12;
	nvmg_derive_ns_ids(nqn, nsid, ns->nguid, ns->uuid, ns->eui64);
}

static void init_ctrl(struct nvmg_ctrl *c, struct world *w, struct nvmg_subsys *s,
		      struct nvmg_port *p, uint16_t cntlid, const char *hostnqn)
{
	memset(c, 0, sizeof(*c));
	c->tgt = &w->tgt;
	c->subsys = s;
	c->port = p;
	c->cntlid = cntlid;
	snprintf(c->hostnqn, sizeof(c->hostnqn), "%s", hostnqn);
	for (int i = 0; i < 16; i++)
		c->hostid[i] = (uint8_t)(0xa0 + i);
	init_mutex(&c->lock);
	c->cc = 1;
	c->csts = 1;
	c->kato_ms = 5000;
	c->vwc_enabled = true;
}

static void init_sq(struct nvmg_sq *sq, struct world *w, struct nvmg_ctrl *c, uint16_t qid)
{
	memset(sq, 0, sizeof(*sq));
	sq->tgt = &w->tgt;
	sq->ctrl = c;
	sq->port = c->port;
	sq->transport = &w->tr;
	sq->qid = qid;
	sq->size = 32;
}

static struct world *world_new(void)
{
	struct world *w = calloc(1, sizeof(*w));

	w->tr.name = "fake";
	w->tr.queue_response = fake_queue_response;
	w->tr.local_addr = fake_local_addr;
	w->tr.trtype = NVMF_TRTYPE_TCP;
	w->tr.disc_adrfam = fake_adrfam;
	w->tr.disc_treq = fake_treq;
	w->tr.disc_tsas = fake_tsas;

	init_subsys(&w->disc, NVMG_DISC_NQN, true);
	init_subsys(&w->a, NQN_A, false);
	init_subsys(&w->b, NQN_B, false);
	init_subsys(&w->c, NQN_C, false);
	w->b.allow_any_host = false;
	w->b_hosts[0] = HOST2;
	w->b.allowed_hosts = w->b_hosts;
	w->b.nr_allowed_hosts = 1;
	w->subs[0] = &w->a;
	w->subs[1] = &w->b;
	w->subs[2] = &w->c;
	pthread_rwlock_init(&w->tgt.model_lock, NULL);
	w->tgt.discovery = &w->disc;
	w->tgt.subsys = w->subs;
	w->tgt.nr_subsys = 3;
	atomic_store(&w->tgt.discovery_genctr, 42);

	/* p1 exports A and B on a fixed address; p2 exports C on a wildcard. */
	w->p1.portid = 1;
	w->p1.transport = &w->tr;
	w->p1.adrfam = AF_INET;
	snprintf(w->p1.traddr, sizeof(w->p1.traddr), "10.0.0.1");
	snprintf(w->p1.trsvcid, sizeof(w->p1.trsvcid), "4420");
	w->p1.inline_data_size = 16384;
	w->p1_nqns[0] = NQN_A;
	w->p1_nqns[1] = NQN_B;
	w->p1.subsys_nqns = w->p1_nqns;
	w->p1.nr_subsys = 2;
	w->p2.portid = 2;
	w->p2.transport = &w->tr;
	w->p2.adrfam = AF_INET6;
	snprintf(w->p2.traddr, sizeof(w->p2.traddr), "::");
	snprintf(w->p2.trsvcid, sizeof(w->p2.trsvcid), "4421");
	w->p2.wildcard = true;
	w->p2.inline_data_size = 8192;
	w->p2_nqns[0] = NQN_C;
	w->p2.subsys_nqns = w->p2_nqns;
	w->p2.nr_subsys = 1;
	w->ports[0] = &w->p1;
	w->ports[1] = &w->p2;
	w->tgt.ports = w->ports;
	w->tgt.nr_ports = 2;

	w->bdev_cache.size = 1ull << 30;
	w->bdev_cache.block_size = 4096;
	w->bdev_cache.volatile_cache = true;
	w->bdev_cache.dealloc_zeroes = true;
	w->bdev_plain.size = 1ull << 20;
	w->bdev_plain.block_size = 512;
	init_ns(&w->ns1, NQN_A, 1, &w->bdev_cache);
	init_ns(&w->ns2, NQN_A, 2, &w->bdev_plain);
	w->ns2.readonly = true;
	w->ns2.lba_shift = 9;
	w->ns2.nsze = w->bdev_plain.size >> 9;
	init_ns(&w->ns7, NQN_A, 7, &w->bdev_plain);
	w->a_ns[0] = &w->ns1;
	w->a_ns[1] = &w->ns2;
	w->a_ns[2] = &w->ns7;
	w->a.ns = w->a_ns;
	w->a.nr_ns = 3;

	init_ctrl(&w->ctrl, w, &w->a, &w->p1, 5, HOST1);
	init_ctrl(&w->dctrl, w, &w->disc, &w->p1, 9, HOST1);
	init_sq(&w->asq, w, &w->ctrl, 0);
	init_sq(&w->dsq, w, &w->dctrl, 0);
	init_sq(&w->iosq1, w, &w->ctrl, 1);
	init_sq(&w->iosq2, w, &w->ctrl, 2);
	return w;
}

static void world_free(struct world *w)
{
	pthread_mutex_destroy(&w->ctrl.lock);
	pthread_mutex_destroy(&w->dctrl.lock);
	pthread_mutex_destroy(&w->disc.lock);
	pthread_mutex_destroy(&w->a.lock);
	pthread_mutex_destroy(&w->b.lock);
	pthread_mutex_destroy(&w->c.lock);
	free(w);
}

/* Fresh request on sq; buf prefilled with garbage to catch unzeroed bytes. */
static struct treq *new_req(struct nvmg_sq *sq, uint8_t opcode, uint32_t nsid, uint32_t cdw10,
			    uint32_t cdw11)
{
	struct treq *r = calloc(1, sizeof(*r));

	memset(r->buf, 0xa5, sizeof(r->buf));
	r->req.sq = sq;
	r->req.buf = r->buf;
	r->req.cmd.opcode = opcode;
	r->req.cmd.flags = NVMG_PSDT_SGL_MPTR_CONTIG;
	r->req.cmd.nsid = htole32(nsid);
	r->req.cmd.cdw10 = htole32(cdw10);
	r->req.cmd.cdw11 = htole32(cdw11);
	return r;
}

#pragma GCC diagnostic pop

#endif
