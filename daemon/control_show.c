/* Read-only control commands: status, list, stats. They format JSON from
 * the core's snapshots (nvme/snapshot.h), which copy the model under the
 * core's own locks and read the reactors' counters with relaxed loads, so
 * I/O never waits for them. */
#include <json-c/json.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include "daemon/control_internal.h"
#include "daemon/daemon.h"
#include "lib/clock.h"
#include "net/tcp.h"
#include "nvme/admin.h"
#include "nvme/snapshot.h"

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
	struct json_object *r = json_object_new_object();
	struct nvmg_target_counts n;

	(void)req;
	nvmg_target_count(&d->target, &n);
	json_object_object_add(r, "version", jstr(NVMG_VERSION));
	json_object_object_add(r, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(r, "uptime_s", ju64((nvmg_now_ms() - d->start_ms) / 1000));
	json_object_object_add(r, "config", jstr(d->conf_file));
	json_object_object_add(r, "reactors", json_object_new_int((int)n.reactors));
	json_object_object_add(r, "subsystems", ju64(n.subsystems));
	json_object_object_add(r, "ports", ju64(n.ports));
	json_object_object_add(r, "namespaces", ju64(n.namespaces));
	json_object_object_add(r, "controllers", ju64(n.controllers));
	json_object_object_add(r, "connections", ju64(nvmg_tcp_live_conns(d->tcp)));
	json_object_object_add(r, "changes", ju64(ctl_changes(d)));
	return ctl_ok(r);
}

static struct json_object *strv(char *const *v, size_t n)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, jstr(v[i]));
	return a;
}

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

/* One controller of s with its queues, and their statistics if taken. */
static struct json_object *ctrl_json(const struct nvmg_snap_subsys *s, const struct nvmg_snap_ctrl *c)
{
	struct json_object *o = json_object_new_object(), *qs = json_object_new_array();
	uint64_t now = nvmg_now_ms();
	char port[16] = "local";

	if (c->portid >= 0)
		snprintf(port, sizeof(port), "%d", c->portid);
	json_object_object_add(o, "subsystem", jstr(s->nqn));
	json_object_object_add(o, "cntlid", json_object_new_int(c->cntlid));
	json_object_object_add(o, "host", jstr(c->hostnqn));
	json_object_object_add(o, "port", jstr(port));
	for (size_t i = 0; i < c->nr_queues; i++) {
		const struct nvmg_snap_queue *sq = &c->queues[i];
		struct json_object *q = json_object_new_object();

		json_object_object_add(q, "qid", json_object_new_int(sq->qid));
		json_object_object_add(q, "size", json_object_new_int(sq->size));
		json_object_object_add(q, "reactor", json_object_new_int((int)sq->reactor));
		json_object_object_add(q, "peer", jstr(sq->peer ? sq->peer : "local"));
		json_object_object_add(q, "connected_s", ju64((now - sq->connected_ms) / 1000));
		if (sq->stats)
			json_object_object_add(q, "stats", io_stats_json(sq->stats));
		json_object_array_add(qs, q);
	}
	json_object_object_add(o, "queues", qs);
	return o;
}

static void add_ctrls(struct json_object *a, const struct nvmg_snap_subsys *s)
{
	for (size_t i = 0; i < s->nr_ctrls; i++)
		json_object_array_add(a, ctrl_json(s, &s->ctrls[i]));
}

static struct json_object *ns_json(const struct nvmg_snap_ns *ns)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "nsid", ju64(ns->nsid));
	json_object_object_add(o, "path", jstr(ns->path));
	json_object_object_add(o, "backend", jstr(ns->backend));
	json_object_object_add(o, "lba_size", json_object_new_int((int)ns->lba_size));
	json_object_object_add(o, "blocks", ju64(ns->blocks));
	json_object_object_add(o, "bytes", ju64(ns->blocks * ns->lba_size));
	json_object_object_add(o, "unserved_bytes", ju64(ns->unserved_bytes));
	json_object_object_add(o, "readonly", json_object_new_boolean(ns->readonly));
	return o;
}

