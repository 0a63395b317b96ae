/* "ports": [{"portid", "addr", "param", "subsystems", "referrals",
 * "ana_groups"}], nvmetcli's schema. */
#include "conf/sections.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <nvme/types.h>

#define INLINE_DATA_DEFAULT 16384
#define INLINE_DATA_MAX (1 << 20)

typedef struct nvmg_conf_port port_t;
typedef struct nvmg_conf_ana_group ana_t;

/* ---- addr ---- */

/* Secure channel, nvmetcli's spelling: "tsas" "tls1.3" turns TLS 1.3
 * (PSK, TP 8011) on, "none" (or "") leaves it off; "treq" "required" lets
 * only TLS in, "not required" both, "not specified" (or "") is nvmetcli's
 * default and means required on a TLS port, as the Linux target does. */
static const struct nvmg_dec_enum tsas_names = {
	"", " is not supported (only \"tls1.3\" or \"none\")",
	{ { "tls1.3", true }, { "none", false }, { "", false } },
};

static const struct nvmg_dec_enum treq_names = {
	"", " is not supported (only \"required\", \"not required\" or \"not specified\")",
	{ { "required", NVMG_TREQ_REQUIRED }, { "not required", NVMG_TREQ_NOT_REQUIRED },
	  { "not specified", NVMG_TREQ_UNSPECIFIED }, { "", NVMG_TREQ_UNSPECIFIED } },
};

/* After both: TLS required needs TLS offered; a TLS port with treq
 * unspecified requires it (never silently in the clear). */
static int check_tls(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		     void *base)
{
	port_t *port = base;

	(void)k, (void)v;
	if (port->treq == NVMG_TREQ_REQUIRED && !port->tls) {
		nvmg_dec_push_key(d, "treq");
		return nvmg_dec_fail(d, "\"required\" needs \"tsas\": \"tls1.3\"");
	}
	port->tls_required = port->tls && port->treq != NVMG_TREQ_NOT_REQUIRED;
	return 0;
}

/* A transport the daemon has registered, stored in lower case. */
static int dec_trtype(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		      void *base)
{
	char why[512], *lower = ((port_t *)base)->trtype;
	struct nvmg_dec_quoted q;
	const char *str = NULL;
	int ret = nvmg_dec_str(d, v, &str);

	(void)k;
	if (!ret && d->env && d->env->check_trtype &&
	    d->env->check_trtype(d->env->ctx, str, nvmg_dec_quote(&q, str), why, sizeof(why)))
		ret = nvmg_dec_fail(d, "%s", why);
	if (!ret && strlen(str) >= sizeof(((port_t *)base)->trtype))
		ret = nvmg_dec_fail(d, "transport %s is not supported", nvmg_dec_quote(&q, str));
	for (size_t i = 0; !ret && str[i]; i++)
		lower[i] = (char)tolower((unsigned char)str[i]);
	return ret;
}

/* A referral-style addr.portid is accepted when it agrees with portid. */
static bool same_portid(const struct nvmg_dec_key *k, struct json_object *v, const void *base)
{
	int64_t x;

	(void)k;
	return !nvmg_dec_parse_int(v, &x) && x == ((const port_t *)base)->portid;
}

/* traddr in its family (adrfam, else guessed from traddr), stored in its
 * canonical form so that reloads compare addresses, not spellings. */
static int canon_traddr(struct nvmg_dec *d, enum nvmg_adrfam *adrfam, char **traddr)
{
	char norm[INET6_ADDRSTRLEN];
	struct nvmg_dec_quoted q;
	uint8_t bin[16];
	int af;

	if (!json_object_object_get_ex(d->obj, "adrfam", NULL))
		*adrfam = strchr(*traddr, ':') ? NVMG_ADRFAM_IPV6 : NVMG_ADRFAM_IPV4;
	nvmg_dec_push_key(d, "traddr");
	af = *adrfam == NVMG_ADRFAM_IPV6 ? AF_INET6 : AF_INET;
	if (inet_pton(af, *traddr, bin) != 1)
		return nvmg_dec_fail(d, "%s is not an %s address", nvmg_dec_quote(&q, *traddr),
				     af == AF_INET6 ? "IPv6" : "IPv4");
	if (!inet_ntop(af, bin, norm, sizeof(norm)))
		return nvmg_dec_fail(d, "%s cannot be formatted", nvmg_dec_quote(&q, *traddr));
	free(*traddr);
	*traddr = NULL;
	return nvmg_dec_strdup(d, norm, traddr);
}

