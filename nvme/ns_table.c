/* Namespace lookup and references without shared writes on the I/O path.
 *
 * Reactors look namespaces up in s->io_ns, a table published whole with an
 * atomic pointer (never changed in place), and count their references in
 * their own per-reactor counter; nothing they write is shared with another
 * reactor. Changing the namespaces publishes a new table; the old table and
 * the references of the namespaces that left are dropped only after every
 * reactor passed a quiescent point (nvmg_reactor_synchronize), by which time
 * no reactor can still hold the old table nor take a per-reactor reference
 * to a leaving namespace. Other threads (the control socket, FUSE's
 * threads) take s->lock and count in ns->refs, as before. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "lib/reactor.h"
#include "nvme/resv.h"
#include "nvme/subsys.h"

struct nvmg_ns_table *nvmg_ns_table_alloc(size_t cap)
{
	struct nvmg_ns_table *tab = malloc(sizeof(*tab) + (cap + 1) * sizeof(tab->ns[0]));

	if (tab)
		tab->nr = 0;
	return tab;
}

struct nvmg_ns_table *nvmg_subsys_publish_ns(struct nvmg_subsys *s, struct nvmg_ns_table *tab)
{
	if (tab) {
		memcpy(tab->ns, s->ns, s->nr_ns * sizeof(tab->ns[0]));
		tab->nr = s->nr_ns;
	}
	return atomic_exchange_explicit(&s->io_ns, tab, memory_order_acq_rel);
}

static struct nvmg_ns *table_find(struct nvmg_ns *const *ns, size_t n, uint32_t nsid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) { /* sorted by nsid */
		size_t mid = (lo + hi) / 2;

		if (ns[mid]->nsid == nsid)
			return ns[mid];
		if (ns[mid]->nsid < nsid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The calling reactor's counter for ns, allocated on first use; NULL when
 * not on a reactor, the namespace is dying, or out of memory: then the
 * reference counts in ns->refs. */
static struct nvmg_ns_inflight *my_counter(struct nvmg_ns *ns)
{
	struct nvmg_reactor *r = nvmg_reactor_self();
	struct nvmg_ns_inflight *c;
	unsigned id;

	if (!r || (id = nvmg_reactor_id(r)) >= NVMG_STAT_SLOTS ||
	    atomic_load_explicit(&ns->dying, memory_order_acquire))
		return NULL;
	c = atomic_load_explicit(&ns->inflight[id], memory_order_relaxed);
	if (!c) {
		c = aligned_alloc(64, sizeof(*c));
		if (!c)
			return NULL;
		atomic_init(&c->n, 0);
		/* Only this reactor writes slot id; the retirer reads it after
		 * a quiescent point, which orders this store before. */
		atomic_store_explicit(&ns->inflight[id], c, memory_order_relaxed);
	}
	return c;
}

static void ref_get(struct nvmg_ns *ns)
{
	struct nvmg_ns_inflight *c = my_counter(ns);

	if (c) /* single writer: no read-modify-write needed */
		atomic_store_explicit(&c->n, atomic_load_explicit(&c->n, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&ns->refs, 1, memory_order_relaxed);
}

struct nvmg_ns *nvmg_subsys_get_ns(struct nvmg_subsys *s, uint32_t nsid)
{
	struct nvmg_ns_table *tab;
	struct nvmg_ns *ns;

	if (nvmg_reactor_self()) {
		/* Valid until this reactor's next quiescent point. */
		tab = atomic_load_explicit(&s->io_ns, memory_order_acquire);
		ns = tab ? table_find(tab->ns, tab->nr, nsid) : NULL;
		if (ns)
			ref_get(ns);
		return ns;
	}
	pthread_mutex_lock(&s->lock);
	ns = table_find(s->ns, s->nr_ns, nsid);
	if (ns)
		atomic_fetch_add_explicit(&ns->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&s->lock);
	return ns;
}

static void ns_free(struct nvmg_ns *ns)
{
	if (ns->bdev) {
		if (ns->bdev->ops->flush_sync) {
			int ret = ns->bdev->ops->flush_sync(ns->bdev);

			if (ret)
				log_err("namespace %u (%s): flush on close: %s", ns->nsid, ns->path,
					strerror(-ret));
		}
		ns->bdev->ops->close(ns->bdev);
	}
	for (unsigned i = 0; i < NVMG_STAT_SLOTS; i++) {
		free(atomic_load_explicit(&ns->stats[i], memory_order_acquire));
		free(atomic_load_explicit(&ns->inflight[i], memory_order_acquire));
	}
	nvmg_resv_free(ns->resv);
	free(ns->path);
	free(ns);
}

static void *ns_free_thread(void *arg)
{
	ns_free(arg);
	return NULL;
}

void nvmg_ns_put(struct nvmg_ns *ns)
{
	struct nvmg_ns_inflight *c = my_counter(ns);
	pthread_attr_t attr;
	pthread_t t;
	bool started = false;

	if (c) {
		/* It may go below zero (taken in refs or on another reactor):
		 * only the sum over all counters and refs means anything. */
		atomic_store_explicit(&c->n, atomic_load_explicit(&c->n, memory_order_relaxed) - 1,
				      memory_order_relaxed);
		return;
	}
	if (atomic_fetch_sub_explicit(&ns->refs, 1, memory_order_acq_rel) != 1)
		return;
	/* The last reference of a removed namespace can drop on a reactor,
	 * whose connections must not wait for the closing fdatasync. */
	if (nvmg_reactor_self() && !pthread_attr_init(&attr)) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		started = !pthread_create(&t, &attr, ns_free_thread, ns);
		pthread_attr_destroy(&attr);
	}
	if (!started)
		ns_free(ns);
}

/* Held in refs while a retiring namespace's counters are folded: a command
 * that sees it dying puts into refs at once, before the fold has added the
 * reference that command took in its reactor's counter. */
#define RETIRE_BIAS (1 << 30)

void nvmg_ns_retire(struct nvmg_target *t, struct nvmg_ns **nss, size_t n, struct nvmg_ns_table *old)
{
	/* From the next quiescent point on, every reference to these counts
	 * in refs: the per-reactor counters stop moving. */
	for (size_t i = 0; i < n; i++) {
		atomic_fetch_add_explicit(&nss[i]->refs, RETIRE_BIAS, memory_order_relaxed);
		atomic_store_explicit(&nss[i]->dying, true, memory_order_release);
	}
	if (t && (n || old))
		nvmg_reactor_synchronize(t->reactors, t->nr_reactors);
	free(old);
	for (size_t i = 0; i < n; i++) {
		struct nvmg_ns *ns = nss[i];
		long sum = 0;

		for (unsigned r = 0; r < NVMG_STAT_SLOTS; r++) {
			struct nvmg_ns_inflight *c =
				atomic_load_explicit(&ns->inflight[r], memory_order_acquire);

			if (c)
				sum += atomic_load_explicit(&c->n, memory_order_relaxed);
		}
		/* The table's own reference is still in refs: this cannot
		 * reach zero here. */
		atomic_fetch_add_explicit(&ns->refs, (int)sum - RETIRE_BIAS, memory_order_acq_rel);
		nvmg_ns_put(ns);
	}
}
