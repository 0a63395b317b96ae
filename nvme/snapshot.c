/* Plain-data copies of the target model (see snapshot.h). Lock order as
 * everywhere in the core: model_lock, then a subsystem's lock or a
 * controller's, never both of those at once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/reactor.h"
#include "nvme/core.h"
#include "nvme/snapshot.h"
#include "nvme/subsys.h"

static struct nvmg_io_stats *stats_new(void)
{
	return calloc(1, sizeof(struct nvmg_io_stats));
}

/* A namespace's statistics: the sum of its reactors' slots. */
static int snap_ns(struct nvmg_snap_ns *out, struct nvmg_ns *ns, unsigned what)
{
	out->nsid = ns->nsid;
	out->backend = ns->bdev->ops->name;
	out->lba_size = 1u << ns->lba_shift;
	out->blocks = nvmg_ns_nsze(ns);
	out->unserved_bytes = nvmg_ns_unserved(ns);
	out->readonly = ns->readonly;
	out->path = strdup(ns->path);
	if (!out->path)
		return -ENOMEM;
	if (!(what & NVMG_SNAP_STATS))
		return 0;
	out->stats = stats_new();
	if (!out->stats)
		return -ENOMEM;
	for (unsigned k = 0; k < NVMG_STAT_SLOTS; k++) {
		struct nvmg_io_stats *slot = atomic_load_explicit(&ns->stats[k], memory_order_acquire);

		if (slot)
			nvmg_io_stats_add(out->stats, slot);
	}
	return 0;
}

/* Queues leave c->sqs under c->lock before their memory goes, so they are
 * read under it; nothing on the I/O path takes it. */
