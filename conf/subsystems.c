/* "subsystems": [{"nqn", "attr", "allowed_hosts", "namespaces", "passthru"}],
 * nvmetcli's schema, with our "readonly" and "lba_size" on namespaces. */
#include "conf/sections.h"
#include "lib/parse.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define DISCOVERY_NQN "nqn.2014-08.org.nvmexpress.discovery"
#define CNTLID_LIMIT 0xFFEF      /* FFF0h..FFFFh are reserved controller IDs */
#define NSID_LIMIT 0xFFFFFFFEu   /* FFFFFFFFh is the broadcast NSID */
#define SERIAL_MAX 20
#define MODEL_MAX 40

typedef struct nvmg_conf_ns ns_t;
typedef struct nvmg_conf_subsys subsys_t;

/* ---- namespaces ---- */

static int dec_path(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		    void *base)
{
	ns_t *ns = base;
	struct nvmg_dec_quoted q;
	const char *str = NULL;
	int ret;

	(void)k;
	if ((ret = nvmg_dec_str(d, v, &str)))
		return ret;
	/* nvmetcli saves an unset path of a disabled namespace as "(null)" */
	if (!ns->enable && (!*str || !strcmp(str, "(null)")))
		return 0;
	if (!*str)
		return nvmg_dec_fail(d, "must not be empty");
	if (d->env && d->env->check_path) {
		char why[512];

		if (d->env->check_path(str, nvmg_dec_quote(&q, str), ns->lba_size, why,
				       sizeof(why)))
			return nvmg_dec_fail(d, "%s", why);
	}
	return nvmg_dec_strdup(d, str, &ns->path);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* uuid, nguid, eui64: size bytes at off, whether set at aux; msg their form. */
static int dec_id(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		  void *base, bool uuid)
{
	uint8_t *id = (uint8_t *)base + k->off;
	struct nvmg_dec_quoted q;
	const char *str = NULL;
	int ret;

	if ((ret = nvmg_dec_str(d, v, &str)))
		return ret;
	if (*str) {
		ret = uuid ? nvmg_parse_uuid(str, id) : nvmg_parse_hex_id(str, id, k->size);
		if (ret)
			return nvmg_dec_fail(d, "%s is not %s", nvmg_dec_quote(&q, str), k->msg);
	}
	/* all-zero is what nvmetcli saves for "not set" */
	*(bool *)((char *)base + k->aux) = !all_zero(id, k->size);
	return 0;
}

static int dec_uuid(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		    void *base)
{
	return dec_id(d, k, v, base, true);
}

static int dec_hex_id(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		      void *base)
{
	return dec_id(d, k, v, base, false);
}

static int dec_lba_size(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
			void *base)
{
	int64_t x;
	int ret = nvmg_dec_int(d, v, k->min, k->max, &x);

	if (ret)
		return ret;
	if (x != 512 && x != 4096)
		return nvmg_dec_fail(d, "%" PRId64 " is not 512 or 4096", x);
	((ns_t *)base)->lba_size = (uint32_t)x;
	return 0;
}

static int nsid_unique(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	const ns_t *all = d->arr, *ns = base;

	(void)k;
	for (size_t j = 0; j < d->idx; j++)
		if (all[j].nsid == ns->nsid)
			return nvmg_dec_fail(d, "duplicate nsid %" PRIu32, ns->nsid);
	return 0;
}

/* An enabled namespace has a device; hosts reject a subsystem whose
 * namespaces share an identifier. */
static int ns_device_check(struct nvmg_dec *d, const struct nvmg_dec_key *k,
			   struct json_object *v, void *base)
{
	const ns_t *all = d->arr, *ns = base;

	(void)k, (void)v;
	nvmg_dec_push_key(d, "device");
	if (ns->enable && !ns->path) {
		nvmg_dec_push_key(d, "path");
		return nvmg_dec_fail(d, "missing required key (an enabled namespace needs a path)");
	}
	for (size_t j = 0; j < d->idx; j++) {
		const ns_t *p = &all[j];
		const char *dup = NULL;

		if (ns->has_uuid && p->has_uuid && !memcmp(ns->uuid, p->uuid, 16))
			dup = "uuid";
		else if (ns->has_nguid && p->has_nguid && !memcmp(ns->nguid, p->nguid, 16))
			dup = "nguid";
		else if (ns->has_eui64 && p->has_eui64 && !memcmp(ns->eui64, p->eui64, 8))
			dup = "eui64";
		if (dup) {
			nvmg_dec_push_key(d, dup);
			return nvmg_dec_fail(d, "duplicate %s (also nsid %" PRIu32 ")", dup, p->nsid);
		}
	}
	return 0;
}

/* ana_grpid 0 is what nvmetcli saves from a kernel without ANA support:
 * the namespace is in the default group. */
static int ana_grpid_default(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	ns_t *ns = base;

	(void)d, (void)k;
	if (!ns->anagrpid)
		ns->anagrpid = 1;
	return 0;
}

/* The other spelling, "ana": {"grpid": "N"}: the same field, and the two
 * must agree when a file has both. */
static int dec_ns_ana(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		      void *base)
{
	static const char *const keys[] = { "grpid", NULL };
	ns_t *ns = base;
	struct json_object *x;
	int64_t id;
	int ret;

	(void)k;
	if (!json_object_is_type(v, json_type_object) || !nvmg_dec_only_keys(v, keys))
		return nvmg_dec_fail(d, "expected an object with only \"grpid\"");
	if (!json_object_object_get_ex(v, "grpid", &x))
		return 0;
	nvmg_dec_push_key(d, "grpid");
	if ((ret = nvmg_dec_int(d, x, 0, NVMG_CONF_ANAGRPMAX, &id)))
		return ret;
	if (!id)
		id = 1;
	if (json_object_object_get_ex(d->obj, "ana_grpid", NULL) && ns->anagrpid != id)
		return nvmg_dec_fail(d, "%u differs from ana_grpid %u", (unsigned)id,
				     (unsigned)ns->anagrpid);
	ns->anagrpid = (uint32_t)id;
	return 0;
}

static bool ns_resv_unset(const struct nvmg_dec_key *k, struct json_object *v, const void *base)
{
	static const char *const keys[] = { "enable", NULL };
	struct json_object *x;

	return nvmg_dec_only_keys(v, keys) &&
	       (!json_object_object_get_ex(v, "enable", &x) || nvmg_dec_false(k, x, base));
}

#define ID_ROW(name, has, parse, form) { .key = #name, .type = NVMG_DEC_CUSTOM, .fn = parse, \
	.off = offsetof(ns_t, name), .size = sizeof(((ns_t *)0)->name), \
	.aux = offsetof(ns_t, has), .msg = form }