static struct json_object *port_json(const struct nvmg_snap_port *p)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "portid", json_object_new_int(p->portid));
	json_object_object_add(o, "adrfam", jstr(p->adrfam == AF_INET6 ? "ipv6" : "ipv4"));
	json_object_object_add(o, "traddr", jstr(p->traddr));
	json_object_object_add(o, "trsvcid", jstr(p->trsvcid));
	json_object_object_add(o, "subsystems", strv(p->subsys_nqns, p->nr_subsys));
	return o;
}

struct json_object *ctl_cmd_list(struct nvmg_daemon *d, struct json_object *req)
{
	struct nvmg_snapshot *snap = nvmg_target_snapshot(&d->target, 0);
	struct json_object *r, *subs, *ports, *ctrls;

	(void)req;
	if (!snap)
		return ctl_fail(false, "out of memory");
	r = json_object_new_object();
	subs = json_object_new_array();
	ports = json_object_new_array();
	ctrls = json_object_new_array();
	for (size_t i = 0; i < snap->nr_subsys; i++) {
		const struct nvmg_snap_subsys *s = &snap->subsys[i];
		struct json_object *o = json_object_new_object(), *nsa = json_object_new_array();

		json_object_object_add(o, "nqn", jstr(s->nqn));
		json_object_object_add(o, "serial", jstr(s->serial));
		json_object_object_add(o, "model", jstr(s->model));
		json_object_object_add(o, "allow_any_host", json_object_new_boolean(s->allow_any_host));
		json_object_object_add(o, "allowed_hosts", strv(s->allowed_hosts, s->nr_allowed_hosts));
		for (size_t j = 0; j < s->nr_ns; j++)
			json_object_array_add(nsa, ns_json(&s->ns[j]));
		json_object_object_add(o, "namespaces", nsa);
		json_object_array_add(subs, o);
		add_ctrls(ctrls, s);
	}
	add_ctrls(ctrls, &snap->discovery);
	for (size_t i = 0; i < snap->nr_ports; i++)
		json_object_array_add(ports, port_json(&snap->ports[i]));
	nvmg_snapshot_free(snap);
	json_object_object_add(r, "subsystems", subs);
	json_object_object_add(r, "ports", ports);
	json_object_object_add(r, "controllers", ctrls);
	return ctl_ok(r);
}

/* Per namespace and per queue; discovery controllers carry no I/O. */
struct json_object *ctl_cmd_stats(struct nvmg_daemon *d, struct json_object *req)
{
	struct nvmg_snapshot *snap = nvmg_target_snapshot(&d->target, NVMG_SNAP_STATS);
	struct json_object *r, *nsa, *ctrls, *tcp;
	uint64_t evicted;
	unsigned half_open;

	(void)req;
	if (!snap)
		return ctl_fail(false, "out of memory");
	r = json_object_new_object();
	nsa = json_object_new_array();
	ctrls = json_object_new_array();
	for (size_t i = 0; i < snap->nr_subsys; i++) {
		const struct nvmg_snap_subsys *s = &snap->subsys[i];

		for (size_t j = 0; j < s->nr_ns; j++) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "subsystem", jstr(s->nqn));
			json_object_object_add(o, "nsid", ju64(s->ns[j].nsid));
			json_object_object_add(o, "stats", io_stats_json(s->ns[j].stats));
			json_object_array_add(nsa, o);
		}
		add_ctrls(ctrls, s);
	}
	nvmg_snapshot_free(snap);
	json_object_object_add(r, "namespaces", nsa);
	json_object_object_add(r, "controllers", ctrls);
	/* Sockets not past Connect yet, and those evicted for newer ones: a
	 * steady count of evictions is a flood of idle sockets. */
	nvmg_tcp_half_open(d->tcp, &half_open, &evicted);
	tcp = json_object_new_object();
	json_object_object_add(tcp, "half_open", ju64(half_open));
	json_object_object_add(tcp, "half_open_evicted", ju64(evicted));
	json_object_object_add(r, "tcp", tcp);
	return ctl_ok(r);
}
