/* Subsystems, namespaces and ports: the model built from the config. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "lib/log.h"
#include "nvme/bdev/devreg.h"
#include "nvme/host.h"
#include "nvme/resv.h"
#include "nvme/subsys.h"

struct nvmg_host_count {
	char nqn[NVME_NQN_LENGTH];
	unsigned queues;
};

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void copy_padded(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

char **nvmg_strv_dup(char *const *v, size_t n)
{
	char **out = calloc(n + 1, sizeof(*out));

	for (size_t i = 0; out && i < n; i++) {
		if (!(out[i] = strdup(v[i]))) {
			nvmg_strv_free(out);
			return NULL;
		}
	}
	return out;
}

void nvmg_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

struct nvmg_ctrl **nvmg_subsys_ctrls(struct nvmg_subsys *s,
				     bool (*match)(const struct nvmg_ctrl *c, const void *arg),
				     const void *arg, size_t *n)
{
	struct nvmg_ctrl **v;

	*n = 0;
	pthread_mutex_lock(&s->lock);
	v = calloc(s->nr_ctrls + 1, sizeof(*v));
	for (size_t i = 0; v && i < s->nr_ctrls; i++) {
		if (match && !match(s->ctrls[i], arg))
			continue;
		nvmg_ctrl_get(s->ctrls[i]);
		v[(*n)++] = s->ctrls[i];
	}
	pthread_mutex_unlock(&s->lock);
	return v;
}

void nvmg_subsys_kill_ctrls(struct nvmg_subsys *s,
			    bool (*match)(const struct nvmg_ctrl *c, const void *arg), const void *arg,
			    const char *why)
{
	size_t n;
	struct nvmg_ctrl **v = nvmg_subsys_ctrls(s, match, arg, &n);

	/* Outside s->lock: killing takes the controller out of s. */
	for (size_t i = 0; i < n; i++) {
		nvmg_ctrl_kill(v[i], false, why);
		nvmg_ctrl_put(v[i]);
	}
	free(v);
}

struct nvmg_subsys *nvmg_target_find_subsys(struct nvmg_target *t, const char *nqn)
{
	struct nvmg_subsys *s = NULL;

	if (!strcmp(nqn, NVMG_DISC_NQN))
		return t->discovery;
	pthread_rwlock_rdlock(&t->model_lock);
	for (size_t i = 0; i < t->nr_subsys && !s; i++)
		if (!strcmp(t->subsys[i]->nqn, nqn))
			s = t->subsys[i];
	pthread_rwlock_unlock(&t->model_lock);
	return s;
}

bool nvmg_subsys_host_allowed(struct nvmg_subsys *s, const char *hostnqn)
{
	bool ok = false;

	if (s->discovery)
		return true;
	/* Under the lock: `nvmegate host allow/deny` swaps the list. */
	pthread_mutex_lock(&s->lock);
	ok = s->allow_any_host;
	for (size_t i = 0; i < s->nr_allowed_hosts && !ok; i++)
		ok = !strcmp(s->allowed_hosts[i], hostnqn);
	pthread_mutex_unlock(&s->lock);
	return ok;
}

bool nvmg_port_exports_locked(const struct nvmg_port *p, const struct nvmg_subsys *s)
{
	if (s->discovery)
		return true;
	for (size_t i = 0; i < p->nr_subsys; i++)
		if (!strcmp(p->subsys_nqns[i], s->nqn))
			return true;
	return false;
}

bool nvmg_port_exports(struct nvmg_target *t, const struct nvmg_port *p, const struct nvmg_subsys *s)
{
	bool ret;

	pthread_rwlock_rdlock(&t->model_lock);
	ret = nvmg_port_exports_locked(p, s);
	pthread_rwlock_unlock(&t->model_lock);
	return ret;
}