static int check_traddr(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
			void *base)
{
	port_t *port = base;

	(void)k, (void)v;
	return canon_traddr(d, &port->adrfam, &port->traddr);
}

static const struct nvmg_dec_enum adrfams = {
	"address family ", " is not supported (only ipv4 or ipv6)",
	{ { "ipv4", NVMG_ADRFAM_IPV4 }, { "ipv6", NVMG_ADRFAM_IPV6 } },
};

static const struct nvmg_dec_key addr_keys[] = {
	{ .key = "treq", .type = NVMG_DEC_ENUM, NVMG_DEC_FIELD(port_t, treq), .names = &treq_names },
	{ .key = "tsas", .type = NVMG_DEC_ENUM, NVMG_DEC_FIELD(port_t, tls), .names = &tsas_names },
	{ .type = NVMG_DEC_CHECK, .fn = check_tls },
	{ .key = "trtype", .type = NVMG_DEC_CUSTOM, .fn = dec_trtype, .flags = NVMG_DEC_REQUIRED },
	{ .key = "portid", .rule = NVMG_DEC_WARN, .harmless = same_portid,
	  .msg = "differs from portid, ignored" },
	{ .key = "traddr", .type = NVMG_DEC_STR, NVMG_DEC_FIELD(port_t, traddr),
	  .flags = NVMG_DEC_REQUIRED },
	{ .key = "adrfam", .type = NVMG_DEC_ENUM, NVMG_DEC_FIELD(port_t, adrfam), .names = &adrfams },
	{ .type = NVMG_DEC_CHECK, .fn = check_traddr },
	{ .key = "trsvcid", .type = NVMG_DEC_INT, NVMG_DEC_FIELD(port_t, trsvcid), .min = 1,
	  .max = 65535, .flags = NVMG_DEC_REQUIRED },
};
static const struct nvmg_dec_table addr = NVMG_DEC_TABLE(addr_keys);

/* ---- param ---- */

/* -1: nvmetcli's "transport default" */
static int inline_default(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	port_t *port = base;

	(void)d, (void)k;
	if (port->inline_data_size == UINT32_MAX)
		port->inline_data_size = INLINE_DATA_DEFAULT;
	return 0;
}

static const struct nvmg_dec_key param_keys[] = {
	/* -1 is the kernel's "let the transport choose" */
	{ .key = "max_queue_size", .rule = NVMG_DEC_WARN, .harmless = nvmg_dec_in_range,
	  .min = -1, .max = -1 },
	{ .key = "mdts", .rule = NVMG_DEC_WARN, .harmless = nvmg_dec_in_range, .min = -1, .max = -1 },
	{ .key = "pi_enable", .rule = NVMG_DEC_WARN, .harmless = nvmg_dec_false },
	{ .key = "inline_data_size", .type = NVMG_DEC_INT, NVMG_DEC_FIELD(port_t, inline_data_size),
	  .min = -1, .max = INLINE_DATA_MAX, .dflt = INLINE_DATA_DEFAULT, .check = inline_default },
};
static const struct nvmg_dec_table param = NVMG_DEC_TABLE(param_keys);

/* ---- referrals ---- */

typedef struct nvmg_conf_referral ref_t;

/* Our Discovery log only speaks of TCP: a referral to another transport's
 * discovery service would need that transport's address rules. */
static const struct nvmg_dec_enum ref_trtypes = {
	"transport ", " is not supported in a referral (only \"tcp\")",
	{ { "tcp", NVMF_TRTYPE_TCP } },
};

static int check_ref_traddr(struct nvmg_dec *d, const struct nvmg_dec_key *k,
			    struct json_object *v, void *base)
{
	ref_t *r = base;

