/* Read-only control commands: status, list, stats. They walk subsystems
 * and controllers under the same locks the NVMe code takes, and read the
 * reactors' counters with relaxed loads, so I/O never waits for them. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "daemon/control_internal.h"
#include "daemon/daemon.h"
#include "lib/reactor.h"
#include "net/tcp.h"
#include "nvme/admin.h"
#include "nvme/core.h"

static struct json_object *jstr(const char *s)
{
	return json_object_new_string(s ? s : "");
}

static struct json_object *ju64(uint64_t v)
{
	return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

struct json_object *ctl_cmd_status(struct nvmg_daemon *d, struct json_object *req)
{
	struct nvmg_target *t = &d->target;
	struct json_object *r = json_object_new_object();
	size_t ctrls = 0, nss = 0;

	(void)req;
	pthread_rwlock_rdlock(&t->model_lock);
	for (size_t i = 0; i < t->nr_subsys; i++) {
		pthread_mutex_lock(&t->subsys[i]->lock);
		ctrls += t->subsys[i]->nr_ctrls;
		nss += t->subsys[i]->nr_ns;
		pthread_mutex_unlock(&t->subsys[i]->lock);
	}
	json_object_object_add(r, "version", jstr(NVMG_VERSION));
	json_object_object_add(r, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(r, "uptime_s", ju64((nvmg_now_ms() - d->start_ms) / 1000));
	json_object_object_add(r, "config", jstr(d->conf_file));
	json_object_object_add(r, "reactors", json_object_new_int((int)t->nr_reactors));
	json_object_object_add(r, "subsystems", ju64(t->nr_subsys));
	json_object_object_add(r, "ports", ju64(t->nr_ports));
	pthread_rwlock_unlock(&t->model_lock);
	json_object_object_add(r, "namespaces", ju64(nss));
	json_object_object_add(r, "controllers", ju64(ctrls));
	json_object_object_add(r, "connections", ju64(nvmg_tcp_live_conns(d->tcp)));
	pthread_mutex_lock(&d->lock);
	json_object_object_add(r, "changes", ju64(d->changes));
	pthread_mutex_unlock(&d->lock);
	return ctl_ok(r);
}

static struct json_object *strv(char *const *v, size_t n)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, jstr(v[i]));
	return a;
}

static const char *ctrl_port(const struct nvmg_ctrl *c, char *buf, size_t len)
{
	if (!c->port)
		return "local";
	snprintf(buf, len, "%u", c->port->portid);
	return buf;
}

/* One controller with its queues, optionally with their statistics. */
static struct json_object *ctrl_json(struct nvmg_ctrl *c, bool stats);

static struct json_object *io_stats_json(const struct nvmg_io_stats *st)
{
	static const struct {
		const char *name;
		double p;
	} pct[] = { { "p50", 0.5 }, { "p90", 0.9 }, { "p99", 0.99 }, { "p999", 0.999 } };
	struct json_object *o = json_object_new_object(), *lat = json_object_new_object();
	uint64_t n = nvmg_lat_count(&st->lat);

	json_object_object_add(o, "read_cmds", ju64(st->read_cmds));
	json_object_object_add(o, "write_cmds", ju64(st->write_cmds));
	json_object_object_add(o, "other_cmds", ju64(st->other_cmds));
	json_object_object_add(o, "read_bytes", ju64(st->read_bytes));
	json_object_object_add(o, "write_bytes", ju64(st->write_bytes));
	json_object_object_add(o, "errors", ju64(st->errors));
	json_object_object_add(lat, "count", ju64(n));
	json_object_object_add(lat, "sum_us", json_object_new_double((double)st->lat.sum_ns / 1000.0));
	for (size_t i = 0; i < sizeof(pct) / sizeof(pct[0]); i++)
		json_object_object_add(lat, pct[i].name,
				       json_object_new_double((double)nvmg_lat_percentile(&st->lat, pct[i].p) /
							      1000.0));
	json_object_object_add(lat, "max", json_object_new_double((double)st->lat.max_ns / 1000.0));
	json_object_object_add(o, "latency_us", lat);
	return o;
}

