/* ANA states per (port, group), the I/O check and the ANA log page (see
 * ana.h); applying a reload's states is ana_apply.c. */
#include <stdlib.h>
#include <string.h>
#include "nvme/ana.h"
#include "nvme/subsys.h"

_Static_assert(NVMG_ANAGRPMAX == NVMG_CONF_ANAGRPMAX, "the config's group range is ours");

/* What c says group g is on its port: listed, group 1 by default
 * optimized, any other group inaccessible. */
uint8_t nvmg_ana_conf_state(const struct nvmg_conf_port *c, uint32_t g, bool *listed)
{
	for (size_t i = 0; i < c->nr_ana_groups; i++)
		if (c->ana_groups[i].grpid == g) {
			*listed = true;
			return (uint8_t)c->ana_groups[i].state;
		}
	*listed = false;
	return g == 1 ? NVME_ANA_STATE_OPTIMIZED : NVME_ANA_STATE_INACCESSIBLE;
}

void nvmg_ana_port_init(struct nvmg_ana_port *a, const struct nvmg_conf_port *c)
{
	for (uint32_t g = 1; g <= NVMG_ANAGRPMAX; g++) {
		bool listed;

		atomic_store(&a->state[g], nvmg_ana_conf_state(c, g, &listed));
		atomic_store(&a->listed[g], listed);
	}
}

uint16_t nvmg_ana_check(const struct nvmg_port *port, const struct nvmg_ns *ns)
{
	uint32_t g = atomic_load_explicit(&ns->anagrpid, memory_order_relaxed);

	if (!port || !g || g > NVMG_ANAGRPMAX)
		return 0;
	switch (atomic_load_explicit(&port->ana.state[g], memory_order_relaxed)) {
	case NVME_ANA_STATE_INACCESSIBLE:
		return NVMG_STATUS(NVME_SCT_PATH, NVME_SC_ANA_INACCESSIBLE);
	case NVME_ANA_STATE_PERSISTENT_LOSS:
		return NVMG_STATUS(NVME_SCT_PATH, NVME_SC_ANA_PERSISTENT_LOSS);
	case NVME_ANA_STATE_CHANGE:
		return NVMG_STATUS(NVME_SCT_PATH, NVME_SC_ANA_TRANSITION);
	default: /* optimized, non-optimized */
		return 0;
	}
}

/* ---- the log page ---- */

void *nvmg_ana_log(struct nvmg_ctrl *c, bool rgo, size_t *len)
{
	const struct nvmg_ana_port *a = &c->port->ana;
	struct nvmg_subsys *s = c->subsys;
	struct nvme_ana_log *hdr;
	size_t off = sizeof(*hdr), cap;
	uint16_t ngrps = 0;
	uint8_t *buf;

	pthread_mutex_lock(&s->lock);
	cap = sizeof(*hdr) + NVMG_ANAGRPMAX * sizeof(struct nvme_ana_group_desc) +
	      (rgo ? 0 : s->nr_ns * sizeof(uint32_t));
	buf = calloc(1, cap);
	if (!buf) {
		pthread_mutex_unlock(&s->lock);
		return NULL;
	}
	/* Ascending group IDs; within a group, ascending NSIDs (s->ns is
	 * sorted). A group is listed where the port defines it or a namespace
	 * of the subsystem is in it; group 1 always. */
	for (uint32_t g = 1; g <= NVMG_ANAGRPMAX; g++) {
		/* A descriptor follows the previous one's NSID list: only 4-byte
		 * aligned, so it is built here and copied. */
		struct nvme_ana_group_desc d;
		uint8_t *nsids = buf + off + sizeof(d);
		uint32_t n = 0;
		bool used = false;

		for (size_t i = 0; i < s->nr_ns; i++) {
			uint32_t id = htole32(s->ns[i]->nsid);

			if (atomic_load(&s->ns[i]->anagrpid) != g)
				continue;
			used = true;
			if (!rgo)
				memcpy(nsids + 4 * n++, &id, sizeof(id));
		}
		if (g != 1 && !used && !atomic_load(&a->listed[g]))
			continue;
		memset(&d, 0, sizeof(d));
		d.grpid = htole32(g);
		d.nnsids = htole32(n);
		d.chgcnt = htole64(atomic_load(&a->grp_chgcnt[g]));
		d.state = atomic_load(&a->state[g]);
		memcpy(buf + off, &d, sizeof(d));
		off += sizeof(d) + n * sizeof(uint32_t);
		ngrps++;
	}
	pthread_mutex_unlock(&s->lock);
	hdr = (struct nvme_ana_log *)buf;
	hdr->chgcnt = htole64(atomic_load(&a->chgcnt));
	hdr->ngrps = htole16(ngrps);
	*len = off;
	return buf;
}