	(void)k, (void)v;
	return canon_traddr(d, &r->adrfam, &r->traddr);
}

static const struct nvmg_dec_key ref_addr_keys[] = {
	{ .key = "trtype", .type = NVMG_DEC_ENUM, NVMG_DEC_FIELD(ref_t, trtype),
	  .names = &ref_trtypes, .flags = NVMG_DEC_REQUIRED },
	{ .key = "treq", .type = NVMG_DEC_ENUM, NVMG_DEC_FIELD(ref_t, treq), .names = &treq_names },
	{ .key = "tsas", .type = NVMG_DEC_ENUM, NVMG_DEC_FIELD(ref_t, tls), .names = &tsas_names },
	/* the referred service's port, which its Discovery entry carries */
	{ .key = "portid", .type = NVMG_DEC_INT, NVMG_DEC_FIELD(ref_t, portid), .min = 0,
	  .max = 65535 },
	{ .key = "traddr", .type = NVMG_DEC_STR, NVMG_DEC_FIELD(ref_t, traddr),
	  .flags = NVMG_DEC_REQUIRED },
	{ .key = "adrfam", .type = NVMG_DEC_ENUM, NVMG_DEC_FIELD(ref_t, adrfam), .names = &adrfams },
	{ .type = NVMG_DEC_CHECK, .fn = check_ref_traddr },
	{ .key = "trsvcid", .type = NVMG_DEC_INT, NVMG_DEC_FIELD(ref_t, trsvcid), .min = 1,
	  .max = 65535, .flags = NVMG_DEC_REQUIRED },
};
static const struct nvmg_dec_table ref_addr = NVMG_DEC_TABLE(ref_addr_keys);

/* Names are the configfs directory names: unique within the port. */
static int ref_name_unique(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	const ref_t *all = d->arr, *r = base;
	struct nvmg_dec_quoted q;

	(void)k;
	for (size_t j = 0; j < d->idx; j++)
		if (!strcmp(all[j].name, r->name))
			return nvmg_dec_fail(d, "duplicate referral %s (also referrals[%zu])",
					     nvmg_dec_quote(&q, r->name), j);
	return 0;
}

static const struct nvmg_dec_key ref_keys[] = {
	{ .key = "name", .type = NVMG_DEC_STR, NVMG_DEC_FIELD(ref_t, name),
	  .flags = NVMG_DEC_REQUIRED | NVMG_DEC_NONEMPTY, .check = ref_name_unique },
	/* nvmetcli writes "enable" (configfs' attribute); "enabled" is
	 * accepted as well. Absent: enabled, as a namespace is. */
	{ .key = "enable", .type = NVMG_DEC_BOOL, NVMG_DEC_FIELD(ref_t, enabled), .dflt = 1 },
	{ .key = "enabled", .type = NVMG_DEC_BOOL, NVMG_DEC_FIELD(ref_t, enabled), .dflt = 1 },
	{ .key = "addr", .type = NVMG_DEC_OBJECT, .sub = &ref_addr, .flags = NVMG_DEC_REQUIRED },
};
static const struct nvmg_dec_table ref_table = NVMG_DEC_TABLE(ref_keys);
static const struct nvmg_dec_key referral = { .type = NVMG_DEC_OBJECT, .sub = &ref_table };

/* ---- the port ---- */

static int port_subsys_check(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	const struct nvmg_conf *conf = d->root;
	char *const *nqns = d->arr;
	const char *nqn = *(char **)base;
	struct nvmg_dec_quoted q;
	size_t j;

	(void)k;
	for (j = 0; j < conf->nr_subsys; j++)
		if (!strcmp(conf->subsys[j].nqn, nqn))
			break;
	if (j == conf->nr_subsys)
		return nvmg_dec_fail(d, "unknown subsystem %s (not in subsystems)",
				     nvmg_dec_quote(&q, nqn));
	for (j = 0; j < d->idx; j++)
		if (!strcmp(nqns[j], nqn))
			return nvmg_dec_fail(d, "duplicate subsystem %s", nvmg_dec_quote(&q, nqn));
	return 0;
}