static struct json_object *ctrl_json(struct nvmg_ctrl *c, bool stats)
{
	struct json_object *o = json_object_new_object(), *qs = json_object_new_array();
	char port[16];

	json_object_object_add(o, "subsystem", jstr(c->subsys->nqn));
	json_object_object_add(o, "cntlid", json_object_new_int(c->cntlid));
	json_object_object_add(o, "host", jstr(c->hostnqn));
	json_object_object_add(o, "port", jstr(ctrl_port(c, port, sizeof(port))));
	/* Queues leave c->sqs under c->lock before their memory goes. */
	pthread_mutex_lock(&c->lock);
	for (unsigned qid = 0; qid <= NVMG_MAX_IO_QUEUES; qid++) {
		struct nvmg_sq *sq = c->sqs[qid];
		struct json_object *q;

		if (!sq)
			continue;
		q = json_object_new_object();
		json_object_object_add(q, "qid", json_object_new_int(qid));
		json_object_object_add(q, "size", json_object_new_int(sq->size));
		json_object_object_add(q, "reactor", json_object_new_int((int)nvmg_reactor_id(sq->reactor)));
		json_object_object_add(q, "peer", jstr(sq->peer ? sq->peer : "local"));
		json_object_object_add(q, "connected_s", ju64((nvmg_now_ms() - sq->connected_ms) / 1000));
		if (stats) {
			struct nvmg_io_stats *sum = calloc(1, sizeof(*sum));

			if (sum) {
				nvmg_io_stats_add(sum, &sq->stats);
				json_object_object_add(q, "stats", io_stats_json(sum));
				free(sum);
			}
		}
		json_object_array_add(qs, q);
	}
	pthread_mutex_unlock(&c->lock);
	json_object_object_add(o, "queues", qs);
	return o;
}

/* Every controller of s appended to a, referenced so they outlive the
 * walk without holding s->lock while taking their own locks. */
static void add_ctrls(struct json_object *a, struct nvmg_subsys *s, bool stats)
{
	size_t n;
	struct nvmg_ctrl **v = nvmg_subsys_ctrls(s, NULL, NULL, &n);

	for (size_t i = 0; i < n; i++) {
		json_object_array_add(a, ctrl_json(v[i], stats));
		nvmg_ctrl_put(v[i]);
	}
	free(v);
}

static struct json_object *ns_json(struct nvmg_ns *ns)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "nsid", ju64(ns->nsid));
	json_object_object_add(o, "path", jstr(ns->path));
	json_object_object_add(o, "backend", jstr(ns->bdev->ops->name));
	json_object_object_add(o, "lba_size", json_object_new_int(1 << ns->lba_shift));
	json_object_object_add(o, "blocks", ju64(nvmg_ns_nsze(ns)));
	json_object_object_add(o, "bytes", ju64(nvmg_ns_nsze(ns) << ns->lba_shift));
	json_object_object_add(o, "readonly", json_object_new_boolean(ns->readonly));
	return o;
}

/* The namespaces of s, referenced (free with put_nss). */
static struct nvmg_ns **get_nss(struct nvmg_subsys *s, size_t *n)
{
	struct nvmg_ns **v;

	pthread_mutex_lock(&s->lock);
	*n = s->nr_ns;
	v = calloc(*n + 1, sizeof(*v));
	for (size_t i = 0; v && i < *n; i++) {
		v[i] = s->ns[i];
		atomic_fetch_add(&v[i]->refs, 1);
	}
	pthread_mutex_unlock(&s->lock);
	if (!v)
		*n = 0;
	return v;
}

static void put_nss(struct nvmg_ns **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		nvmg_ns_put(v[i]);
	free(v);
}

struct json_object *ctl_cmd_list(struct nvmg_daemon *d, struct json_object *req)
{
	struct nvmg_target *t = &d->target;
	struct json_object *r = json_object_new_object(), *subs = json_object_new_array(),
			   *ports = json_object_new_array(), *ctrls = json_object_new_array();

