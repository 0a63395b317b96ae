/* Reloads that change the topology: subsystems and ports added, removed or
 * readdressed, and what each port exports. New things are built (backends
 * opened, listeners bound) before anything running changes, so a failure
 * leaves the running target as it was. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "lib/log.h"
#include "nvme/subsys.h"

static const struct nvmg_conf_subsys *conf_subsys(const struct nvmg_conf *conf, const char *nqn)
{
	for (size_t i = 0; i < conf->nr_subsys; i++)
		if (!strcmp(conf->subsys[i].nqn, nqn))
			return &conf->subsys[i];
	return NULL;
}

static const struct nvmg_conf_port *conf_port(const struct nvmg_conf *conf, uint16_t portid)
{
	for (size_t i = 0; i < conf->nr_ports; i++)
		if (conf->ports[i].portid == portid)
			return &conf->ports[i];
	return NULL;
}

static struct nvmg_port *find_port(struct nvmg_target *t, uint16_t portid)
{
	for (size_t i = 0; i < t->nr_ports; i++)
		if (t->ports[i]->portid == portid)
			return t->ports[i];
	return NULL;
}

/* Same transport and listening address: the port can stay open. */
static bool same_addr(const struct nvmg_port *p, const struct nvmg_conf_port *c)
{
	char svc[8];

	snprintf(svc, sizeof(svc), "%u", c->trsvcid);
	return !strcmp(p->transport->name, c->trtype) && p->adrfam == (c->adrfam == NVMG_ADRFAM_IPV6 ? AF_INET6 : AF_INET) &&
	       !strcmp(p->traddr, c->traddr) && !strcmp(p->trsvcid, svc);
}

static bool same_exports(const struct nvmg_port *p, const struct nvmg_conf_port *c)
{
	if (p->nr_subsys != c->nr_subsystems)
		return false;
	for (size_t i = 0; i < c->nr_subsystems; i++)
		if (strcmp(p->subsys_nqns[i], c->subsystems[i]))
			return false;
	return true;
}

/* A host's controller (not the target's own local FUSE ones), on port p
 * when p is given. */
static bool remote_on_port(const struct nvmg_ctrl *c, const void *p)
{
	return c->admin_reactor && (!p || c->port == p);
}

/* A removed subsystem: no controllers, no namespaces, then retired. */
static void retire_subsys(struct nvmg_target *t, struct nvmg_subsys *s)
{
	struct nvmg_ns_table *old;
	struct nvmg_ns **nss;
	size_t n;

	nvmg_subsys_kill_ctrls(s, remote_on_port, NULL, "subsystem removed");
	pthread_mutex_lock(&s->lock);
	nss = s->ns;
	n = s->nr_ns;
	s->ns = calloc(1, sizeof(*s->ns));
	s->nr_ns = 0;
	old = nvmg_subsys_publish_ns(s, NULL);
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < n; i++)
		if (t->ns_changed)
			t->ns_changed(t->ns_changed_ctx, s, nss[i]->nsid);
	nvmg_ns_retire(t, nss, n, old);
	free(nss);
	t->retired_subsys[t->nr_retired_subsys++] = s;
	log_info("subsystem %s removed", s->nqn);
}

static void warn_fixed_attrs(const struct nvmg_subsys *s, const struct nvmg_conf_subsys *c)
{
	char serial[21];

	if (c->serial)
		snprintf(serial, sizeof(serial), "%s", c->serial);
	else
		nvmg_derive_serial(s->nqn, serial);
	if (strcmp(serial, s->serial) || strcmp(c->model ? c->model : "nvmegate", s->model) ||
	    (c->version ? c->version : 0x20000) != s->version ||
	    (c->cntlid_min ? c->cntlid_min : 1) != s->cntlid_min ||
	    (c->cntlid_max ? c->cntlid_max : 0xffef) != s->cntlid_max)
		log_warn("subsystem %s: serial, model, version and cntlid range stay as they are "
			 "while it exists (hosts cache them); remove and re-add it to change them",
			 s->nqn);
}

