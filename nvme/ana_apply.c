/* A reload's ANA states and namespace groups applied to the running ports
 * and namespaces, and the ANA change event to the controllers whose log
 * changed (see ana.h). Apart from ana.c so that what the I/O path and the
 * log page need links without the subsystem and event code. */
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "nvme/ana.h"
#include "nvme/subsys.h"

static const struct nvmg_conf_port *find_conf_port(const struct nvmg_conf *conf, uint16_t id)
{
	for (size_t i = 0; i < conf->nr_ports; i++)
		if (conf->ports[i].portid == id)
			return &conf->ports[i];
	return NULL;
}

static const struct nvmg_conf_subsys *find_conf_subsys(const struct nvmg_conf *conf,
							const char *nqn)
{
	for (size_t i = 0; i < conf->nr_subsys; i++)
		if (!strcmp(conf->subsys[i].nqn, nqn))
			return &conf->subsys[i];
	return NULL;
}

static const char *state_name(uint8_t st)
{
	switch (st) {
	case NVME_ANA_STATE_OPTIMIZED:
		return "optimized";
	case NVME_ANA_STATE_NONOPTIMIZED:
		return "non-optimized";
	case NVME_ANA_STATE_INACCESSIBLE:
		return "inaccessible";
	case NVME_ANA_STATE_PERSISTENT_LOSS:
		return "persistent-loss";
	default:
		return "change";
	}
}

/* The port's new states; true if its log changed: a state (that group's
 * change count moves on) or a group listed or no longer listed. */
static bool port_apply(struct nvmg_port *p, const struct nvmg_conf_port *c)
{
	bool changed = false;

	for (uint32_t g = 1; g <= NVMG_ANAGRPMAX; g++) {
		bool listed;
		uint8_t st = nvmg_ana_conf_state(c, g, &listed);

		if (atomic_exchange(&p->ana.listed[g], listed) != listed)
			changed = true;
		if (atomic_exchange(&p->ana.state[g], st) == st)
			continue;
		atomic_fetch_add(&p->ana.grp_chgcnt[g], 1);
		log_info("port %u: ANA group %u is now %s", p->portid, g, state_name(st));
		changed = true;
	}
	if (changed)
		atomic_fetch_add(&p->ana.chgcnt, 1);
	return changed;
}

/* Namespaces moved to another group; true if any did. */
static bool subsys_apply(struct nvmg_subsys *s, const struct nvmg_conf_subsys *c)
{
	bool changed = false;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_ns; i++) {
		struct nvmg_ns *ns = s->ns[i];

		for (size_t j = 0; j < c->nr_ns; j++) {
			uint32_t g = c->ns[j].anagrpid ? c->ns[j].anagrpid : 1;

			if (c->ns[j].nsid != ns->nsid || atomic_exchange(&ns->anagrpid, g) == g)
				continue;
			log_info("subsystem %s: namespace %u is now in ANA group %u", s->nqn,
				 ns->nsid, g);
			changed = true;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return changed;
}

struct ana_match {
	struct nvmg_port **ports; /* ports whose states changed */
	size_t nr_ports;
	bool all;                 /* the subsystem's groups changed */
};

static bool ctrl_sees_change(const struct nvmg_ctrl *c, const void *arg)
{
	const struct ana_match *m = arg;

	if (m->all)
		return true;
	for (size_t i = 0; i < m->nr_ports; i++)
		if (c->port == m->ports[i])
			return true;
	return false;
}

void nvmg_ana_apply(struct nvmg_target *t, const struct nvmg_conf *conf)
{
	struct ana_match m = { 0 };
	struct nvmg_subsys **subs;
	bool *moved;
	size_t nr_subs;

	pthread_rwlock_rdlock(&t->model_lock);
	m.ports = calloc(t->nr_ports + 1, sizeof(*m.ports));
	nr_subs = t->nr_subsys;
	subs = calloc(nr_subs + 1, sizeof(*subs));
	moved = calloc(nr_subs + 1, sizeof(*moved));
	if (!m.ports || !subs || !moved) {
		pthread_rwlock_unlock(&t->model_lock);
		log_err("ANA: out of memory applying the config's states");
		free(m.ports), free(subs), free(moved);
		return;
	}
	for (size_t i = 0; i < t->nr_ports; i++) {
		const struct nvmg_conf_port *c = find_conf_port(conf, t->ports[i]->portid);

		if (c && port_apply(t->ports[i], c))
			m.ports[m.nr_ports++] = t->ports[i];
	}
	for (size_t i = 0; i < nr_subs; i++) {
		const struct nvmg_conf_subsys *c = find_conf_subsys(conf, t->subsys[i]->nqn);

		subs[i] = t->subsys[i];
		moved[i] = c && !subs[i]->discovery && subsys_apply(subs[i], c);
		/* The log of every port serving it changed. */
		for (size_t j = 0; moved[i] && j < t->nr_ports; j++)
			if (nvmg_port_exports_locked(t->ports[j], subs[i]))
				atomic_fetch_add(&t->ports[j]->ana.chgcnt, 1);
	}
	pthread_rwlock_unlock(&t->model_lock);

	/* Subsystems and ports are retired, never freed, while the target
	 * lives: the pointers stay valid outside the lock. */
	for (size_t i = 0; i < nr_subs && (m.nr_ports || moved[i]); i++) {
		struct nvmg_ctrl **ctrls;
		size_t n = 0;

		m.all = moved[i];
		ctrls = nvmg_subsys_ctrls(subs[i], ctrl_sees_change, &m, &n);
		for (size_t j = 0; j < n; j++) {
			nvmg_ctrl_raise_aen(ctrls[j], NVME_AER_NOTICE, NVME_AER_NOTICE_ANA,
					    NVME_LOG_LID_ANA);
			nvmg_ctrl_put(ctrls[j]);
		}
		free(ctrls);
	}
	free(m.ports), free(subs), free(moved);
}