/* The identifiers a namespace gets: the config's, else derived. */
static void ns_ids_from_conf(const char *subnqn, const struct nvmg_conf_ns *c,
			     const struct nvmg_bdev *b, uint8_t nguid[16], uint8_t uuid[16],
			     uint8_t eui64[8])
{
	static const uint8_t zero[16];
	uint8_t d_nguid[16], d_uuid[16], d_eui64[8];

	nvmg_derive_ns_ids(subnqn, c->nsid, d_nguid, d_uuid, d_eui64);
	/* A real device's own identifiers beat derived ones: hosts keep
	 * seeing the same namespace whichever path they use. */
	if (memcmp(b->nguid, zero, 16))
		memcpy(d_nguid, b->nguid, 16);
	if (memcmp(b->uuid, zero, 16))
		memcpy(d_uuid, b->uuid, 16);
	if (memcmp(b->eui64, zero, 8))
		memcpy(d_eui64, b->eui64, 8);
	memcpy(nguid, c->has_nguid && memcmp(c->nguid, zero, 16) ? c->nguid : d_nguid, 16);
	memcpy(uuid, c->has_uuid ? c->uuid : d_uuid, 16);
	memcpy(eui64, c->has_eui64 ? c->eui64 : d_eui64, 8);
}

/* The owner of a file whose size is not a multiple of the LBA size must
 * hear that its tail is out of reach: the 651-byte file that became one
 * 512-byte block said nothing. */
static void ns_warn_unserved(const char *nqn, const struct nvmg_ns *ns)
{
	uint64_t tail = nvmg_ns_unserved(ns);

	if (tail)
		log_warn("subsystem %s namespace %u: %s: %llu bytes are not a whole number of %u-byte "
			 "blocks: the last %llu bytes are not served", nqn, ns->nsid, ns->path,
			 (unsigned long long)nvmg_bdev_size(ns->bdev), 1u << ns->lba_shift,
			 (unsigned long long)tail);
}

static int ns_open(const struct nvmg_subsys *s, const struct nvmg_conf_ns *c, struct nvmg_ns **out,
		   char *err, size_t errlen)
{
	struct nvmg_ns *ns = calloc(1, sizeof(*ns));
	int ret;

	if (!ns)
		return -ENOMEM;
	atomic_init(&ns->refs, 1);
	ns->nsid = c->nsid;
	ns->readonly = c->readonly;
	ns->path = xstrdup(c->path);
	ns->lba_shift = c->lba_size == 4096 ? 12 : 9;
	ns->anagrpid = c->anagrpid ? c->anagrpid : 1;
	char why[256] = "";

	ret = nvmg_bdev_open(s->devreg, c->path, c->readonly, &ns->bdev, why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "subsystem %s namespace %u: %s: %s", s->nqn, c->nsid, c->path,
			 why[0] ? why : strerror(-ret));
		free(ns->path);
		free(ns);
		return ret;
	}
	if (ns->bdev->readonly)
		ns->readonly = true;
	if (ns->bdev->block_size > (1u << ns->lba_shift)) {
		snprintf(err, errlen,
			 "subsystem %s namespace %u: %s: device block size %u exceeds lba_size %u",
			 s->nqn, c->nsid, c->path, ns->bdev->block_size, 1u << ns->lba_shift);
		ns->bdev->ops->close(ns->bdev);
		free(ns->path);
		free(ns);
		return -EINVAL;
	}
	ns->nsze = ns->bdev->size >> ns->lba_shift;
	if (!ns->nsze) {
		snprintf(err, errlen, "subsystem %s namespace %u: %s: smaller than one block", s->nqn,
			 c->nsid, c->path);
		ns->bdev->ops->close(ns->bdev);
		free(ns->path);
		free(ns);
		return -EINVAL;
	}
	ns_warn_unserved(s->nqn, ns);
	/* Unset identifiers are derived, so they survive restarts. */
	ns_ids_from_conf(s->nqn, c, ns->bdev, ns->nguid, ns->uuid, ns->eui64);
	ret = nvmg_resv_create(&ns->resv, s->resv_dir, s->nqn, ns->nsid, err, errlen);
	if (ret) {
		ns->bdev->ops->close(ns->bdev);
		free(ns->path);
		free(ns);
		return ret;
	}
	*out = ns;
	return 0;
}