int nvmg_target_reconfig(struct nvmg_target *t, const struct nvmg_conf *conf, bool *changed,
			 char *err, size_t errlen)
{
	size_t nr_old_subs = t->nr_subsys, nr_old_ports = t->nr_ports;
	struct nvmg_subsys **subs = calloc(conf->nr_subsys + 1, sizeof(*subs));
	struct nvmg_port **ports = calloc(conf->nr_ports + 1, sizeof(*ports));
	struct nvmg_subsys **gone_subs = calloc(nr_old_subs + 1, sizeof(*gone_subs));
	struct nvmg_port **gone_ports = calloc(nr_old_ports + 1, sizeof(*gone_ports));
	char ***exports = calloc(conf->nr_ports + 1, sizeof(*exports));
	bool *fresh_sub = calloc(conf->nr_subsys + 1, sizeof(bool));
	bool *fresh_port = calloc(conf->nr_ports + 1, sizeof(bool));
	struct nvmg_referral **refs = calloc(conf->nr_ports + 1, sizeof(*refs));
	size_t *nr_refs = calloc(conf->nr_ports + 1, sizeof(*nr_refs));
	size_t nr_gone_subs = 0, nr_gone_ports = 0, nr_listening = 0;
	bool tls_changed = false, refs_changed = false;
	int ret = -ENOMEM;

	*changed = false;
	if (!subs || !ports || !gone_subs || !gone_ports || !exports || !fresh_sub || !fresh_port ||
	    !refs || !nr_refs)
		goto nomem;
	/* Room to retire everything that runs now, so retiring cannot fail. */
	{
		struct nvmg_subsys **rs = realloc(t->retired_subsys, (t->nr_retired_subsys + nr_old_subs + 1) *
						  sizeof(*rs));
		struct nvmg_port **rp;

		if (!rs)
			goto nomem;
		t->retired_subsys = rs;
		rp = realloc(t->retired_ports, (t->nr_retired_ports + nr_old_ports + 1) * sizeof(*rp));
		if (!rp)
			goto nomem;
		t->retired_ports = rp;
	}
	/* 1. New subsystems: open their backends. */
	for (size_t i = 0; i < conf->nr_subsys; i++) {
		subs[i] = nvmg_target_find_subsys(t, conf->subsys[i].nqn);
		if (subs[i]) {
			warn_fixed_attrs(subs[i], &conf->subsys[i]);
			continue;
		}
		ret = nvmg_subsys_build(t, &subs[i], &conf->subsys[i], err, errlen);
		if (ret)
			goto fail;
		fresh_sub[i] = true;
	}
	/* 2. New and readdressed ports: build and bind them. */
	for (size_t i = 0; i < conf->nr_ports; i++) {
		const struct nvmg_conf_port *c = &conf->ports[i];
		struct nvmg_port *old = find_port(t, c->portid);

		if (old && same_addr(old, c)) {
			ports[i] = old;
			/* Referrals of a kept port: swapped with the lists below. */
			if (nvmg_referrals_build(c, &refs[i], &nr_refs[i]))
				goto nomem;
			if (nvmg_referrals_same(old, refs[i], nr_refs[i])) {
				free(refs[i]);
				refs[i] = NULL;
			}
			if (!same_exports(old, c) &&
			    !(exports[i] = nvmg_strv_dup(c->subsystems, c->nr_subsystems)))
				goto nomem;
			continue;
		}
		ret = nvmg_port_build(t, &ports[i], c, err, errlen);
		if (ret)
			goto fail;
		fresh_port[i] = true;
		ret = nvmg_port_enable(ports[i], err, errlen);
		if (ret)
			goto fail;
		nr_listening = i + 1;
	}
	/* 3. What leaves. */
	for (size_t i = 0; i < nr_old_subs; i++)
		if (!conf_subsys(conf, t->subsys[i]->nqn))
			gone_subs[nr_gone_subs++] = t->subsys[i];
	for (size_t i = 0; i < nr_old_ports; i++) {
		const struct nvmg_conf_port *c = conf_port(conf, t->ports[i]->portid);

		if (!c || !same_addr(t->ports[i], c))
			gone_ports[nr_gone_ports++] = t->ports[i];
	}
	/* 4. Swap the lists (and changed export lists) in one step. */
	pthread_rwlock_wrlock(&t->model_lock);
	free(t->subsys);
	t->subsys = subs;
	t->nr_subsys = conf->nr_subsys;
	for (size_t i = 0; i < conf->nr_subsys; i++)
		atomic_store(&subs[i]->resv_off, !nvmg_conf_resv_served(conf, &conf->subsys[i]));
	free(t->ports);
	t->ports = ports;
	t->nr_ports = conf->nr_ports;
	for (size_t i = 0; i < conf->nr_ports; i++) {
		char **old;

		if (!exports[i])
			continue;
		old = ports[i]->subsys_nqns;
		ports[i]->subsys_nqns = exports[i];
		ports[i]->nr_subsys = conf->ports[i].nr_subsystems;
		exports[i] = old; /* freed below, after the lock */
	}
	for (size_t i = 0; i < conf->nr_ports; i++) {
		struct nvmg_referral *old;

		if (!refs[i])
			continue;
		old = ports[i]->referrals;
		ports[i]->referrals = refs[i];
		ports[i]->nr_referrals = nr_refs[i];
		refs[i] = old; /* freed below, after the lock */
		nr_refs[i] = SIZE_MAX; /* swapped */
		refs_changed = true;
	}
	pthread_rwlock_unlock(&t->model_lock);
	/* Exported or in-capsule size: new connections see the new value. */
	for (size_t i = 0; i < conf->nr_ports; i++)
		__atomic_store_n(&ports[i]->inline_data_size, conf->ports[i].inline_data_size & ~15u,
				 __ATOMIC_RELAXED);
	/* TLS settings too: the listener keeps its address (a new one could
	 * not bind it before the old closes); connections accepted from now
	 * on follow the new tsas/treq, and the change counts as a change. */
	for (size_t i = 0; i < conf->nr_ports; i++) {
		const struct nvmg_conf_port *c = &conf->ports[i];

		if (fresh_port[i] || (ports[i]->tls == c->tls && ports[i]->tls_required == c->tls_required))
			continue;
		__atomic_store_n(&ports[i]->tls, c->tls, __ATOMIC_RELAXED);
		__atomic_store_n(&ports[i]->tls_required, c->tls_required, __ATOMIC_RELAXED);
		log_info("port %u: TLS %s%s (new connections)", c->portid, c->tls ? "on" : "off",
			 c->tls ? (c->tls_required ? ", required" : ", not required") : "");
		tls_changed = true;
	}
	for (size_t i = 0; i < conf->nr_ports; i++) {
		if (nr_refs[i] == SIZE_MAX)
			log_info("port %u: %zu referral%s", ports[i]->portid, ports[i]->nr_referrals,
				 ports[i]->nr_referrals == 1 ? "" : "s");
		free(refs[i]);
	}
	/* A referral added, removed or changed is a Discovery log change. */
	*changed = nr_gone_subs || nr_gone_ports || tls_changed || refs_changed;
	for (size_t i = 0; i < conf->nr_subsys; i++) {
		if (fresh_sub[i])
			log_info("subsystem %s added (%zu namespace%s)", subs[i]->nqn, subs[i]->nr_ns,
				 subs[i]->nr_ns == 1 ? "" : "s");
		*changed |= fresh_sub[i];
	}
	/* 5. Tear down what left or is no longer exported. */
	for (size_t i = 0; i < nr_gone_ports; i++) {
		nvmg_port_disable(gone_ports[i]);
		t->retired_ports[t->nr_retired_ports++] = gone_ports[i];
		log_info("port %u removed", gone_ports[i]->portid);
	}
	for (size_t i = 0; i < nr_gone_subs; i++)
		retire_subsys(t, gone_subs[i]);
	for (size_t i = 0; i < conf->nr_ports; i++) {
		if (!exports[i])
			continue;
		*changed = true;
		log_info("port %u now exports %zu subsystem%s", ports[i]->portid, ports[i]->nr_subsys,
			 ports[i]->nr_subsys == 1 ? "" : "s");
		for (size_t j = 0; j < conf->nr_subsys; j++)
			if (!nvmg_port_exports(t, ports[i], subs[j]))
				nvmg_subsys_kill_ctrls(subs[j], remote_on_port, ports[i],
						       "subsystem no longer exported on its port");
		nvmg_strv_free(exports[i]);
	}
	for (size_t i = 0; i < conf->nr_ports; i++)
		*changed |= fresh_port[i];
	free(gone_subs);
	free(gone_ports);
	free(exports);
	free(fresh_sub);
	free(fresh_port);
	free(refs);
	free(nr_refs);
	return 0;

nomem:
	snprintf(err, errlen, "out of memory");
	ret = -ENOMEM;
fail:
	for (size_t i = 0; i < conf->nr_ports; i++) {
		if (fresh_port && fresh_port[i]) {
			if (i < nr_listening)
				nvmg_port_disable(ports[i]);
			nvmg_port_free(ports[i]);
		}
		if (exports)
			nvmg_strv_free(exports[i]);
		if (refs)
			free(refs[i]);
	}
	for (size_t i = 0; i < conf->nr_subsys; i++)
		if (fresh_sub && fresh_sub[i])
			nvmg_subsys_free(subs[i]);
	free(subs);
	free(ports);
	free(gone_subs);
	free(gone_ports);
	free(exports);
	free(fresh_sub);
	free(fresh_port);
	free(refs);
	free(nr_refs);
	return ret;
}