static int snap_ctrl(struct nvmg_snap_ctrl *out, struct nvmg_ctrl *c, unsigned what)
{
	int ret = 0;

	out->cntlid = c->cntlid;
	snprintf(out->hostnqn, sizeof(out->hostnqn), "%s", c->hostnqn);
	out->portid = c->port ? c->port->portid : -1;
	out->queues = calloc(NVMG_MAX_IO_QUEUES + 1, sizeof(*out->queues));
	if (!out->queues)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	for (unsigned qid = 0; qid <= NVMG_MAX_IO_QUEUES && !ret; qid++) {
		struct nvmg_sq *sq = c->sqs[qid];
		struct nvmg_snap_queue *q;

		if (!sq)
			continue;
		q = &out->queues[out->nr_queues++];
		q->qid = (uint16_t)qid;
		q->size = sq->size;
		q->reactor = nvmg_reactor_id(sq->reactor);
		q->connected_ms = sq->connected_ms;
		if (sq->peer && !(q->peer = strdup(sq->peer)))
			ret = -ENOMEM;
		else if ((what & NVMG_SNAP_STATS) && !(q->stats = stats_new()))
			ret = -ENOMEM;
		else if (q->stats)
			nvmg_io_stats_add(q->stats, &sq->stats);
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* The namespaces are referenced under s->lock and copied outside it: the
 * I/O path looks namespaces up under that lock, and summing statistics
 * takes a while. The controllers likewise (nvmg_subsys_ctrls). */
static int snap_subsys(struct nvmg_snap_subsys *out, struct nvmg_subsys *s, unsigned what)
{
	struct nvmg_ns **nss;
	struct nvmg_ctrl **ctrls;
	size_t nr_ns, nr_ctrls;
	int ret = 0;

	memcpy(out->nqn, s->nqn, sizeof(out->nqn));
	memcpy(out->serial, s->serial, sizeof(out->serial));
	memcpy(out->model, s->model, sizeof(out->model));
	pthread_mutex_lock(&s->lock);
	out->allow_any_host = s->allow_any_host;
	out->allowed_hosts = nvmg_strv_dup(s->allowed_hosts, s->nr_allowed_hosts);
	out->nr_allowed_hosts = out->allowed_hosts ? s->nr_allowed_hosts : 0;
	nr_ns = s->nr_ns;
	nss = calloc(nr_ns + 1, sizeof(*nss));
	for (size_t i = 0; nss && i < nr_ns; i++) {
		nss[i] = s->ns[i];
		atomic_fetch_add(&nss[i]->refs, 1);
	}
	pthread_mutex_unlock(&s->lock);
	if (!nss || !out->allowed_hosts)
		ret = -ENOMEM;
	if (nss) {
		out->ns = calloc(nr_ns + 1, sizeof(*out->ns));
		if (!out->ns)
			ret = -ENOMEM;
		for (size_t i = 0; i < nr_ns; i++) {
			if (!ret)
				ret = snap_ns(&out->ns[out->nr_ns++], nss[i], what);
			nvmg_ns_put(nss[i]);
		}
		free(nss);
	}
	if (ret)
		return ret;
	ctrls = nvmg_subsys_ctrls(s, NULL, NULL, &nr_ctrls);
	out->ctrls = calloc(nr_ctrls + 1, sizeof(*out->ctrls));
	if (!ctrls || !out->ctrls)
		ret = -ENOMEM;
	for (size_t i = 0; i < nr_ctrls; i++) {
		if (!ret)
			ret = snap_ctrl(&out->ctrls[out->nr_ctrls++], ctrls[i], what);
		nvmg_ctrl_put(ctrls[i]);
	}
	free(ctrls);
	return ret;
}

static int snap_port(struct nvmg_snap_port *out, const struct nvmg_port *p)
{
	out->portid = p->portid;
	out->adrfam = p->adrfam;
	memcpy(out->traddr, p->traddr, sizeof(out->traddr));
	memcpy(out->trsvcid, p->trsvcid, sizeof(out->trsvcid));
	out->subsys_nqns = nvmg_strv_dup(p->subsys_nqns, p->nr_subsys);
	if (!out->subsys_nqns)
		return -ENOMEM;
	out->nr_subsys = p->nr_subsys;
	return 0;
}

struct nvmg_snapshot *nvmg_target_snapshot(struct nvmg_target *t, unsigned what)
{
	struct nvmg_snapshot *snap = calloc(1, sizeof(*snap));
	int ret = 0;

	if (!snap)
		return NULL;
	/* The lists of subsystems and ports change only under model_lock. */
	pthread_rwlock_rdlock(&t->model_lock);
	snap->subsys = calloc(t->nr_subsys + 1, sizeof(*snap->subsys));
	snap->ports = calloc(t->nr_ports + 1, sizeof(*snap->ports));
	if (!snap->subsys || !snap->ports)
		ret = -ENOMEM;
	for (size_t i = 0; i < t->nr_subsys && !ret; i++)
		ret = snap_subsys(&snap->subsys[snap->nr_subsys++], t->subsys[i], what);
	if (!ret)
		ret = snap_subsys(&snap->discovery, t->discovery, what);
	for (size_t i = 0; i < t->nr_ports && !ret; i++)
		ret = snap_port(&snap->ports[snap->nr_ports++], t->ports[i]);
	pthread_rwlock_unlock(&t->model_lock);
	if (ret) {
		nvmg_snapshot_free(snap);
		return NULL;
	}
	return snap;
}

static void free_subsys(struct nvmg_snap_subsys *s)
{
	nvmg_strv_free(s->allowed_hosts);
	for (size_t i = 0; i < s->nr_ns; i++) {
		free(s->ns[i].path);
		free(s->ns[i].stats);
	}
	free(s->ns);
	for (size_t i = 0; i < s->nr_ctrls; i++) {
		for (size_t j = 0; j < s->ctrls[i].nr_queues; j++) {
			free(s->ctrls[i].queues[j].peer);
			free(s->ctrls[i].queues[j].stats);
		}
		free(s->ctrls[i].queues);
	}
	free(s->ctrls);
}

void nvmg_snapshot_free(struct nvmg_snapshot *snap)
{
	if (!snap)
		return;
	for (size_t i = 0; i < snap->nr_subsys; i++)
		free_subsys(&snap->subsys[i]);
	free(snap->subsys);
	free_subsys(&snap->discovery);
	for (size_t i = 0; i < snap->nr_ports; i++)
		nvmg_strv_free(snap->ports[i].subsys_nqns);
	free(snap->ports);
	free(snap);
}

void nvmg_target_count(struct nvmg_target *t, struct nvmg_target_counts *out)
{
	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&t->model_lock);
	for (size_t i = 0; i < t->nr_subsys; i++) {
		pthread_mutex_lock(&t->subsys[i]->lock);
		out->controllers += t->subsys[i]->nr_ctrls;
		out->namespaces += t->subsys[i]->nr_ns;
		pthread_mutex_unlock(&t->subsys[i]->lock);
	}
	out->subsystems = t->nr_subsys;
	out->ports = t->nr_ports;
	pthread_rwlock_unlock(&t->model_lock);
	out->reactors = t->nr_reactors;
}