static const struct nvmg_dec_key device_keys[] = {
	{ .key = "path", .type = NVMG_DEC_CUSTOM, .fn = dec_path },
	ID_ROW(uuid, has_uuid, dec_uuid, "a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"),
	ID_ROW(nguid, has_nguid, dec_hex_id, "an NGUID (32 hex digits, dashes allowed)"),
	ID_ROW(eui64, has_eui64, dec_hex_id, "an EUI-64 (16 hex digits, dashes allowed)"),
};
static const struct nvmg_dec_table device = NVMG_DEC_TABLE(device_keys);

#define WARN_ROW(name, pred, lo, hi) \
	{ .key = name, .rule = NVMG_DEC_WARN, .harmless = pred, .min = lo, .max = hi }

static const struct nvmg_dec_key ns_keys[] = {
	{ .key = "ana_grpid", .type = NVMG_DEC_INT, NVMG_DEC_FIELD(ns_t, anagrpid), .min = 0,
	  .max = NVMG_CONF_ANAGRPMAX, .dflt = 1, .check = ana_grpid_default },
	{ .key = "ana", .type = NVMG_DEC_CUSTOM, .fn = dec_ns_ana },
	WARN_ROW("buffered_io", nvmg_dec_false, 0, 0),
	WARN_ROW("p2pmem", nvmg_dec_false, 0, 0),
	WARN_ROW("resv_enable", nvmg_dec_false, 0, 0),
	WARN_ROW("resv", ns_resv_unset, 0, 0),
	{ .key = "nsid", .type = NVMG_DEC_INT, NVMG_DEC_FIELD(ns_t, nsid), .min = 1,
	  .max = NSID_LIMIT, .flags = NVMG_DEC_REQUIRED, .check = nsid_unique },
	{ .key = "enable", .type = NVMG_DEC_BOOL, NVMG_DEC_FIELD(ns_t, enable), .dflt = 1 },
	{ .key = "readonly", .type = NVMG_DEC_BOOL, NVMG_DEC_FIELD(ns_t, readonly) },
	{ .key = "lba_size", .type = NVMG_DEC_CUSTOM, .fn = dec_lba_size,
	  NVMG_DEC_FIELD(ns_t, lba_size), .min = 0, .max = INT64_MAX, .dflt = 512 },
	/* Its path is checked with lba_size: after it. */
	{ .key = "device", .type = NVMG_DEC_OBJECT, .sub = &device },
	{ .type = NVMG_DEC_CHECK, .fn = ns_device_check },
};
static const struct nvmg_dec_table ns_table = NVMG_DEC_TABLE(ns_keys);