/* ---- ana_groups ---- */

/* nvmetcli's spellings (its ana_state names, the kernel's configfs ones). */
static const struct nvmg_dec_enum ana_states = {
	"ANA state ", " is not one of \"optimized\", \"non-optimized\", \"inaccessible\", "
	"\"persistent-loss\" or \"change\"",
	{ { "optimized", NVME_ANA_STATE_OPTIMIZED },
	  { "non-optimized", NVME_ANA_STATE_NONOPTIMIZED },
	  { "inaccessible", NVME_ANA_STATE_INACCESSIBLE },
	  { "persistent-loss", NVME_ANA_STATE_PERSISTENT_LOSS },
	  { "change", NVME_ANA_STATE_CHANGE } },
};

static const struct nvmg_dec_key ana_state_keys[] = {
	{ .key = "state", .type = NVMG_DEC_ENUM, NVMG_DEC_FIELD(ana_t, state), .names = &ana_states,
	  .dflt = NVME_ANA_STATE_OPTIMIZED },
};
static const struct nvmg_dec_table ana_state = NVMG_DEC_TABLE(ana_state_keys);

static int ana_grpid_unique(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	const ana_t *all = d->arr, *g = base;

	(void)k;
	for (size_t j = 0; j < d->idx; j++)
		if (all[j].grpid == g->grpid)
			return nvmg_dec_fail(d, "duplicate ANA group %u (also ana_groups[%zu])",
					     (unsigned)g->grpid, j);
	return 0;
}

static const struct nvmg_dec_key ana_group_keys[] = {
	{ .key = "grpid", .type = NVMG_DEC_INT, NVMG_DEC_FIELD(ana_t, grpid), .min = 1,
	  .max = NVMG_CONF_ANAGRPMAX, .flags = NVMG_DEC_REQUIRED, .check = ana_grpid_unique },
	{ .key = "ana", .type = NVMG_DEC_OBJECT, .sub = &ana_state },
};
static const struct nvmg_dec_table ana_group_table = NVMG_DEC_TABLE(ana_group_keys);
static const struct nvmg_dec_key ana_group = { .type = NVMG_DEC_OBJECT, .sub = &ana_group_table };

static bool port_defines(const port_t *p, uint32_t grpid)
{
	if (grpid == 1)
		return true; /* every port has the default group */
	for (size_t i = 0; i < p->nr_ana_groups; i++)
		if (p->ana_groups[i].grpid == grpid)
			return true;
	return false;
}

/* Whether the JSON of subsystems[i].namespaces[j] under root has key. */
static bool ns_has_key(struct json_object *root, size_t i, size_t j, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(root, "subsystems", &v) &&
	       (v = json_object_array_get_idx(v, i)) &&
	       json_object_object_get_ex(v, "namespaces", &v) &&
	       (v = json_object_array_get_idx(v, j)) && json_object_object_get_ex(v, key, NULL);
}

int nvmg_conf_ana_check(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
			void *base)
{
	const struct nvmg_conf *conf = base;

	(void)k, (void)v;
	for (size_t i = 0; i < conf->nr_subsys; i++) {
		const struct nvmg_conf_subsys *s = &conf->subsys[i];

		for (size_t j = 0; j < s->nr_ns; j++) {
			uint32_t g = s->ns[j].anagrpid;
			size_t p;

			for (p = 0; p < conf->nr_ports && !port_defines(&conf->ports[p], g); p++)
				;
			if (p < conf->nr_ports || g == 1)
				continue;
			nvmg_dec_push_key(d, "subsystems");
			nvmg_dec_push_idx(d, i);
			nvmg_dec_push_key(d, "namespaces");
			nvmg_dec_push_idx(d, j);
			/* the key the file used: nvmetcli's "ana_grpid" or "ana" */
			nvmg_dec_push_key(d, ns_has_key(d->obj, i, j, "ana_grpid") ? "ana_grpid"
										: "ana.grpid");
			return nvmg_dec_fail(d, "ANA group %u is defined on no port "
					     "(ports[].ana_groups)", (unsigned)g);
		}
	}
	return 0;
}