	(void)req;
	/* The lists of subsystems and ports change only under model_lock. */
	pthread_rwlock_rdlock(&t->model_lock);
	for (size_t i = 0; i < t->nr_subsys; i++) {
		struct nvmg_subsys *s = t->subsys[i];
		struct json_object *o = json_object_new_object(), *nsa = json_object_new_array();
		size_t n;
		struct nvmg_ns **nss = get_nss(s, &n);

		json_object_object_add(o, "nqn", jstr(s->nqn));
		json_object_object_add(o, "serial", jstr(s->serial));
		json_object_object_add(o, "model", jstr(s->model));
		pthread_mutex_lock(&s->lock);
		json_object_object_add(o, "allow_any_host", json_object_new_boolean(s->allow_any_host));
		json_object_object_add(o, "allowed_hosts", strv(s->allowed_hosts, s->nr_allowed_hosts));
		pthread_mutex_unlock(&s->lock);
		for (size_t j = 0; j < n; j++)
			json_object_array_add(nsa, ns_json(nss[j]));
		put_nss(nss, n);
		json_object_object_add(o, "namespaces", nsa);
		json_object_array_add(subs, o);
		add_ctrls(ctrls, s, false);
	}
	add_ctrls(ctrls, t->discovery, false);
	for (size_t i = 0; i < t->nr_ports; i++) {
		struct nvmg_port *p = t->ports[i];
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "portid", json_object_new_int(p->portid));
		json_object_object_add(o, "adrfam", jstr(p->adrfam == AF_INET6 ? "ipv6" : "ipv4"));
		json_object_object_add(o, "traddr", jstr(p->traddr));
		json_object_object_add(o, "trsvcid", jstr(p->trsvcid));
		json_object_object_add(o, "subsystems", strv(p->subsys_nqns, p->nr_subsys));
		json_object_array_add(ports, o);
	}
	pthread_rwlock_unlock(&t->model_lock);
	json_object_object_add(r, "subsystems", subs);
	json_object_object_add(r, "ports", ports);
	json_object_object_add(r, "controllers", ctrls);
	return ctl_ok(r);
}

struct json_object *ctl_cmd_stats(struct nvmg_daemon *d, struct json_object *req)
{
	struct nvmg_target *t = &d->target;
	struct json_object *r = json_object_new_object(), *nsa = json_object_new_array(),
			   *ctrls = json_object_new_array();
	struct nvmg_io_stats *sum = malloc(sizeof(*sum));

	(void)req;
	if (!sum) {
		json_object_put(r);
		json_object_put(nsa);
		json_object_put(ctrls);
		return ctl_fail(false, "out of memory");
	}
	pthread_rwlock_rdlock(&t->model_lock);
	for (size_t i = 0; i < t->nr_subsys; i++) {
		struct nvmg_subsys *s = t->subsys[i];
		size_t n;
		struct nvmg_ns **nss = get_nss(s, &n);

		for (size_t j = 0; j < n; j++) {
			struct json_object *o = json_object_new_object();

			memset(sum, 0, sizeof(*sum));
			for (unsigned k = 0; k < NVMG_STAT_SLOTS; k++) {
				struct nvmg_io_stats *slot =
					atomic_load_explicit(&nss[j]->stats[k], memory_order_acquire);

				if (slot)
					nvmg_io_stats_add(sum, slot);
			}
			json_object_object_add(o, "subsystem", jstr(s->nqn));
			json_object_object_add(o, "nsid", ju64(nss[j]->nsid));
			json_object_object_add(o, "stats", io_stats_json(sum));
			json_object_array_add(nsa, o);
		}
		put_nss(nss, n);
		add_ctrls(ctrls, s, true);
	}
	pthread_rwlock_unlock(&t->model_lock);
	free(sum);
	json_object_object_add(r, "namespaces", nsa);
	json_object_object_add(r, "controllers", ctrls);
	return ctl_ok(r);
}