/* ---- attr ---- */

/* "1.3" / "1.2.1" -> NVMe VS: major 31:16, minor 15:8, tertiary 7:0. */
static int parse_version(const char *s, uint32_t *vs)
{
	unsigned long part[3] = { 0, 0, 0 };
	int n = 0;

	for (const char *p = s;;) {
		char *end;

		if (*p < '0' || *p > '9' || n == 3)
			return -EINVAL;
		errno = 0;
		part[n++] = strtoul(p, &end, 10);
		if (errno)
			return -EINVAL;
		if (!*end)
			break;
		if (*end != '.')
			return -EINVAL;
		p = end + 1;
	}
	if (n < 2 || part[0] < 1 || part[0] > 2 || part[1] > 0xff || part[2] > 0xff)
		return -EINVAL;
	*vs = (uint32_t)(part[0] << 16 | part[1] << 8 | part[2]);
	return 0;
}

static int dec_version(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		       void *base)
{
	struct nvmg_dec_quoted q;

	(void)k;
	/* 1.3 written as a JSON number: json-c keeps the original text */
	if (!json_object_is_type(v, json_type_string) && !json_object_is_type(v, json_type_double))
		return nvmg_dec_fail(d, "expected a string");
	if (nvmg_dec_has_nul(v) ||
	    parse_version(json_object_get_string(v), &((subsys_t *)base)->version))
		return nvmg_dec_fail(d, "%s is not a supported NVMe version (1.0 to 2.x, as "
				     "MAJOR.MINOR or MAJOR.MINOR.TERTIARY)",
				     nvmg_dec_vtext(&q, v));
	return 0;
}

