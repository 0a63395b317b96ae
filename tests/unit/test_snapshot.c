/* Unit tests for nvme/snapshot.c: what `nvmegate status`, `list` and
 * `stats` report is a copy of the running model -- namespaces by nsid,
 * controllers with their queues, ports with their exports, namespace
 * statistics summed over the reactors' slots -- that stays as it was when
 * the model moves on, and goes with one free (ASan checks the rest). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "tests/unit/check.h"
#include "conf/config.h"
#include "lib/reactor.h"
#include "nvme/core.h"
#include "nvme/snapshot.h"
#include "nvme/transport.h"
#include "nvme/subsys.h"

#define SUBNQN "nqn.2026-11.io.nvmegate:snap"
#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:host-a"

static char *hosts[] = { HOSTNQN };
static char *exports[] = { SUBNQN };
static int fake_enable(void *ctx, struct nvmg_port *p, char *err, size_t errlen)
{
	(void)ctx, (void)p, (void)err, (void)errlen;
	return 0;
}

static void fake_disable(void *ctx, struct nvmg_port *p)
{
	(void)ctx, (void)p;
}

/* Ports need a transport that serves them; this one opens no socket. */
static const struct nvmg_transport fake_tcp = { .name = "tcp", .enable_port = fake_enable,
						.disable_port = fake_disable };

/* One subsystem with namespaces 2 (4K blocks) and 1 (read-only), given
 * out of order; one IPv6 port exporting it. */
static int build(struct nvmg_target *t)
{
	struct nvmg_conf_ns ns[] = {
		{ .nsid = 2, .enable = true, .path = "mem:4M", .lba_size = 4096 },
		{ .nsid = 1, .enable = true, .readonly = true, .path = "mem:1M", .lba_size = 512 },
	};
	struct nvmg_conf_subsys s = { .nqn = SUBNQN, .allowed_hosts = hosts, .nr_allowed_hosts = 1,
				      .serial = "SN1", .model = "snapmodel", .ns = ns, .nr_ns = 2 };
	struct nvmg_conf_port p = { .portid = 7, .trtype = "tcp", .adrfam = NVMG_ADRFAM_IPV6,
				    .traddr = "::1", .trsvcid = 4420, .subsystems = exports,
				    .nr_subsystems = 1 };
	struct nvmg_conf conf = { .subsys = &s, .nr_subsys = 1, .ports = &p, .nr_ports = 1,
				  .max_queues_per_host = 16 };
	char err[256] = "";

	int ret = nvmg_target_build(t, &conf, err, sizeof(err));

	if (ret)
		fprintf(stderr, "test_snapshot: build: %s\n", err);
	return ret;
}

static struct nvmg_io_stats *slot(uint64_t reads, uint64_t lat_ns)
{
	struct nvmg_io_stats *st = calloc(1, sizeof(*st));

	st->read_cmds = reads;
	st->read_bytes = reads * 4096;
	nvmg_lat_record(&st->lat, lat_ns);
	return st;
}

static void check_model(const struct nvmg_snapshot *snap)
{
	const struct nvmg_snap_subsys *s = &snap->subsys[0];

	CHECK(snap->nr_subsys == 1);
	CHECK(!strcmp(s->nqn, SUBNQN));
	CHECK(!strcmp(s->serial, "SN1") && !strcmp(s->model, "snapmodel"));
	CHECK(!s->allow_any_host);
	CHECK(s->nr_allowed_hosts == 1 && !strcmp(s->allowed_hosts[0], HOSTNQN));

	CHECK(s->nr_ns == 2);
	CHECK(s->ns[0].nsid == 1 && s->ns[1].nsid == 2);
	CHECK(!strcmp(s->ns[0].path, "mem:1M") && !strcmp(s->ns[0].backend, "mem"));
	CHECK(s->ns[0].readonly && !s->ns[1].readonly);
	CHECK(s->ns[0].lba_size == 512 && s->ns[0].blocks == 2048);
	CHECK(s->ns[1].lba_size == 4096 && s->ns[1].blocks == 1024);

	CHECK(s->nr_ctrls == 2);
	CHECK(s->ctrls[0].portid == 7 && !strcmp(s->ctrls[0].hostnqn, HOSTNQN));
	CHECK(s->ctrls[0].nr_queues == 1);
	CHECK(s->ctrls[0].queues[0].qid == 0 && s->ctrls[0].queues[0].size == 32);
	CHECK(s->ctrls[0].queues[0].reactor == 3);
	CHECK(s->ctrls[0].queues[0].peer && !strcmp(s->ctrls[0].queues[0].peer, "[::1]:5555"));
	CHECK(s->ctrls[1].portid == -1 && !strcmp(s->ctrls[1].hostnqn, "local"));
	CHECK(s->ctrls[1].nr_queues == 1 && s->ctrls[1].queues[0].qid == 3);
	CHECK(!s->ctrls[1].queues[0].peer);
	CHECK(s->ctrls[0].cntlid != s->ctrls[1].cntlid);

	CHECK(!strcmp(snap->discovery.nqn, NVMG_DISC_NQN));
	CHECK(snap->discovery.nr_ns == 0 && snap->discovery.nr_ctrls == 0);

	CHECK(snap->nr_ports == 1);
	CHECK(snap->ports[0].portid == 7 && snap->ports[0].adrfam == AF_INET6);
	CHECK(!strcmp(snap->ports[0].traddr, "::1") && !strcmp(snap->ports[0].trsvcid, "4420"));
	CHECK(snap->ports[0].nr_subsys == 1 && !strcmp(snap->ports[0].subsys_nqns[0], SUBNQN));
}

