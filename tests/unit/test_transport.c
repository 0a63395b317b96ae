/* Unit tests for nvme/transport.c: the target's registry of transports
 * (what a config's trtype may name, and the message when it names none)
 * and enabling the ports through their transports. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "tests/unit/check.h"
#include "nvme/core.h"

/* A port-serving transport that records its calls and refuses the port
 * numbered fail_portid. */
struct fake_ports {
	int enabled[8];
	int disabled[8];
	uint16_t fail_portid;
};

static int fake_enable(void *ctx, struct nvmg_port *p, char *err, size_t errlen)
{
	struct fake_ports *f = ctx;

	if (p->portid == f->fail_portid) {
		snprintf(err, errlen, "port %u: address in use", p->portid);
		return -EADDRINUSE;
	}
	f->enabled[p->portid]++;
	return 0;
}

static void fake_disable(void *ctx, struct nvmg_port *p)
{
	struct fake_ports *f = ctx;

	f->disabled[p->portid]++;
}

static const struct nvmg_transport tcp_like = {
	.name = "tcp",
	.enable_port = fake_enable,
	.disable_port = fake_disable,
};
static const struct nvmg_transport rdma_like = {
	.name = "rdma",
	.enable_port = fake_enable,
	.disable_port = fake_disable,
};
static const struct nvmg_transport local_like = { .name = "local" };
static const struct nvmg_transport other_tcp = { .name = "TCP" };

static void test_register_refuses_a_duplicate_name(void)
{
	struct nvmg_target *t = calloc(1, sizeof(*t));
	static const struct nvmg_transport more[] = { { .name = "a" }, { .name = "b" }, { .name = "c" } };
	int ctx;

	CHECK(nvmg_target_register_transport(t, &tcp_like, &ctx) == 0);
	/* Names are the config's trtype, which is case-insensitive. */
	CHECK(nvmg_target_register_transport(t, &tcp_like, NULL) == -EEXIST);
	CHECK(nvmg_target_register_transport(t, &other_tcp, NULL) == -EEXIST);
	CHECK(t->nr_transports == 1 && t->transports[0].ctx == &ctx);
	for (size_t i = 0; i < NVMG_MAX_TRANSPORTS - 1; i++)
		CHECK(nvmg_target_register_transport(t, &more[i], NULL) == 0);
	CHECK(nvmg_target_register_transport(t, &local_like, NULL) == -ENOSPC);
	free(t);
}

static void test_find_resolves_by_name(void)
{
	struct nvmg_target *t = calloc(1, sizeof(*t));
	const struct nvmg_transport_reg *r;
	int tcp_ctx, local_ctx;

	CHECK(nvmg_target_register_transport(t, &local_like, &local_ctx) == 0);
	CHECK(nvmg_target_register_transport(t, &tcp_like, &tcp_ctx) == 0);
	r = nvmg_target_find_transport(t, "tcp");
	CHECK(r && r->ops == &tcp_like && r->ctx == &tcp_ctx);
	r = nvmg_target_find_transport(t, "TCP");
	CHECK(r && r->ops == &tcp_like);
	r = nvmg_target_find_transport(t, "local");
	CHECK(r && r->ops == &local_like && r->ctx == &local_ctx);
	CHECK(nvmg_target_find_transport(t, "rdma") == NULL);
	CHECK(nvmg_target_find_transport(t, "tc") == NULL);
	free(t);
}

/* Only transports that serve ports may be a port's trtype; the message
 * lists them (tests/test_config.py checks it through the daemon). */
static void test_check_trtype_names_the_port_serving_ones(void)
{
	struct nvmg_target *t = calloc(1, sizeof(*t));
	char err[256] = "";

	CHECK(nvmg_target_check_trtype(t, "tcp", "\"tcp\"", err, sizeof(err)) == -EINVAL);
	CHECK(!strcmp(err, "transport \"tcp\" is not supported (no transport serves ports)"));
	CHECK(nvmg_target_register_transport(t, &tcp_like, NULL) == 0);
	CHECK(nvmg_target_register_transport(t, &local_like, NULL) == 0);
	CHECK(nvmg_target_check_trtype(t, "tcp", "\"tcp\"", err, sizeof(err)) == 0);
	CHECK(nvmg_target_check_trtype(t, "Tcp", "\"Tcp\"", err, sizeof(err)) == 0);
	CHECK(nvmg_target_check_trtype(t, "rdma", "\"rdma\"", err, sizeof(err)) == -EINVAL);
	CHECK(!strcmp(err, "transport \"rdma\" is not supported (only tcp)"));
	CHECK(nvmg_target_check_trtype(t, "local", "\"local\"", err, sizeof(err)) == -EINVAL);
	CHECK(!strcmp(err, "transport \"local\" is not supported (only tcp)"));
	CHECK(nvmg_target_register_transport(t, &rdma_like, NULL) == 0);
	CHECK(nvmg_target_check_trtype(t, "rdma", "\"rdma\"", err, sizeof(err)) == 0);
	CHECK(nvmg_target_check_trtype(t, "fc", "\"fc\"", err, sizeof(err)) == -EINVAL);
	CHECK(!strcmp(err, "transport \"fc\" is not supported (only tcp, rdma)"));
	free(t);
}

/* Start-up enables every port through its own transport; one that cannot
 * be enabled leaves none enabled. */
static void test_enable_ports_undoes_on_failure(void)
{
	struct nvmg_target *t = calloc(1, sizeof(*t));
	struct fake_ports tcp = { .fail_portid = 0 }, rdma = { .fail_portid = 3 };
	struct nvmg_port p[3];
	struct nvmg_port *ports[3] = { &p[0], &p[1], &p[2] };
	char err[128] = "";

	memset(p, 0, sizeof(p));
	for (unsigned i = 0; i < 3; i++)
		p[i].portid = (uint16_t)(i + 1);
	p[0].transport = &tcp_like;
	p[0].transport_ctx = &tcp;
	p[1].transport = &rdma_like;
	p[1].transport_ctx = &rdma;
	p[2].transport = &rdma_like;
	p[2].transport_ctx = &rdma;
	t->ports = ports;
	t->nr_ports = 2;
	CHECK(nvmg_target_enable_ports(t, err, sizeof(err)) == 0);
	CHECK(tcp.enabled[1] == 1 && rdma.enabled[2] == 1 && !tcp.enabled[2] && !rdma.enabled[1]);

	memset(&tcp, 0, sizeof(tcp));
	memset(&rdma, 0, sizeof(rdma));
	rdma.fail_portid = 3;
	t->nr_ports = 3;
	CHECK(nvmg_target_enable_ports(t, err, sizeof(err)) == -EADDRINUSE);
	CHECK(!strcmp(err, "port 3: address in use"));
	CHECK(tcp.enabled[1] == 1 && tcp.disabled[1] == 1);
	CHECK(rdma.enabled[2] == 1 && rdma.disabled[2] == 1);
	CHECK(!rdma.enabled[3] && !rdma.disabled[3]);
	free(t);
}

int main(void)
{
	test_register_refuses_a_duplicate_name();
	test_find_resolves_by_name();
	test_check_trtype_names_the_port_serving_ones();
	test_enable_ports_undoes_on_failure();
	return check_report("test_transport");
}