/* Identify Controller SN/MN are ASCII fields (NVMe Base 2.0, 1.5) */
static int check_ident(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	const char *str = *(char **)((char *)base + k->off);
	struct nvmg_dec_quoted q;

	if (strlen(str) > (size_t)k->max)
		return nvmg_dec_fail(d, "%s is longer than %zu characters", nvmg_dec_quote(&q, str),
				     (size_t)k->max);
	for (const char *p = str; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return nvmg_dec_fail(d, "%s has characters other than printable ASCII",
					     nvmg_dec_quote(&q, str));
	return 0;
}

static int cntlid_order(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
			void *base)
{
	const subsys_t *s = base;

	(void)k, (void)v;
	if (s->cntlid_min <= s->cntlid_max)
		return 0;
	nvmg_dec_push_key(d, json_object_object_get_ex(d->obj, "cntlid_max", NULL) ? "cntlid_max"
										    : "cntlid_min");
	return nvmg_dec_fail(d, "cntlid_min %u is greater than cntlid_max %u",
			     (unsigned)s->cntlid_min, (unsigned)s->cntlid_max);
}

static const struct nvmg_dec_key attr_keys[] = {
	WARN_ROW("pi_enable", nvmg_dec_false, 0, 0),
	WARN_ROW("qid_max", nvmg_dec_in_range, 128, 128), /* the kernel's default */
	WARN_ROW("firmware", NULL, 0, 0),
	WARN_ROW("ieee_oui", nvmg_dec_in_range, 0, 0),
	WARN_ROW("vendor_id", nvmg_dec_in_range, 0, 0),
	WARN_ROW("subsys_vendor_id", nvmg_dec_in_range, 0, 0),
	WARN_ROW("tbkas", nvmg_dec_false, 0, 0),
	{ .key = "allow_any_host", .type = NVMG_DEC_BOOL, NVMG_DEC_FIELD(subsys_t, allow_any_host) },
	{ .key = "serial", .type = NVMG_DEC_STR, NVMG_DEC_FIELD(subsys_t, serial),
	  .flags = NVMG_DEC_NONEMPTY, .max = SERIAL_MAX, .check = check_ident },
	{ .key = "model", .type = NVMG_DEC_STR, NVMG_DEC_FIELD(subsys_t, model),
	  .flags = NVMG_DEC_NONEMPTY, .max = MODEL_MAX, .check = check_ident },
	{ .key = "version", .type = NVMG_DEC_CUSTOM, .fn = dec_version,
	  NVMG_DEC_FIELD(subsys_t, version), .dflt = 0x20000 },
	{ .key = "cntlid_min", .type = NVMG_DEC_INT, NVMG_DEC_FIELD(subsys_t, cntlid_min),
	  .min = 1, .max = CNTLID_LIMIT, .dflt = 1 },
	{ .key = "cntlid_max", .type = NVMG_DEC_INT, NVMG_DEC_FIELD(subsys_t, cntlid_max),
	  .min = 1, .max = CNTLID_LIMIT, .dflt = CNTLID_LIMIT },
	{ .type = NVMG_DEC_CHECK, .fn = cntlid_order },
};
static const struct nvmg_dec_table attr = NVMG_DEC_TABLE(attr_keys);

/* ---- the subsystem ---- */

static int subsys_nqn_check(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	const subsys_t *all = d->arr, *s = base;
	struct nvmg_dec_quoted q;

	(void)k;
	if (!strcmp(s->nqn, DISCOVERY_NQN))
		return nvmg_dec_fail(d, "%s is the discovery subsystem NQN",
				     nvmg_dec_quote(&q, s->nqn));
	for (size_t j = 0; j < d->idx; j++)
		if (!strcmp(all[j].nqn, s->nqn))
			return nvmg_dec_fail(d, "duplicate NQN %s (also subsystems[%zu])",
					     nvmg_dec_quote(&q, s->nqn), j);
	return 0;
}

/* The kernel refuses this mix too: it is ambiguous who may connect. */
static int hosts_or_any(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	const subsys_t *s = base;

	(void)k;
	if (s->nr_allowed_hosts && s->allow_any_host)
		return nvmg_dec_fail(d, "must be empty when attr.allow_any_host is set");
	return 0;
}

static int allowed_host_unique(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	char *const *hosts = d->arr;
	struct nvmg_dec_quoted q;

	(void)k;
	for (size_t j = 0; j < d->idx; j++)
		if (!strcmp(hosts[j], *(char **)base))
			return nvmg_dec_fail(d, "duplicate host %s", nvmg_dec_quote(&q, hosts[j]));
	return 0;
}

/* nvmetcli saves [{"device": {"path": ...}, "enable": 0, ...}] for every
 * subsystem when the kernel has passthru support; only enabled ones matter. */
static bool passthru_off(const struct nvmg_dec_key *k, struct json_object *v, const void *base)
{
	struct json_object *x;

	if (json_object_is_type(v, json_type_object))
		return !json_object_object_get_ex(v, "enable", &x) || nvmg_dec_false(k, x, base);
	if (!json_object_is_type(v, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(v); i++)
		if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_object) ||
		    !passthru_off(k, json_object_array_get_idx(v, i), base))
			return false;
	return true;
}

static const struct nvmg_dec_key allowed_host = { .type = NVMG_DEC_NQN,
						  .check = allowed_host_unique };
static const struct nvmg_dec_key ns = { .type = NVMG_DEC_OBJECT, .sub = &ns_table };

static const struct nvmg_dec_key subsys_keys[] = {
	{ .key = "nqn", .type = NVMG_DEC_NQN, NVMG_DEC_FIELD(subsys_t, nqn),
	  .flags = NVMG_DEC_REQUIRED, .check = subsys_nqn_check },
	WARN_ROW("passthru", passthru_off, 0, 0),
	{ .key = "attr", .type = NVMG_DEC_OBJECT, .sub = &attr },
	{ .key = "allowed_hosts", .type = NVMG_DEC_ARRAY, NVMG_DEC_FIELD(subsys_t, allowed_hosts),
	  .aux = offsetof(subsys_t, nr_allowed_hosts), .elem = &allowed_host,
	  .esize = sizeof(char *), .check = hosts_or_any },
	{ .key = "namespaces", .type = NVMG_DEC_ARRAY, NVMG_DEC_FIELD(subsys_t, ns),
	  .aux = offsetof(subsys_t, nr_ns), .elem = &ns, .esize = sizeof(ns_t) },
};
static const struct nvmg_dec_table subsys_table = NVMG_DEC_TABLE(subsys_keys);

const struct nvmg_dec_key nvmg_conf_subsys = { .type = NVMG_DEC_OBJECT, .sub = &subsys_table };