static void addr_bin(const port_t *p, int *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	*family = p->adrfam == NVMG_ADRFAM_IPV6 ? AF_INET6 : AF_INET;
	inet_pton(*family, p->traddr, addr); /* already validated */
}

static void fmt_addr(const port_t *p, char *buf, size_t len)
{
	if (p->adrfam == NVMG_ADRFAM_IPV6)
		snprintf(buf, len, "[%s]:%u", p->traddr, (unsigned)p->trsvcid);
	else
		snprintf(buf, len, "%s:%u", p->traddr, (unsigned)p->trsvcid);
}

/* One listener per address: no two ports on the same one, or under a
 * wildcard of the same family. */
static int port_unique(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		       void *base)
{
	const port_t *all = d->arr, *p = base;
	char sa[INET6_ADDRSTRLEN + 8], sb[INET6_ADDRSTRLEN + 8];
	static const uint8_t any[16];
	uint8_t a[16], b[16];
	int fa, fb;

	(void)k, (void)v;
	addr_bin(p, &fa, a);
	for (size_t j = 0; j < d->idx; j++) {
		const port_t *o = &all[j];
		size_t alen = fa == AF_INET6 ? 16 : 4;

		if (o->portid == p->portid) {
			nvmg_dec_push_key(d, "portid");
			return nvmg_dec_fail(d, "duplicate portid %u (also ports[%zu])",
					     (unsigned)p->portid, j);
		}
		addr_bin(o, &fb, b);
		if (fa != fb || o->trsvcid != p->trsvcid)
			continue;
		fmt_addr(p, sa, sizeof(sa));
		fmt_addr(o, sb, sizeof(sb));
		if (!memcmp(a, b, alen)) {
			nvmg_dec_push_key(d, "addr");
			return nvmg_dec_fail(d, "duplicate address %s (also ports[%zu])", sa, j);
		}
		/* A wildcard listener owns the port for every address of its family. */
		if (!memcmp(a, any, alen) || !memcmp(b, any, alen)) {
			nvmg_dec_push_key(d, "addr");
			return nvmg_dec_fail(d, "%s overlaps %s of ports[%zu]", sa, sb, j);
		}
	}
	return 0;
}

static const struct nvmg_dec_key port_subsys = { .type = NVMG_DEC_STR,
						 .check = port_subsys_check };

static const struct nvmg_dec_key port_keys[] = {
	{ .key = "portid", .type = NVMG_DEC_INT, NVMG_DEC_FIELD(port_t, portid), .min = 0,
	  .max = 65535, .flags = NVMG_DEC_REQUIRED },
	{ .key = "addr", .type = NVMG_DEC_OBJECT, .sub = &addr, .flags = NVMG_DEC_REQUIRED },
	{ .key = "param", .type = NVMG_DEC_OBJECT, .sub = &param },
	{ .key = "subsystems", .type = NVMG_DEC_ARRAY, NVMG_DEC_FIELD(port_t, subsystems),
	  .aux = offsetof(port_t, nr_subsystems), .elem = &port_subsys, .esize = sizeof(char *) },
	{ .key = "referrals", .type = NVMG_DEC_ARRAY, NVMG_DEC_FIELD(port_t, referrals),
	  .aux = offsetof(port_t, nr_referrals), .elem = &referral, .esize = sizeof(ref_t) },
	{ .key = "ana_groups", .type = NVMG_DEC_ARRAY, NVMG_DEC_FIELD(port_t, ana_groups),
	  .aux = offsetof(port_t, nr_ana_groups), .elem = &ana_group,
	  .esize = sizeof(ana_t) },
	{ .type = NVMG_DEC_CHECK, .fn = port_unique },
};
static const struct nvmg_dec_table port_table = NVMG_DEC_TABLE(port_keys);

const struct nvmg_dec_key nvmg_conf_port = { .type = NVMG_DEC_OBJECT, .sub = &port_table };