void nvmg_subsys_free(struct nvmg_subsys *s)
{
	if (!s)
		return;
	/* Unpublished, or the reactors are gone: no quiescent point to wait
	 * for. */
	nvmg_ns_retire(NULL, s->ns, s->nr_ns, nvmg_subsys_publish_ns(s, NULL));
	free(s->ns);
	nvmg_strv_free(s->allowed_hosts);
	free(s->ctrls);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static struct nvmg_subsys *subsys_alloc(const char *nqn)
{
	struct nvmg_subsys *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	copy_padded(s->nqn, sizeof(s->nqn), nqn);
	pthread_mutex_init(&s->lock, NULL);
	s->cntlid_min = 1;
	s->cntlid_max = 0xffef;
	s->next_cntlid = 1;
	s->version = 0x20000;
	return s;
}

static int cmp_ns(const void *a, const void *b)
{
	const struct nvmg_ns *x = *(struct nvmg_ns *const *)a, *y = *(struct nvmg_ns *const *)b;

	return x->nsid < y->nsid ? -1 : x->nsid > y->nsid;
}

int nvmg_subsys_build(struct nvmg_target *t, struct nvmg_subsys **out,
		      const struct nvmg_conf_subsys *c, char *err, size_t errlen)
{
	struct nvmg_subsys *s = subsys_alloc(c->nqn);
	struct nvmg_ns_table *tab;
	int ret;

	if (!s)
		return -ENOMEM;
	s->devreg = t->devreg;
	s->resv_dir = t->resv_dir;
	s->allow_any_host = c->allow_any_host;
	s->allowed_hosts = nvmg_strv_dup(c->allowed_hosts, c->nr_allowed_hosts);
	if (!s->allowed_hosts)
		goto nomem;
	s->nr_allowed_hosts = c->nr_allowed_hosts;
	if (c->serial)
		copy_padded(s->serial, sizeof(s->serial), c->serial);
	else
		nvmg_derive_serial(s->nqn, s->serial);
	copy_padded(s->model, sizeof(s->model), c->model ? c->model : "nvmegate");
	if (c->version)
		s->version = c->version;
	if (c->cntlid_min)
		s->cntlid_min = c->cntlid_min;
	if (c->cntlid_max)
		s->cntlid_max = c->cntlid_max;
	s->next_cntlid = s->cntlid_min;
	s->ns = calloc(c->nr_ns + 1, sizeof(*s->ns));
	if (!s->ns)
		goto nomem;
	for (size_t i = 0; i < c->nr_ns; i++) {
		if (!c->ns[i].enable)
			continue;
		ret = ns_open(s, &c->ns[i], &s->ns[s->nr_ns], err, errlen);
		if (ret) {
			nvmg_subsys_free(s);
			return ret;
		}
		s->nr_ns++;
	}
	qsort(s->ns, s->nr_ns, sizeof(*s->ns), cmp_ns);
	tab = nvmg_ns_table_alloc(s->nr_ns);
	if (!tab)
		goto nomem;
	nvmg_subsys_publish_ns(s, tab);
	*out = s;
	return 0;
nomem:
	nvmg_subsys_free(s);
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

void nvmg_port_free(struct nvmg_port *p)
{
	if (!p)
		return;
	nvmg_strv_free(p->subsys_nqns);
	free(p->referrals);
	free(p);
}

int nvmg_referrals_build(const struct nvmg_conf_port *c, struct nvmg_referral **out, size_t *nr)
{
	struct nvmg_referral *r = calloc(c->nr_referrals + 1, sizeof(*r));
	size_t n = 0;

	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < c->nr_referrals; i++) {
		const struct nvmg_conf_referral *cr = &c->referrals[i];
		struct nvmg_referral *e = &r[n];

		/* A disabled referral is kept in the file, not in the log. */
		if (!cr->enabled)
			continue;
		e->portid = cr->portid;
		e->trtype = (uint8_t)cr->trtype;
		e->adrfam = cr->adrfam == NVMG_ADRFAM_IPV6 ? NVMF_ADDR_FAMILY_IP6 : NVMF_ADDR_FAMILY_IP4;
		/* As written: the referred service states its own policy. */
		e->treq = cr->treq == NVMG_TREQ_REQUIRED       ? NVMF_TREQ_REQUIRED
			  : cr->treq == NVMG_TREQ_NOT_REQUIRED ? NVMF_TREQ_NOT_REQUIRED
							       : NVMF_TREQ_NOT_SPECIFIED;
		e->sectype = cr->tls ? NVMF_TCP_SECTYPE_TLS13 : NVMF_TCP_SECTYPE_NONE;
		snprintf(e->traddr, sizeof(e->traddr), "%s", cr->traddr);
		snprintf(e->trsvcid, sizeof(e->trsvcid), "%u", cr->trsvcid);
		n++;
	}
	*out = r;
	*nr = n;
	return 0;
}

bool nvmg_referrals_same(const struct nvmg_port *p, const struct nvmg_referral *r, size_t nr)
{
	return p->nr_referrals == nr && (!nr || !memcmp(p->referrals, r, nr * sizeof(*r)));
}

int nvmg_port_build(struct nvmg_target *t, struct nvmg_port **out, const struct nvmg_conf_port *c,
		    char *err, size_t errlen)
{
	const struct nvmg_transport_reg *tr = nvmg_target_find_transport(t, c->trtype);
	struct nvmg_port *p;
	char shown[sizeof(c->trtype) + 2], why[256];
	int ret;

	/* A config checked against t's transports never fails here. */
	snprintf(shown, sizeof(shown), "\"%s\"", c->trtype);
	ret = nvmg_target_check_trtype(t, c->trtype, shown, why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "port %u: %s", c->portid, why);
		return ret;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		goto nomem;
	p->portid = c->portid;
	p->transport = tr->ops;
	p->transport_ctx = tr->ctx;
	p->adrfam = c->adrfam == NVMG_ADRFAM_IPV6 ? AF_INET6 : AF_INET;
	copy_padded(p->traddr, sizeof(p->traddr), c->traddr);
	snprintf(p->trsvcid, sizeof(p->trsvcid), "%u", c->trsvcid);
	p->wildcard = !strcmp(c->traddr, "0.0.0.0") || !strcmp(c->traddr, "::");
	/* In-capsule data is counted in 16-byte units (IOCCSZ). */
	p->inline_data_size = c->inline_data_size & ~15u;
	p->tls = c->tls;
	p->tls_required = c->tls_required;
	p->subsys_nqns = nvmg_strv_dup(c->subsystems, c->nr_subsystems);
	if (!p->subsys_nqns) {
		free(p);
		goto nomem;
	}
	p->nr_subsys = c->nr_subsystems;
	if (nvmg_referrals_build(c, &p->referrals, &p->nr_referrals)) {
		nvmg_port_free(p);
		goto nomem;
	}
	nvmg_ana_port_init(&p->ana, c);
	*out = p;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

int nvmg_target_build(struct nvmg_target *t, const struct nvmg_conf *conf, char *err, size_t errlen)
{
	int ret;

	pthread_mutex_init(&t->hosts_lock, NULL);
	pthread_rwlock_init(&t->model_lock, NULL);
	t->max_queues_per_host = conf->max_queues_per_host;
	t->discovery = subsys_alloc(NVMG_DISC_NQN);
	t->subsys = calloc(conf->nr_subsys + 1, sizeof(*t->subsys));
	t->ports = calloc(conf->nr_ports + 1, sizeof(*t->ports));
	t->devreg = nvmg_devreg_create();
	if (!t->discovery || !t->subsys || !t->ports || !t->devreg ||
	    nvmg_hosts_build(conf, &t->hosts, &t->nr_hosts)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t->discovery->discovery = true;
	t->discovery->allow_any_host = true;
	copy_padded(t->discovery->model, sizeof(t->discovery->model), "nvmegate discovery");
	nvmg_derive_serial(t->discovery->nqn, t->discovery->serial);
	for (size_t i = 0; i < conf->nr_subsys; i++) {
		ret = nvmg_subsys_build(t, &t->subsys[i], &conf->subsys[i], err, errlen);
		if (ret)
			return ret;
		t->subsys[i]->resv_off = !nvmg_conf_resv_served(conf, &conf->subsys[i]);
		t->nr_subsys++;
	}
	for (size_t i = 0; i < conf->nr_ports; i++) {
		ret = nvmg_port_build(t, &t->ports[i], &conf->ports[i], err, errlen);
		if (ret)
			return ret;
		t->nr_ports++;
	}
	return 0;
}

static const struct nvmg_conf_ns *conf_find_ns(const struct nvmg_conf_subsys *c, uint32_t nsid)
{
	for (size_t i = 0; i < c->nr_ns; i++)
		if (c->ns[i].nsid == nsid && c->ns[i].enable)
			return &c->ns[i];
	return NULL;
}

/* A namespace whose backing or identity changed is removed and re-added:
 * hosts must not see new data under old identifiers. */
static bool ns_same(const struct nvmg_subsys *s, const struct nvmg_ns *ns, const struct nvmg_conf_ns *c)
{
	struct nvmg_ns tmp;

	if (strcmp(ns->path, c->path) || ns->readonly != (c->readonly || ns->bdev->readonly) ||
	    ns->lba_shift != (c->lba_size == 4096 ? 12 : 9))
		return false;
	ns_ids_from_conf(s->nqn, c, ns->bdev, tmp.nguid, tmp.uuid, tmp.eui64);
	return !memcmp(tmp.nguid, ns->nguid, 16) && !memcmp(tmp.uuid, ns->uuid, 16) &&
	       !memcmp(tmp.eui64, ns->eui64, 8);
}

static void notify_ns_change(struct nvmg_subsys *s, uint32_t nsid)
{
	/* Called with s->lock held; raising takes only the ctrl's lock. */
	for (size_t i = 0; i < s->nr_ctrls; i++)
		nvmg_ctrl_ns_changed(s->ctrls[i], nsid);
}

/* A subsystem's namespace changes, prepared (backends opened, memory
 * allocated) for every subsystem before any is committed, so a reload that
 * fails anywhere changes nothing. Reloads are serialized by the caller. */
struct ns_plan {
	struct nvmg_subsys *s;
	struct nvmg_ns **keep, **added, **removed;
	size_t nr_added;
	struct nvmg_ns_table *tab; /* the reactors' next table */
};

static void ns_plan_drop(struct ns_plan *p)
{
	if (p->added) /* never published */
		nvmg_ns_retire(NULL, p->added, p->nr_added, NULL);
	free(p->tab);
	free(p->keep);
	free(p->added);
	free(p->removed);
	memset(p, 0, sizeof(*p));
}

static int ns_plan_prepare(struct ns_plan *p, struct nvmg_subsys *s,
			   const struct nvmg_conf_subsys *c, char *err, size_t errlen)
{
	size_t nr_added = 0;
	int ret = 0;

	memset(p, 0, sizeof(*p));
	p->s = s;
	p->keep = calloc(c->nr_ns + s->nr_ns + 1, sizeof(*p->keep));
	p->added = calloc(c->nr_ns + 1, sizeof(*p->added));
	p->removed = calloc(s->nr_ns + 1, sizeof(*p->removed));
	p->tab = nvmg_ns_table_alloc(c->nr_ns + s->nr_ns);
	if (!p->keep || !p->added || !p->removed || !p->tab) {
		snprintf(err, errlen, "out of memory");
		ns_plan_drop(p);
		return -ENOMEM;
	}
	/* Open new backends first, without the lock: a failure leaves the
	 * running configuration untouched. */
	for (size_t i = 0; i < c->nr_ns; i++) {
		const struct nvmg_conf_ns *cn = &c->ns[i];
		struct nvmg_ns *old;

		if (!cn->enable)
			continue;
		old = nvmg_subsys_get_ns(s, cn->nsid);
		if (old) {
			bool same = ns_same(s, old, cn);

			nvmg_ns_put(old);
			if (same)
				continue;
		}
		ret = ns_open(s, cn, &p->added[nr_added], err, errlen);
		if (ret) {
			p->nr_added = nr_added;
			ns_plan_drop(p);
			return ret;
		}
		nr_added++;
	}
	p->nr_added = nr_added;
	return 0;
}

/* Cannot fail: everything was opened and allocated by ns_plan_prepare. */
static void ns_plan_commit(struct nvmg_target *t, struct ns_plan *p, const struct nvmg_conf_subsys *c)
{
	struct nvmg_subsys *s = p->s;
	struct nvmg_ns **keep = p->keep, **added = p->added, **removed = p->removed;
	size_t nr_keep = 0, nr_added = p->nr_added, nr_removed = 0;
	struct nvmg_ns_table *old;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nr_ns; i++) {
		const struct nvmg_conf_ns *cn = conf_find_ns(c, s->ns[i]->nsid);
		bool replaced = false;

		for (size_t j = 0; j < nr_added; j++)
			replaced |= added[j]->nsid == s->ns[i]->nsid;
		if (cn && !replaced)
			keep[nr_keep++] = s->ns[i];
		else
			removed[nr_removed++] = s->ns[i];
	}
	for (size_t j = 0; j < nr_added; j++)
		keep[nr_keep++] = added[j];
	qsort(keep, nr_keep, sizeof(*keep), cmp_ns);
	free(s->ns);
	s->ns = keep;
	s->nr_ns = nr_keep;
	keep = NULL;
	old = nvmg_subsys_publish_ns(s, p->tab);
	for (size_t j = 0; j < nr_removed; j++) {
		log_info("subsystem %s: namespace %u removed", s->nqn, removed[j]->nsid);
		notify_ns_change(s, removed[j]->nsid);
	}
	for (size_t j = 0; j < nr_added; j++) {
		bool replaced = false;

		for (size_t k = 0; k < nr_removed; k++)
			replaced |= removed[k]->nsid == added[j]->nsid;
		log_info("subsystem %s: namespace %u %s (%s)", s->nqn, added[j]->nsid,
			 replaced ? "replaced" : "added", added[j]->path);
		if (!replaced)
			notify_ns_change(s, added[j]->nsid);
	}
	pthread_mutex_unlock(&s->lock);
	/* The observer runs unlocked: it may wait on the kernel (FUSE). */
	if (t->ns_changed) {
		for (size_t j = 0; j < nr_removed; j++)
			t->ns_changed(t->ns_changed_ctx, s, removed[j]->nsid);
		for (size_t j = 0; j < nr_added; j++) {
			bool replaced = false;

			for (size_t k = 0; k < nr_removed; k++)
				replaced |= removed[k]->nsid == added[j]->nsid;
			if (!replaced)
				t->ns_changed(t->ns_changed_ctx, s, added[j]->nsid);
		}
	}
	/* In-flight commands hold their own references. */
	nvmg_ns_retire(t, removed, nr_removed, old);
	free(added);
	free(removed);
	memset(p, 0, sizeof(*p));
}

void nvmg_target_discovery_changed(struct nvmg_target *t)
{
	struct nvmg_subsys *d = t->discovery;

	atomic_fetch_add(&t->discovery_genctr, 1);
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->nr_ctrls; i++)
		nvmg_ctrl_raise_aen(d->ctrls[i], NVME_AER_NOTICE, NVME_AER_NOTICE_DISC_CHANGED,
				    NVME_LOG_LID_DISCOVER);
	pthread_mutex_unlock(&d->lock);
}

static bool strv_has(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

/* With s->lock held (nvmg_subsys_ctrls): a host's controller whose host
 * the subsystem no longer allows. Local (FUSE) controllers are the
 * target's own. */
static bool host_disallowed(const struct nvmg_ctrl *ctrl, const void *arg)
{
	const struct nvmg_subsys *s = arg;

	return ctrl->admin_reactor && !s->allow_any_host &&
	       !strv_has(s->allowed_hosts, s->nr_allowed_hosts, ctrl->hostnqn);
}

/* Host access: swap in the new list, then tear down the controllers of
 * hosts no longer allowed. 0 (*changed: whether the list changed) or
 * -ENOMEM. */
static int subsys_reload_hosts(struct nvmg_subsys *s, const struct nvmg_conf_subsys *c,
			       bool *changed)
{
	char **hosts = nvmg_strv_dup(c->allowed_hosts, c->nr_allowed_hosts), **old;
	bool same;

	*changed = false;
	if (!hosts)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	same = s->allow_any_host == c->allow_any_host && s->nr_allowed_hosts == c->nr_allowed_hosts;
	for (size_t i = 0; same && i < c->nr_allowed_hosts; i++)
		same = strv_has(s->allowed_hosts, s->nr_allowed_hosts, c->allowed_hosts[i]);
	if (same) {
		pthread_mutex_unlock(&s->lock);
		nvmg_strv_free(hosts);
		return 0;
	}
	old = s->allowed_hosts;
	s->allowed_hosts = hosts;
	s->nr_allowed_hosts = c->nr_allowed_hosts;
	s->allow_any_host = c->allow_any_host;
	pthread_mutex_unlock(&s->lock);
	*changed = true;
	log_info("subsystem %s: %s", s->nqn,
		 s->allow_any_host ? "any host may connect" : "allowed hosts changed");
	nvmg_strv_free(old);
	nvmg_subsys_kill_ctrls(s, host_disallowed, s, "host no longer allowed");
	return 0;
}

int nvmg_target_resize_ns(struct nvmg_target *t, const char *nqn, uint32_t nsid, uint64_t bytes,
			  uint64_t *blocks, char *err, size_t errlen)
{
	struct nvmg_subsys *s = nvmg_target_find_subsys(t, nqn);
	struct nvmg_ns *ns;
	uint64_t nsze;
	int ret;

	if (!s || s->discovery) {
		snprintf(err, errlen, "no subsystem %s", nqn);
		return -ENOENT;
	}
	ns = nvmg_subsys_get_ns(s, nsid);
	if (!ns) {
		snprintf(err, errlen, "subsystem %s has no namespace %u", nqn, nsid);
		return -ENOENT;
	}
	ret = -EINVAL;
	if (!ns->bdev->ops->resize) {
		snprintf(err, errlen, "namespace %u (%s) cannot be resized: its backend keeps no "
			 "data across a size change; remove it and add a new one", nsid, ns->path);
		ret = -EOPNOTSUPP;
	} else if (bytes % (1u << ns->lba_shift)) {
		snprintf(err, errlen, "%llu is not a multiple of the namespace's %u-byte blocks",
			 (unsigned long long)bytes, 1u << ns->lba_shift);
	} else if ((ret = ns->bdev->ops->resize(ns->bdev, bytes))) {
		snprintf(err, errlen, "namespace %u (%s): resize: %s", nsid, ns->path, strerror(-ret));
	} else if (!(nsze = nvmg_bdev_size(ns->bdev) >> ns->lba_shift)) {
		snprintf(err, errlen, "namespace %u (%s): now smaller than one block", nsid, ns->path);
		ret = -EINVAL;
	} else {
		__atomic_store_n(&ns->nsze, nsze, __ATOMIC_RELAXED);
		*blocks = nsze;
		log_info("subsystem %s: namespace %u resized to %llu blocks", s->nqn, nsid,
			 (unsigned long long)nsze);
		ns_warn_unserved(s->nqn, ns);
		pthread_mutex_lock(&s->lock);
		notify_ns_change(s, nsid);
		pthread_mutex_unlock(&s->lock);
		if (t->ns_changed)
			t->ns_changed(t->ns_changed_ctx, s, nsid);
	}
	nvmg_ns_put(ns);
	return ret;
}

int nvmg_target_reload(struct nvmg_target *t, const struct nvmg_conf *conf, char *err, size_t errlen)
{
	struct ns_plan *plans = calloc(conf->nr_subsys + 1, sizeof(*plans));
	bool disc_changed = false, changed_topology = false;
	struct nvmg_host *hosts = NULL;
	size_t nr_hosts = 0;
	int ret = 0;

	if (!plans || nvmg_hosts_build(conf, &hosts, &nr_hosts)) {
		free(plans);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* 1. Open what the subsystems that stay will need; 2. the topology
	 * (atomic itself); only then 3. commit, which cannot fail: a file
	 * that cannot be applied changes nothing. */
	for (size_t i = 0; i < conf->nr_subsys && !ret; i++) {
		struct nvmg_subsys *s = nvmg_target_find_subsys(t, conf->subsys[i].nqn);

		if (s && !s->discovery)
			ret = ns_plan_prepare(&plans[i], s, &conf->subsys[i], err, errlen);
	}
	if (!ret)
		ret = nvmg_target_reconfig(t, conf, &changed_topology, err, errlen);
	if (ret) {
		for (size_t i = 0; i < conf->nr_subsys; i++)
			ns_plan_drop(&plans[i]);
		free(plans);
		nvmg_hosts_free(hosts, nr_hosts);
		return ret;
	}
	nvmg_target_set_hosts(t, hosts, nr_hosts);
	pthread_mutex_lock(&t->hosts_lock);
	t->max_queues_per_host = conf->max_queues_per_host;
	pthread_mutex_unlock(&t->hosts_lock);
	for (size_t i = 0; i < conf->nr_subsys; i++) {
		struct nvmg_subsys *s = plans[i].s;
		bool changed = false;

		if (!s)
			continue;
		ns_plan_commit(t, &plans[i], &conf->subsys[i]);
		/* Only out of memory; namespaces are applied by then. */
		if (subsys_reload_hosts(s, &conf->subsys[i], &changed) && !ret) {
			snprintf(err, errlen, "out of memory applying allowed hosts");
			ret = -ENOMEM;
		}
		disc_changed |= changed;
	}
	free(plans);
	nvmg_ana_apply(t, conf);
	/* Which subsystems a host finds depends on its access and the ports. */
	if (disc_changed || changed_topology)
		nvmg_target_discovery_changed(t);
	return ret;
}

int nvmg_target_flush_all(struct nvmg_target *t)
{
	int first = 0;

	for (size_t i = 0; i < t->nr_subsys; i++) {
		struct nvmg_subsys *s = t->subsys[i];

		pthread_mutex_lock(&s->lock);
		for (size_t j = 0; j < s->nr_ns; j++) {
			struct nvmg_bdev *b = s->ns[j]->bdev;
			int ret = b->ops->flush_sync ? b->ops->flush_sync(b) : 0;

			if (ret && !first)
				first = ret;
		}
		pthread_mutex_unlock(&s->lock);
	}
	return first;
}

void nvmg_target_destroy(struct nvmg_target *t)
{
	for (size_t i = 0; i < t->nr_subsys; i++)
		nvmg_subsys_free(t->subsys[i]);
	free(t->subsys);
	nvmg_subsys_free(t->discovery);
	for (size_t i = 0; i < t->nr_ports; i++)
		nvmg_port_free(t->ports[i]);
	free(t->ports);
	for (size_t i = 0; i < t->nr_retired_subsys; i++)
		nvmg_subsys_free(t->retired_subsys[i]);
	free(t->retired_subsys);
	for (size_t i = 0; i < t->nr_retired_ports; i++)
		nvmg_port_free(t->retired_ports[i]);
	free(t->retired_ports);
	free(t->host_counts);
	nvmg_hosts_free(t->hosts, t->nr_hosts);
	/* After every namespace: the last one out closed its device. */
	nvmg_devreg_destroy(t->devreg);
	pthread_mutex_destroy(&t->hosts_lock);
	pthread_rwlock_destroy(&t->model_lock);
	memset(t, 0, sizeof(*t));
}

bool nvmg_target_host_queue_get(struct nvmg_target *t, const char *hostnqn)
{
	struct nvmg_host_count *h = NULL;
	bool ok = true;

	pthread_mutex_lock(&t->hosts_lock);
	for (size_t i = 0; i < t->nr_host_counts; i++)
		if (!strcmp(t->host_counts[i].nqn, hostnqn))
			h = &t->host_counts[i];
	if (!h) {
		struct nvmg_host_count *n = realloc(t->host_counts, (t->nr_host_counts + 1) * sizeof(*n));

		if (!n) {
			pthread_mutex_unlock(&t->hosts_lock);
			return false;
		}
		t->host_counts = n;
		h = &n[t->nr_host_counts++];
		copy_padded(h->nqn, sizeof(h->nqn), hostnqn);
		h->queues = 0;
	}
	if (h->queues >= t->max_queues_per_host)
		ok = false;
	else
		h->queues++;
	pthread_mutex_unlock(&t->hosts_lock);
	return ok;
}

void nvmg_target_host_queue_put(struct nvmg_target *t, const char *hostnqn)
{
	pthread_mutex_lock(&t->hosts_lock);
	for (size_t i = 0; i < t->nr_host_counts; i++) {
		if (strcmp(t->host_counts[i].nqn, hostnqn))
			continue;
		if (--t->host_counts[i].queues == 0)
			t->host_counts[i] = t->host_counts[--t->nr_host_counts];
		break;
	}
	pthread_mutex_unlock(&t->hosts_lock);
}