int main(void)
{
	struct nvmg_target t;
	struct nvmg_reactor *r;
	struct nvmg_sq admin = { .qid = 0, .size = 32, .peer = "[::1]:5555" };
	struct nvmg_sq io = { .qid = 3, .size = 128 };
	struct nvmf_connect_data cd = { .hostnqn = HOSTNQN };
	struct nvmg_ctrl *remote, *local;
	struct nvmg_snapshot *snap;
	struct nvmg_target_counts n;
	struct nvmg_subsys *s;
	uint16_t status = 0;
	int err = 0;

	memset(&t, 0, sizeof(t));
	CHECK(nvmg_target_register_transport(&t, &fake_tcp, NULL) == 0);
	r = nvmg_reactor_create(3, &err);
	CHECK(r != NULL);
	if (!r || build(&t))
		return check_report("test_snapshot") | 1;
	t.nr_reactors = 1;
	s = t.subsys[0];
	admin.reactor = io.reactor = r;
	remote = nvmg_ctrl_create(&t, s, t.ports[0], &cd, 0, &status);
	local = nvmg_ctrl_create_local(&t, s, "local", &status);
	CHECK(remote && local);
	if (!remote || !local)
		return check_report("test_snapshot") | 1;
	CHECK(nvmg_ctrl_install_sq(remote, &admin) == 0);
	CHECK(nvmg_ctrl_install_sq(local, &io) == 0);
	/* Two reactors served namespace 1; the queue saw five writes. */
	atomic_store(&s->ns[0]->stats[0], slot(3, 1000));
	atomic_store(&s->ns[0]->stats[5], slot(4, 9000));
	io.stats.write_cmds = 5;

	snap = nvmg_target_snapshot(&t, 0);
	CHECK(snap != NULL);
	if (snap) {
		check_model(snap);
		CHECK(!snap->subsys[0].ns[0].stats && !snap->subsys[0].ctrls[1].queues[0].stats);
	}
	nvmg_snapshot_free(snap);

	snap = nvmg_target_snapshot(&t, NVMG_SNAP_STATS);
	CHECK(snap != NULL);
	if (snap) {
		const struct nvmg_io_stats *ns1 = snap->subsys[0].ns[0].stats;
		const struct nvmg_io_stats *q = snap->subsys[0].ctrls[1].queues[0].stats;

		check_model(snap);
		CHECK(ns1 && ns1->read_cmds == 7 && ns1->read_bytes == 7 * 4096);
		CHECK(ns1 && nvmg_lat_count(&ns1->lat) == 2 && ns1->lat.max_ns == 9000 &&
		      ns1->lat.sum_ns == 10000);
		CHECK(snap->subsys[0].ns[1].stats && snap->subsys[0].ns[1].stats->read_cmds == 0);
		CHECK(q && q->write_cmds == 5);
		/* A copy: the model moving on leaves it as it was. */
		io.stats.write_cmds = 6;
		s->ns[0]->stats[0]->read_cmds = 100;
		CHECK(q && q->write_cmds == 5);
		CHECK(ns1 && ns1->read_cmds == 7);
	}
	nvmg_snapshot_free(snap);

	nvmg_target_count(&t, &n);
	CHECK(n.subsystems == 1 && n.namespaces == 2 && n.controllers == 2 && n.ports == 1);
	CHECK(n.reactors == 1);

	nvmg_ctrl_destroy_local(local);
	nvmg_ctrl_destroy_local(remote);
	nvmg_target_count(&t, &n);
	CHECK(n.controllers == 0);
	nvmg_target_destroy(&t);
	nvmg_reactor_destroy(r);
	return check_report("test_snapshot");
}
