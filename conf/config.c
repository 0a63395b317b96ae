/* JSON config loader. The file is a superset of `nvmetcli save` output, so
 * values arrive as strings or JSON numbers alike, and nvmetcli keys we do not
 * implement are accepted with a warning instead of failing the load. Every
 * message names the full key path so the user can find the offending line. */
#include "conf/config.h"
#include "lib/parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DISCOVERY_NQN "nqn.2014-08.org.nvmexpress.discovery"
#define INLINE_DATA_DEFAULT 16384
#define INLINE_DATA_MAX (1 << 20)
#define CNTLID_LIMIT 0xFFEF      /* FFF0h..FFFFh are reserved controller IDs */
#define NSID_LIMIT 0xFFFFFFFEu   /* FFFFFFFFh is the broadcast NSID */
#define SERIAL_MAX 20
#define MODEL_MAX 40
#define CONF_FILE_MAX (16 << 20) /* far beyond any real config; bounds the read */

struct ctx {
	char *err;
	size_t errlen;
	const struct nvmg_conf_env *env;
	size_t plen;
	char path[512]; /* key path of the value being checked */
};

/* ---- key paths and messages ---- */

static size_t push_key(struct ctx *c, const char *key)
{
	size_t old = c->plen;

	if (c->plen && c->plen < sizeof(c->path) - 1)
		c->path[c->plen++] = '.';
	/* Unknown keys come from the user: keep messages on one line. */
	for (const char *p = key; *p && c->plen < sizeof(c->path) - 1; p++) {
		unsigned char ch = (unsigned char)*p;
		c->path[c->plen++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	c->path[c->plen] = '\0';
	return old;
}

static size_t push_idx(struct ctx *c, size_t i)
{
	size_t old = c->plen;
	int n = snprintf(c->path + c->plen, sizeof(c->path) - c->plen, "[%zu]", i);

	if (n > 0)
		c->plen += (size_t)n < sizeof(c->path) - c->plen ? (size_t)n
								 : sizeof(c->path) - c->plen - 1;
	return old;
}

static void pop(struct ctx *c, size_t old)
{
	c->plen = old;
	c->path[old] = '\0';
}

static int __attribute__((format(printf, 3, 4)))
fail_code(struct ctx *c, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "%s%s%s", c->path, c->plen ? ": " : "", msg);
	return code;
}

#define fail(c, ...) fail_code(c, -EINVAL, __VA_ARGS__)

static int oom(struct ctx *c)
{
	return fail_code(c, -ENOMEM, "out of memory");
}

static void __attribute__((format(printf, 2, 3))) warnf(struct ctx *c, const char *fmt, ...)
{
	char msg[512], line[sizeof(msg) + sizeof(c->path) + 2];
	va_list ap;

	if (!c->env || !c->env->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "%s: %s", c->path, msg);
	c->env->warn(c->env->ctx, line);
}

static void warn_key(struct ctx *c, const char *key, const char *what)
{
	size_t old = push_key(c, key);

	warnf(c, "%s", what);
	pop(c, old);
}

/* A user string, quoted, escaped and shortened for a one-line message. */
struct qbuf {
	char s[128];
};

static const char *quote(struct qbuf *q, const char *s)
{
	size_t o = 0;

	q->s[o++] = '"';
	for (; *s && o < 80; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f)
			o += (size_t)snprintf(q->s + o, sizeof(q->s) - o, "\\x%02x", ch);
		else if (ch == '"' || ch == '\\')
			o += (size_t)snprintf(q->s + o, sizeof(q->s) - o, "\\%c", ch);
		else
			q->s[o++] = (char)ch;
	}
	if (*s) {
		memcpy(q->s + o, "...", 3);
		o += 3;
	}
	q->s[o++] = '"';
	q->s[o] = '\0';
	return q->s;
}

/* ---- scalar parsing: strings ("16384") and JSON values (16384) alike ---- */

enum pv { PV_OK, PV_TYPE, PV_VALUE };

/* JSON strings may carry \u0000, which C strings would silently truncate. */
static bool str_has_nul(struct json_object *v)
{
	return json_object_is_type(v, json_type_string) &&
	       strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v);
}


/* Decimal or 0x-hex (kernel attributes such as ieee_oui print as 0x...). */
static int parse_i64_str(const char *s, int64_t *out)
{
	const char *p = s + (*s == '-');
	int base = 10;
	char *end;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	if (!((*p >= '0' && *p <= '9') || (base == 16 && nvmg_hexval(*p) >= 0)))
		return -EINVAL;
	errno = 0;
	unsigned long long u = strtoull(p, &end, base);
	if (*end || (errno && errno != ERANGE))
		return -EINVAL;
	/* Saturate like json-c does for big numbers: range checks reject them. */
	if (errno == ERANGE)
		u = ULLONG_MAX;
	if (*s == '-')
		*out = u > (unsigned long long)INT64_MAX ? INT64_MIN : -(int64_t)u;
	else
		*out = u > (unsigned long long)INT64_MAX ? INT64_MAX : (int64_t)u;
	return 0;
}

static enum pv parse_i64(struct json_object *v, int64_t *out)
{
	switch (json_object_get_type(v)) {
	case json_type_int:
		*out = json_object_get_int64(v); /* saturates; range checks reject that */
		return PV_OK;
	case json_type_string:
		if (str_has_nul(v) || parse_i64_str(json_object_get_string(v), out))
			return PV_VALUE;
		return PV_OK;
	default:
		return PV_TYPE;
	}
}

static enum pv parse_bool(struct json_object *v, bool *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on", "y", NULL };
	static const char *const no[] = { "0", "false", "no", "off", "n", NULL };
	const char *s;

	switch (json_object_get_type(v)) {
	case json_type_boolean:
		*out = json_object_get_boolean(v);
		return PV_OK;
	case json_type_int: {
		int64_t x = json_object_get_int64(v);

		if (x != 0 && x != 1)
			return PV_VALUE;
		*out = x;
		return PV_OK;
	}
	case json_type_string:
		s = json_object_get_string(v);
		for (int i = 0; yes[i]; i++)
			if (!strcasecmp(s, yes[i]))
				return *out = true, PV_OK;
		for (int i = 0; no[i]; i++)
			if (!strcasecmp(s, no[i]))
				return *out = false, PV_OK;
		return PV_VALUE;
	default:
		return PV_TYPE;
	}
}

/* A value for a message: strings quoted and escaped, other JSON as written. */
static const char *vtext(struct qbuf *q, struct json_object *v)
{
	if (json_object_is_type(v, json_type_string))
		return quote(q, json_object_get_string(v));
	snprintf(q->s, sizeof(q->s), "%.60s", json_object_get_string(v));
	return q->s;
}

static int get_int(struct ctx *c, struct json_object *v, int64_t min, int64_t max, int64_t *out)
{
	struct qbuf q;

	switch (parse_i64(v, out)) {
	case PV_TYPE:
		return fail(c, "expected an integer");
	case PV_VALUE:
		return fail(c, "%s is not an integer", vtext(&q, v));
	case PV_OK:
		break;
	}
	if (*out < min || *out > max)
		return fail(c, "%.40s is out of range (%" PRId64 "..%" PRId64 ")",
			    json_object_get_string(v), min, max);
	return 0;
}

static int get_bool(struct ctx *c, struct json_object *v, bool *out)
{
	struct qbuf q;

	switch (parse_bool(v, out)) {
	case PV_TYPE:
		return fail(c, "expected a boolean");
	case PV_VALUE:
		return fail(c, "%s is not a boolean (use true/false or 1/0)", vtext(&q, v));
	case PV_OK:
		break;
	}
	return 0;
}

static int get_str(struct ctx *c, struct json_object *v, const char **out)
{
	if (!json_object_is_type(v, json_type_string))
		return fail(c, "expected a string");
	if (str_has_nul(v))
		return fail(c, "contains a NUL character");
	*out = json_object_get_string(v);
	return 0;
}

static int want(struct ctx *c, struct json_object *v, enum json_type t)
{
	if (json_object_is_type(v, t))
		return 0;
	return fail(c, "expected %s", t == json_type_array ? "an array" : "an object");
}

static int dup_str(struct ctx *c, const char *s, char **out)
{
	*out = strdup(s);
	return *out ? 0 : oom(c);
}

/* Allocate a zeroed array of n entries; n == 0 leaves it NULL. */
static int alloc_array(struct ctx *c, size_t n, size_t size, void *out)
{
	void *p = NULL;

	if (n && !(p = calloc(n, size)))
		return oom(c);
	memcpy(out, &p, sizeof(p));
	return 0;
}

/* Whether an object holds only keys from the NULL-terminated list. */
static bool only_keys(struct json_object *obj, const char *const *keys)
{
	json_object_object_foreach(obj, k, val) {
		bool found = false;

		(void)val;
		for (size_t i = 0; keys[i] && !found; i++)
			found = !strcmp(k, keys[i]);
		if (!found)
			return false;
	}
	return true;
}

/* ---- nvmetcli keys we accept without implementing them ---- */

enum ign_kind {
	IGN_ALWAYS, /* always warn when present */
	IGN_FALSE,  /* harmless when a false boolean */
	IGN_RANGE,  /* harmless when an integer in lo..hi */
	IGN_STR,    /* harmless when one of the '|'-separated strings */
};

struct ign {
	const char *key;
	enum ign_kind kind;
	int64_t lo, hi;
	const char *strs;
};

static bool str_in_set(const char *s, const char *set)
{
	size_t n = strlen(s);

	for (const char *p = set;; p++) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);

		if (len == n && !strncasecmp(p, s, n))
			return true;
		if (!bar)
			return false;
		p = bar;
	}
}

static bool ign_harmless(struct json_object *v, const struct ign *ig)
{
	int64_t x;
	bool b;

	switch (ig->kind) {
	case IGN_FALSE:
		return parse_bool(v, &b) == PV_OK && !b;
	case IGN_RANGE:
		return parse_i64(v, &x) == PV_OK && x >= ig->lo && x <= ig->hi;
	case IGN_STR:
		return json_object_is_type(v, json_type_string) &&
		       str_in_set(json_object_get_string(v), ig->strs);
	case IGN_ALWAYS:
		break;
	}
	return false;
}

static const struct ign *ign_find(const struct ign *ign, const char *key)
{
	for (; ign && ign->key; ign++)
		if (!strcmp(ign->key, key))
			return ign;
	return NULL;
}

/* Reject keys that are neither known nor ignorable: catches typos. */
static int check_keys(struct ctx *c, struct json_object *obj, const char *const *known,
		      const struct ign *ign)
{
	json_object_object_foreach(obj, k, val) {
		bool found = ign_find(ign, k) != NULL;

		(void)val;
		for (size_t i = 0; known[i] && !found; i++)
			found = !strcmp(k, known[i]);
		if (!found) {
			push_key(c, k);
			return fail(c, "unknown key");
		}
	}
	return 0;
}

static void warn_ignored(struct ctx *c, struct json_object *obj, const struct ign *ign)
{
	json_object_object_foreach(obj, k, val) {
		const struct ign *ig = ign_find(ign, k);

		if (ig && !ign_harmless(val, ig))
			warn_key(c, k, "not implemented, ignored");
	}
}

/* Shared prologue of every object: type, key set, ignorable keys. */
static int open_obj(struct ctx *c, struct json_object *v, const char *const *known,
		    const struct ign *ign)
{
	int ret = want(c, v, json_type_object);

	if (!ret)
		ret = check_keys(c, v, known, ign);
	if (!ret)
		warn_ignored(c, v, ign);
	return ret;
}

static struct json_object *field(struct json_object *obj, const char *key, bool *present)
{
	struct json_object *v = NULL;

	*present = json_object_object_get_ex(obj, key, &v);
	return v;
}

/* ---- identifiers ---- */

static int check_nqn(struct ctx *c, struct json_object *v, const char **out)
{
	int ret = get_str(c, v, out);
	size_t len;

	if (ret)
		return ret;
	len = strlen(*out);
	if (!len)
		return fail(c, "must not be empty");
	if (len > NVMG_NQN_MAX)
		return fail(c, "NQN is %zu bytes long (at most %d)", len, NVMG_NQN_MAX);
	for (const char *p = *out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return fail(c, "NQN contains a control character");
	return 0;
}



static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}



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

/* ---- hosts ---- */

static bool dhchap_unset(struct json_object *v)
{
	static const char *const secrets[] = { "key", "ctrl_key" };
	struct json_object *x;

	if (!json_object_is_type(v, json_type_object))
		return false;
	/* hash and dhgroup always have values; only a secret enables DH-HMAC-CHAP */
	for (size_t i = 0; i < 2; i++)
		if (json_object_object_get_ex(v, secrets[i], &x) &&
		    !(json_object_is_type(x, json_type_string) && !json_object_get_string_len(x)))
			return false;
	return true;
}

static int parse_hosts(struct ctx *c, struct nvmg_conf *conf, struct json_object *arr)
{
	static const char *const known[] = { "nqn", "dhchap", NULL };
	size_t n;
	int ret;

	if ((ret = want(c, arr, json_type_array)))
		return ret;
	n = json_object_array_length(arr);
	if ((ret = alloc_array(c, n, sizeof(*conf->hosts), &conf->hosts)))
		return ret;
	conf->nr_hosts = n;
	for (size_t i = 0; i < n; i++) {
		struct json_object *h = json_object_array_get_idx(arr, i), *v;
		size_t old = push_idx(c, i), o2;
		const char *nqn = NULL;
		bool present;

		if ((ret = open_obj(c, h, known, NULL)))
			return ret;
		v = field(h, "dhchap", &present);
		if (present && !dhchap_unset(v)) {
			/* Refused: ignoring the key would admit the host unauthenticated. */
			push_key(c, "dhchap");
			return fail(c, "DH-HMAC-CHAP authentication is not supported yet");
		}
		v = field(h, "nqn", &present);
		o2 = push_key(c, "nqn");
		if (!present)
			return fail(c, "missing required key");
		if ((ret = check_nqn(c, v, &nqn)))
			return ret;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(conf->hosts[j], nqn))
				return fail(c, "duplicate host NQN (also hosts[%zu])", j);
		if ((ret = dup_str(c, nqn, &conf->hosts[i])))
			return ret;
		pop(c, o2);
		pop(c, old);
	}
	return 0;
}

/* ---- subsystems ---- */

static int parse_attr(struct ctx *c, struct nvmg_conf_subsys *s, struct json_object *attr)
{
	static const char *const known[] = { "allow_any_host", "serial", "model", "version",
					     "cntlid_min", "cntlid_max", NULL };
	static const struct ign ign[] = {
		{ "pi_enable", IGN_FALSE, 0, 0, NULL },
		{ "qid_max", IGN_RANGE, 128, 128, NULL }, /* the kernel's default */
		{ "firmware", IGN_ALWAYS, 0, 0, NULL },
		{ "ieee_oui", IGN_RANGE, 0, 0, NULL },
		{ "vendor_id", IGN_RANGE, 0, 0, NULL },
		{ "subsys_vendor_id", IGN_RANGE, 0, 0, NULL },
		{ "tbkas", IGN_FALSE, 0, 0, NULL },
		{ NULL, IGN_ALWAYS, 0, 0, NULL },
	};
	struct json_object *v;
	bool present;
	int64_t x;
	struct qbuf q;
	size_t old;
	int ret;

	if ((ret = open_obj(c, attr, known, ign)))
		return ret;

	v = field(attr, "allow_any_host", &present);
	if (present) {
		old = push_key(c, "allow_any_host");
		if ((ret = get_bool(c, v, &s->allow_any_host)))
			return ret;
		pop(c, old);
	}

	static const char *const ident_keys[] = { "serial", "model" };
	static const size_t ident_max[] = { SERIAL_MAX, MODEL_MAX };
	char **ident_dst[] = { &s->serial, &s->model };

	for (size_t i = 0; i < 2; i++) {
		const char *str = NULL;

		v = field(attr, ident_keys[i], &present);
		if (!present)
			continue;
		old = push_key(c, ident_keys[i]);
		if ((ret = get_str(c, v, &str)))
			return ret;
		if (!*str)
			return fail(c, "must not be empty");
		if (strlen(str) > ident_max[i])
			return fail(c, "%s is longer than %zu characters", quote(&q, str),
				    ident_max[i]);
		/* Identify Controller SN/MN are ASCII fields (NVMe Base 2.0, 1.5) */
		for (const char *p = str; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				return fail(c, "%s has characters other than printable ASCII",
					    quote(&q, str));
		if ((ret = dup_str(c, str, ident_dst[i])))
			return ret;
		pop(c, old);
	}

	v = field(attr, "version", &present);
	if (present) {
		old = push_key(c, "version");
		/* 1.3 written as a JSON number: json-c keeps the original text */
		if (!json_object_is_type(v, json_type_string) &&
		    !json_object_is_type(v, json_type_double))
			return fail(c, "expected a string");
		if (str_has_nul(v) || parse_version(json_object_get_string(v), &s->version))
			return fail(c, "%s is not a supported NVMe version (1.0 to 2.x, as "
				       "MAJOR.MINOR or MAJOR.MINOR.TERTIARY)",
				    vtext(&q, v));
		pop(c, old);
	}

	v = field(attr, "cntlid_min", &present);
	if (present) {
		old = push_key(c, "cntlid_min");
		if ((ret = get_int(c, v, 1, CNTLID_LIMIT, &x)))
			return ret;
		s->cntlid_min = (uint16_t)x;
		pop(c, old);
	}
	v = field(attr, "cntlid_max", &present);
	if (present) {
		old = push_key(c, "cntlid_max");
		if ((ret = get_int(c, v, 1, CNTLID_LIMIT, &x)))
			return ret;
		s->cntlid_max = (uint16_t)x;
		pop(c, old);
	}
	if (s->cntlid_min > s->cntlid_max) {
		old = push_key(c, present ? "cntlid_max" : "cntlid_min");
		return fail(c, "cntlid_min %u is greater than cntlid_max %u",
			    (unsigned)s->cntlid_min, (unsigned)s->cntlid_max);
	}
	return 0;
}

static int parse_device(struct ctx *c, struct nvmg_conf_ns *ns, struct json_object *dev)
{
	static const char *const known[] = { "path", "uuid", "nguid", "eui64", NULL };
	static const struct {
		const char *key, *form;
		size_t len;
	} ids[] = {
		{ "uuid", "a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", 16 },
		{ "nguid", "an NGUID (32 hex digits, dashes allowed)", 16 },
		{ "eui64", "an EUI-64 (16 hex digits, dashes allowed)", 8 },
	};
	uint8_t *dst[] = { ns->uuid, ns->nguid, ns->eui64 };
	bool *has[] = { &ns->has_uuid, &ns->has_nguid, &ns->has_eui64 };
	struct json_object *v;
	const char *str = NULL;
	struct qbuf q;
	bool present;
	size_t old;
	int ret;

	if ((ret = open_obj(c, dev, known, NULL)))
		return ret;

	v = field(dev, "path", &present);
	if (present) {
		old = push_key(c, "path");
		if ((ret = get_str(c, v, &str)))
			return ret;
		/* nvmetcli saves an unset path of a disabled namespace as "(null)" */
		if (!ns->enable && (!*str || !strcmp(str, "(null)")))
			str = NULL;
		else if (!*str)
			return fail(c, "must not be empty");
		if (str && c->env && c->env->check_path) {
			char why[512];

			if (c->env->check_path(str, quote(&q, str), ns->lba_size, why, sizeof(why)))
				return fail(c, "%s", why);
		}
		if (str && (ret = dup_str(c, str, &ns->path)))
			return ret;
		pop(c, old);
	}

	for (size_t i = 0; i < 3; i++) {
		v = field(dev, ids[i].key, &present);
		if (!present)
			continue;
		old = push_key(c, ids[i].key);
		if ((ret = get_str(c, v, &str)))
			return ret;
		if (*str) {
			ret = i == 0 ? nvmg_parse_uuid(str, dst[i]) : nvmg_parse_hex_id(str, dst[i], ids[i].len);
			if (ret)
				return fail(c, "%s is not %s", quote(&q, str), ids[i].form);
		}
		/* all-zero is what nvmetcli saves for "not set" */
		*has[i] = !all_zero(dst[i], ids[i].len);
		pop(c, old);
	}
	return 0;
}

/* nvmetcli's per-namespace "ana": {"grpid": "1"} and "resv": {"enable": "0"} */
static bool ns_group_harmless(struct json_object *v, const char *key, const struct ign *ig)
{
	const char *const keys[] = { key, NULL };
	struct json_object *x;

	if (!json_object_is_type(v, json_type_object) || !only_keys(v, keys))
		return false;
	return !json_object_object_get_ex(v, key, &x) || ign_harmless(x, ig);
}

static int parse_ns(struct ctx *c, struct nvmg_conf_subsys *s, size_t idx, struct json_object *o)
{
	static const char *const known[] = { "nsid", "enable", "device", "readonly", "lba_size",
					     "ana", "resv", NULL };
	static const struct ign ign[] = {
		/* 0: what nvmetcli saves when the kernel has no ANA support */
		{ "ana_grpid", IGN_RANGE, 0, 1, NULL },
		{ "buffered_io", IGN_FALSE, 0, 0, NULL },
		{ "p2pmem", IGN_FALSE, 0, 0, NULL },
		{ "resv_enable", IGN_FALSE, 0, 0, NULL },
		{ NULL, IGN_ALWAYS, 0, 0, NULL },
	};
	static const struct ign grpid = { "grpid", IGN_RANGE, 0, 1, NULL };
	static const struct ign resv = { "enable", IGN_FALSE, 0, 0, NULL };
	struct nvmg_conf_ns *ns = &s->ns[idx];
	struct json_object *v;
	bool present;
	size_t old;
	int64_t x;
	int ret;

	ns->enable = true;
	ns->lba_size = 512;
	if ((ret = open_obj(c, o, known, ign)))
		return ret;
	v = field(o, "ana", &present);
	if (present && !ns_group_harmless(v, "grpid", &grpid))
		warn_key(c, "ana", "not implemented, ignored");
	v = field(o, "resv", &present);
	if (present && !ns_group_harmless(v, "enable", &resv))
		warn_key(c, "resv", "not implemented, ignored");

	v = field(o, "nsid", &present);
	old = push_key(c, "nsid");
	if (!present)
		return fail(c, "missing required key");
	if ((ret = get_int(c, v, 1, NSID_LIMIT, &x)))
		return ret;
	ns->nsid = (uint32_t)x;
	for (size_t j = 0; j < idx; j++)
		if (s->ns[j].nsid == ns->nsid)
			return fail(c, "duplicate nsid %" PRIu32, ns->nsid);
	pop(c, old);

	v = field(o, "enable", &present);
	if (present) {
		old = push_key(c, "enable");
		if ((ret = get_bool(c, v, &ns->enable)))
			return ret;
		pop(c, old);
	}
	v = field(o, "readonly", &present);
	if (present) {
		old = push_key(c, "readonly");
		if ((ret = get_bool(c, v, &ns->readonly)))
			return ret;
		pop(c, old);
	}
	v = field(o, "lba_size", &present);
	if (present) {
		old = push_key(c, "lba_size");
		if ((ret = get_int(c, v, 0, INT64_MAX, &x)))
			return ret;
		if (x != 512 && x != 4096)
			return fail(c, "%" PRId64 " is not 512 or 4096", x);
		ns->lba_size = (uint32_t)x;
		pop(c, old);
	}

	v = field(o, "device", &present);
	old = push_key(c, "device");
	if (present && (ret = parse_device(c, ns, v)))
		return ret;
	if (ns->enable && !ns->path) {
		push_key(c, "path");
		return fail(c, "missing required key (an enabled namespace needs a path)");
	}
	/* Hosts reject a subsystem whose namespaces share an identifier. */
	for (size_t j = 0; j < idx; j++) {
		const struct nvmg_conf_ns *p = &s->ns[j];
		const char *dup = NULL;

		if (ns->has_uuid && p->has_uuid && !memcmp(ns->uuid, p->uuid, 16))
			dup = "uuid";
		else if (ns->has_nguid && p->has_nguid && !memcmp(ns->nguid, p->nguid, 16))
			dup = "nguid";
		else if (ns->has_eui64 && p->has_eui64 && !memcmp(ns->eui64, p->eui64, 8))
			dup = "eui64";
		if (dup) {
			push_key(c, dup);
			return fail(c, "duplicate %s (also nsid %" PRIu32 ")", dup, p->nsid);
		}
	}
	pop(c, old);
	return 0;
}

/* nvmetcli saves [{"device": {"path": ...}, "enable": 0, ...}] for every
 * subsystem when the kernel has passthru support; only enabled ones matter. */
static bool passthru_harmless(struct json_object *v)
{
	static const struct ign off = { "enable", IGN_FALSE, 0, 0, NULL };
	struct json_object *x;

	if (json_object_is_type(v, json_type_object))
		return !json_object_object_get_ex(v, "enable", &x) || ign_harmless(x, &off);
	if (!json_object_is_type(v, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(v); i++)
		if (!passthru_harmless(json_object_array_get_idx(v, i)) ||
		    !json_object_is_type(json_object_array_get_idx(v, i), json_type_object))
			return false;
	return true;
}

static int parse_one_subsys(struct ctx *c, struct nvmg_conf *conf, size_t idx,
			    struct json_object *o)
{
	static const char *const known[] = { "nqn", "attr", "allowed_hosts", "namespaces",
					     "passthru", NULL };
	struct nvmg_conf_subsys *s = &conf->subsys[idx];
	struct json_object *v;
	const char *str = NULL;
	struct qbuf q;
	bool present;
	size_t old, n;
	int ret;

	s->version = 0x20000;
	s->cntlid_min = 1;
	s->cntlid_max = CNTLID_LIMIT;
	if ((ret = open_obj(c, o, known, NULL)))
		return ret;

	v = field(o, "nqn", &present);
	old = push_key(c, "nqn");
	if (!present)
		return fail(c, "missing required key");
	if ((ret = check_nqn(c, v, &str)))
		return ret;
	if (!strcmp(str, DISCOVERY_NQN))
		return fail(c, "%s is the discovery subsystem NQN", quote(&q, str));
	for (size_t j = 0; j < idx; j++)
		if (!strcmp(conf->subsys[j].nqn, str))
			return fail(c, "duplicate NQN %s (also subsystems[%zu])", quote(&q, str), j);
	if ((ret = dup_str(c, str, &s->nqn)))
		return ret;
	pop(c, old);

	v = field(o, "passthru", &present);
	if (present && !passthru_harmless(v))
		warn_key(c, "passthru", "not implemented, ignored");

	v = field(o, "attr", &present);
	if (present) {
		old = push_key(c, "attr");
		if ((ret = parse_attr(c, s, v)))
			return ret;
		pop(c, old);
	}

	v = field(o, "allowed_hosts", &present);
	if (present) {
		old = push_key(c, "allowed_hosts");
		if ((ret = want(c, v, json_type_array)))
			return ret;
		n = json_object_array_length(v);
		/* The kernel refuses this mix too: it is ambiguous who may connect. */
		if (n && s->allow_any_host)
			return fail(c, "must be empty when attr.allow_any_host is set");
		if ((ret = alloc_array(c, n, sizeof(*s->allowed_hosts), &s->allowed_hosts)))
			return ret;
		s->nr_allowed_hosts = n;
		for (size_t i = 0; i < n; i++) {
			size_t o2 = push_idx(c, i);

			if ((ret = check_nqn(c, json_object_array_get_idx(v, i), &str)))
				return ret;
			for (size_t j = 0; j < i; j++)
				if (!strcmp(s->allowed_hosts[j], str))
					return fail(c, "duplicate host %s", quote(&q, str));
			if ((ret = dup_str(c, str, &s->allowed_hosts[i])))
				return ret;
			pop(c, o2);
		}
		pop(c, old);
	}

	v = field(o, "namespaces", &present);
	if (present) {
		old = push_key(c, "namespaces");
		if ((ret = want(c, v, json_type_array)))
			return ret;
		n = json_object_array_length(v);
		if ((ret = alloc_array(c, n, sizeof(*s->ns), &s->ns)))
			return ret;
		s->nr_ns = n;
		for (size_t i = 0; i < n; i++) {
			size_t o2 = push_idx(c, i);

			if ((ret = parse_ns(c, s, i, json_object_array_get_idx(v, i))))
				return ret;
			pop(c, o2);
		}
		pop(c, old);
	}
	return 0;
}

static int parse_subsystems(struct ctx *c, struct nvmg_conf *conf, struct json_object *arr)
{
	size_t n;
	int ret;

	if ((ret = want(c, arr, json_type_array)))
		return ret;
	n = json_object_array_length(arr);
	if ((ret = alloc_array(c, n, sizeof(*conf->subsys), &conf->subsys)))
		return ret;
	conf->nr_subsys = n;
	for (size_t i = 0; i < n; i++) {
		size_t old = push_idx(c, i);

		if ((ret = parse_one_subsys(c, conf, i, json_object_array_get_idx(arr, i))))
			return ret;
		pop(c, old);
	}
	return 0;
}

/* ---- ports ---- */

/* nvmetcli saves the kernel's default ANA group 1 (optimized) on every port. */
static bool ana_groups_harmless(struct json_object *arr)
{
	static const char *const gkeys[] = { "grpid", "ana", NULL };
	static const char *const akeys[] = { "state", NULL };
	struct json_object *g, *x;
	int64_t id;

	if (json_object_array_length(arr) == 0)
		return true;
	if (json_object_array_length(arr) != 1)
		return false;
	g = json_object_array_get_idx(arr, 0);
	if (!json_object_is_type(g, json_type_object) || !only_keys(g, gkeys) ||
	    !json_object_object_get_ex(g, "grpid", &x) || parse_i64(x, &id) != PV_OK || id != 1)
		return false;
	if (!json_object_object_get_ex(g, "ana", &g))
		return true;
	if (!json_object_is_type(g, json_type_object) || !only_keys(g, akeys))
		return false;
	return !json_object_object_get_ex(g, "state", &x) ||
	       (json_object_is_type(x, json_type_string) &&
		!strcasecmp(json_object_get_string(x), "optimized"));
}

struct sockaddr_bin {
	int family;
	uint8_t addr[16];
};

static void addr_bin(const struct nvmg_conf_port *p, struct sockaddr_bin *b)
{
	memset(b, 0, sizeof(*b));
	b->family = p->adrfam == NVMG_ADRFAM_IPV6 ? AF_INET6 : AF_INET;
	inet_pton(b->family, p->traddr, b->addr); /* already validated */
}

static void fmt_addr(const struct nvmg_conf_port *p, char *buf, size_t len)
{
	if (p->adrfam == NVMG_ADRFAM_IPV6)
		snprintf(buf, len, "[%s]:%u", p->traddr, (unsigned)p->trsvcid);
	else
		snprintf(buf, len, "%s:%u", p->traddr, (unsigned)p->trsvcid);
}

static int parse_addr(struct ctx *c, struct nvmg_conf_port *port, struct json_object *addr)
{
	static const char *const known[] = { "trtype", "adrfam", "traddr", "trsvcid", "portid",
					     NULL };
	static const struct ign ign[] = {
		{ "treq", IGN_STR, 0, 0, "not specified|" },
		{ "tsas", IGN_STR, 0, 0, "none|" },
		{ NULL, IGN_ALWAYS, 0, 0, NULL },
	};
	struct json_object *v;
	const char *str = NULL, *traddr = NULL;
	uint8_t bin[16];
	char norm[INET6_ADDRSTRLEN];
	struct qbuf q;
	bool present;
	size_t old;
	int64_t x;
	int ret, af;

	if ((ret = open_obj(c, addr, known, ign)))
		return ret;
	/* Security settings are refused, not ignored: silently serving a port
	 * in the clear that the user asked to protect would be worse. */
	v = field(addr, "treq", &present);
	if (present && json_object_is_type(v, json_type_string) &&
	    strcasestr(json_object_get_string(v), "required") &&
	    !strcasestr(json_object_get_string(v), "not required")) {
		old = push_key(c, "treq");
		return fail(c, "secure channel (TLS) is not supported yet");
	}
	v = field(addr, "tsas", &present);
	if (present && json_object_is_type(v, json_type_string) && json_object_get_string_len(v) &&
	    strcasecmp(json_object_get_string(v), "none")) {
		old = push_key(c, "tsas");
		return fail(c, "secure channel (TLS) is not supported yet");
	}

	v = field(addr, "trtype", &present);
	old = push_key(c, "trtype");
	if (!present)
		return fail(c, "missing required key");
	if ((ret = get_str(c, v, &str)))
		return ret;
	if (c->env && c->env->check_trtype) {
		char why[512];

		if (c->env->check_trtype(c->env->ctx, str, quote(&q, str), why, sizeof(why)))
			return fail(c, "%s", why);
	}
	if (strlen(str) >= sizeof(port->trtype))
		return fail(c, "transport %s is not supported", quote(&q, str));
	for (size_t k = 0; str[k]; k++)
		port->trtype[k] = (char)tolower((unsigned char)str[k]);
	pop(c, old);

	/* A referral-style addr.portid is accepted when it agrees with portid. */
	v = field(addr, "portid", &present);
	if (present && !(parse_i64(v, &x) == PV_OK && x == port->portid))
		warn_key(c, "portid", "differs from portid, ignored");

	v = field(addr, "traddr", &present);
	old = push_key(c, "traddr");
	if (!present)
		return fail(c, "missing required key");
	if ((ret = get_str(c, v, &traddr)))
		return ret;
	pop(c, old);

	v = field(addr, "adrfam", &present);
	old = push_key(c, "adrfam");
	if (present) {
		if ((ret = get_str(c, v, &str)))
			return ret;
		if (!strcasecmp(str, "ipv4"))
			port->adrfam = NVMG_ADRFAM_IPV4;
		else if (!strcasecmp(str, "ipv6"))
			port->adrfam = NVMG_ADRFAM_IPV6;
		else
			return fail(c, "address family %s is not supported (only ipv4 or ipv6)",
				    quote(&q, str));
	} else {
		port->adrfam = strchr(traddr, ':') ? NVMG_ADRFAM_IPV6 : NVMG_ADRFAM_IPV4;
	}
	pop(c, old);

	old = push_key(c, "traddr");
	af = port->adrfam == NVMG_ADRFAM_IPV6 ? AF_INET6 : AF_INET;
	if (inet_pton(af, traddr, bin) != 1)
		return fail(c, "%s is not an %s address", quote(&q, traddr),
			    af == AF_INET6 ? "IPv6" : "IPv4");
	/* Store the canonical form so reloads compare addresses, not spellings. */
	if (!inet_ntop(af, bin, norm, sizeof(norm)))
		return fail(c, "%s cannot be formatted", quote(&q, traddr));
	if ((ret = dup_str(c, norm, &port->traddr)))
		return ret;
	pop(c, old);

	v = field(addr, "trsvcid", &present);
	old = push_key(c, "trsvcid");
	if (!present)
		return fail(c, "missing required key");
	if ((ret = get_int(c, v, 1, 65535, &x)))
		return ret;
	port->trsvcid = (uint16_t)x;
	pop(c, old);
	return 0;
}

static int parse_param(struct ctx *c, struct nvmg_conf_port *port, struct json_object *param)
{
	static const char *const known[] = { "inline_data_size", NULL };
	static const struct ign ign[] = {
		/* -1 is the kernel's "let the transport choose" */
		{ "max_queue_size", IGN_RANGE, -1, -1, NULL },
		{ "mdts", IGN_RANGE, -1, -1, NULL },
		{ "pi_enable", IGN_FALSE, 0, 0, NULL },
		{ NULL, IGN_ALWAYS, 0, 0, NULL },
	};
	struct json_object *v;
	bool present;
	size_t old;
	int64_t x;
	int ret;

	if ((ret = open_obj(c, param, known, ign)))
		return ret;
	v = field(param, "inline_data_size", &present);
	if (present) {
		old = push_key(c, "inline_data_size");
		if ((ret = get_int(c, v, -1, INLINE_DATA_MAX, &x)))
			return ret;
		/* -1: nvmetcli's "transport default" */
		port->inline_data_size = x < 0 ? INLINE_DATA_DEFAULT : (uint32_t)x;
		pop(c, old);
	}
	return 0;
}

static int check_port_unique(struct ctx *c, struct nvmg_conf *conf, size_t idx)
{
	const struct nvmg_conf_port *p = &conf->ports[idx];
	struct sockaddr_bin a, b;
	char sa[INET6_ADDRSTRLEN + 8], sb[INET6_ADDRSTRLEN + 8];
	static const uint8_t any[16];

	addr_bin(p, &a);
	for (size_t j = 0; j < idx; j++) {
		const struct nvmg_conf_port *o = &conf->ports[j];
		size_t alen = a.family == AF_INET6 ? 16 : 4;

		if (o->portid == p->portid) {
			push_key(c, "portid");
			return fail(c, "duplicate portid %u (also ports[%zu])", (unsigned)p->portid, j);
		}
		addr_bin(o, &b);
		if (a.family != b.family || o->trsvcid != p->trsvcid)
			continue;
		fmt_addr(p, sa, sizeof(sa));
		fmt_addr(o, sb, sizeof(sb));
		if (!memcmp(a.addr, b.addr, alen)) {
			push_key(c, "addr");
			return fail(c, "duplicate address %s (also ports[%zu])", sa, j);
		}
		/* A wildcard listener owns the port for every address of its family. */
		if (!memcmp(a.addr, any, alen) || !memcmp(b.addr, any, alen)) {
			push_key(c, "addr");
			return fail(c, "%s overlaps %s of ports[%zu]", sa, sb, j);
		}
	}
	return 0;
}

static int parse_one_port(struct ctx *c, struct nvmg_conf *conf, size_t idx,
			  struct json_object *o)
{
	static const char *const known[] = { "portid", "addr", "param", "subsystems",
					     "referrals", "ana_groups", NULL };
	struct nvmg_conf_port *port = &conf->ports[idx];
	struct json_object *v;
	const char *str = NULL;
	struct qbuf q;
	bool present;
	size_t old, n;
	int64_t x;
	int ret;

	port->inline_data_size = INLINE_DATA_DEFAULT;
	if ((ret = open_obj(c, o, known, NULL)))
		return ret;

	v = field(o, "portid", &present);
	old = push_key(c, "portid");
	if (!present)
		return fail(c, "missing required key");
	if ((ret = get_int(c, v, 0, 65535, &x)))
		return ret;
	port->portid = (uint16_t)x;
	pop(c, old);

	v = field(o, "addr", &present);
	old = push_key(c, "addr");
	if (!present)
		return fail(c, "missing required key");
	if ((ret = parse_addr(c, port, v)))
		return ret;
	pop(c, old);

	v = field(o, "param", &present);
	if (present) {
		old = push_key(c, "param");
		if ((ret = parse_param(c, port, v)))
			return ret;
		pop(c, old);
	}

	v = field(o, "subsystems", &present);
	if (present) {
		old = push_key(c, "subsystems");
		if ((ret = want(c, v, json_type_array)))
			return ret;
		n = json_object_array_length(v);
		if ((ret = alloc_array(c, n, sizeof(*port->subsystems), &port->subsystems)))
			return ret;
		port->nr_subsystems = n;
		for (size_t i = 0; i < n; i++) {
			size_t o2 = push_idx(c, i), j;

			if ((ret = get_str(c, json_object_array_get_idx(v, i), &str)))
				return ret;
			for (j = 0; j < conf->nr_subsys; j++)
				if (!strcmp(conf->subsys[j].nqn, str))
					break;
			if (j == conf->nr_subsys)
				return fail(c, "unknown subsystem %s (not in subsystems)",
					    quote(&q, str));
			for (j = 0; j < i; j++)
				if (!strcmp(port->subsystems[j], str))
					return fail(c, "duplicate subsystem %s", quote(&q, str));
			if ((ret = dup_str(c, str, &port->subsystems[i])))
				return ret;
			pop(c, o2);
		}
		pop(c, old);
	}

	v = field(o, "referrals", &present);
	if (present) {
		old = push_key(c, "referrals");
		if ((ret = want(c, v, json_type_array)))
			return ret;
		if (json_object_array_length(v))
			warnf(c, "not implemented, ignored");
		pop(c, old);
	}
	v = field(o, "ana_groups", &present);
	if (present) {
		old = push_key(c, "ana_groups");
		if ((ret = want(c, v, json_type_array)))
			return ret;
		if (!ana_groups_harmless(v))
			warnf(c, "not implemented, ignored");
		pop(c, old);
	}
	return check_port_unique(c, conf, idx);
}

static int parse_ports(struct ctx *c, struct nvmg_conf *conf, struct json_object *arr)
{
	size_t n;
	int ret;

	if ((ret = want(c, arr, json_type_array)))
		return ret;
	n = json_object_array_length(arr);
	if ((ret = alloc_array(c, n, sizeof(*conf->ports), &conf->ports)))
		return ret;
	conf->nr_ports = n;
	for (size_t i = 0; i < n; i++) {
		size_t old = push_idx(c, i);

		if ((ret = parse_one_port(c, conf, i, json_object_array_get_idx(arr, i))))
			return ret;
		pop(c, old);
	}
	return 0;
}

/* ---- "nvmegate": our own settings ---- */

/* A subsystem's folder in the FUSE mount: one path component. */
static int check_folder_name(struct ctx *c, const char *name)
{
	size_t len = strlen(name);

	if (!len)
		return fail(c, "must not be empty");
	if (len > NAME_MAX)
		return fail(c, "is %zu bytes long (a folder name has at most %d)", len, NAME_MAX);
	if (!strcmp(name, ".") || !strcmp(name, "..") || strchr(name, '/'))
		return fail(c, "is not a folder name (no \"/\", \".\" or \"..\")");
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return fail(c, "contains a control character");
	return 0;
}

static const char *fuse_folder_of(const struct nvmg_conf *conf, const char *nqn)
{
	for (size_t i = 0; i < conf->nr_fuse_aliases; i++)
		if (!strcmp(conf->fuse_aliases[i].nqn, nqn))
			return conf->fuse_aliases[i].name;
	return nqn;
}

/* "fuse": {"mountpoint": PATH, "aliases": {SUBSYSTEM_NQN: FOLDER}} */
static int parse_fuse(struct ctx *c, struct nvmg_conf *conf, struct json_object *o)
{
	static const char *const known[] = { "mountpoint", "aliases", NULL };
	struct json_object *v;
	const char *str = NULL;
	struct qbuf q;
	bool present;
	size_t old, n = 0;
	int ret;

	if ((ret = open_obj(c, o, known, NULL)))
		return ret;
	v = field(o, "mountpoint", &present);
	old = push_key(c, "mountpoint");
	if (!present)
		return fail(c, "missing required key");
	if ((ret = get_str(c, v, &str)))
		return ret;
	if (!*str)
		return fail(c, "must not be empty");
	if (strlen(str) >= PATH_MAX)
		return fail(c, "is longer than %d bytes", PATH_MAX - 1);
	if ((ret = dup_str(c, str, &conf->fuse_mountpoint)))
		return ret;
	pop(c, old);

	v = field(o, "aliases", &present);
	if (present) {
		old = push_key(c, "aliases");
		if ((ret = want(c, v, json_type_object)))
			return ret;
		if ((ret = alloc_array(c, (size_t)json_object_object_length(v),
				       sizeof(*conf->fuse_aliases), &conf->fuse_aliases)))
			return ret;
		json_object_object_foreach(v, k, val) {
			struct nvmg_conf_alias *a = &conf->fuse_aliases[n];
			size_t o2 = push_key(c, k);
			bool known_nqn = false;

			for (size_t i = 0; i < conf->nr_subsys && !known_nqn; i++)
				known_nqn = !strcmp(conf->subsys[i].nqn, k);
			if (!known_nqn)
				return fail(c, "no subsystem has this NQN");
			if ((ret = get_str(c, val, &str)) || (ret = check_folder_name(c, str)))
				return ret;
			for (size_t j = 0; j < n; j++)
				if (!strcmp(conf->fuse_aliases[j].name, str))
					return fail(c, "%s is also the alias of %s", quote(&q, str),
						    conf->fuse_aliases[j].nqn);
			if ((ret = dup_str(c, k, &a->nqn)) || (ret = dup_str(c, str, &a->name)))
				return ret;
			conf->nr_fuse_aliases = ++n;
			pop(c, o2);
		}
		pop(c, old);
	}
	/* Every subsystem needs a distinct folder: its alias, else its NQN. */
	for (size_t i = 0; i < conf->nr_subsys; i++) {
		const char *name = fuse_folder_of(conf, conf->subsys[i].nqn);

		if (name == conf->subsys[i].nqn && strchr(name, '/'))
			return fail(c, "subsystem %s has a \"/\" in its NQN: give it a folder "
				    "name in aliases", quote(&q, name));
		for (size_t j = 0; j < i; j++)
			if (!strcmp(name, fuse_folder_of(conf, conf->subsys[j].nqn)))
				return fail(c, "subsystems %s and %s would share the folder %s",
					    conf->subsys[j].nqn, conf->subsys[i].nqn, quote(&q, name));
	}
	return 0;
}

/* "control": {"socket": PATH, "group": NAME}: the nvmegate CLI's socket. */
static int parse_control(struct ctx *c, struct nvmg_conf *conf, struct json_object *o)
{
	static const char *const known[] = { "socket", "group", NULL };
	struct sockaddr_un sun;
	struct json_object *v;
	const char *str = NULL;
	bool present;
	size_t old;
	int ret;

	if ((ret = open_obj(c, o, known, NULL)))
		return ret;
	v = field(o, "socket", &present);
	if (present) {
		old = push_key(c, "socket");
		if ((ret = get_str(c, v, &str)))
			return ret;
		if (!*str)
			return fail(c, "must not be empty");
		if (strlen(str) >= sizeof(sun.sun_path))
			return fail(c, "is longer than %zu bytes (a Unix socket path)",
				    sizeof(sun.sun_path) - 1);
		if ((ret = dup_str(c, str, &conf->control_socket)))
			return ret;
		pop(c, old);
	}
	v = field(o, "group", &present);
	if (present) {
		old = push_key(c, "group");
		if ((ret = get_str(c, v, &str)))
			return ret;
		if (!*str)
			return fail(c, "must not be empty");
		if ((ret = dup_str(c, str, &conf->control_group)))
			return ret;
		pop(c, old);
	}
	return 0;
}

static int parse_nvmegate(struct ctx *c, struct nvmg_conf *conf, struct json_object *o)
{
	static const char *const known[] = { "reactors", "log_level", "handshake_timeout_ms",
					     "max_pending_sockets", "max_queues_per_host",
					     "fuse", "control", NULL };
	static const struct {
		const char *key;
		int64_t min, max;
	} nums[] = {
		{ "reactors", 0, 256 },
		{ "handshake_timeout_ms", 100, 600000 },
		{ "max_pending_sockets", 1, 65536 },
		{ "max_queues_per_host", 1, 1048576 },
	};
	unsigned *num_dst[] = { &conf->reactors, &conf->handshake_timeout_ms,
				&conf->max_pending_sockets, &conf->max_queues_per_host };
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	struct json_object *v;
	const char *str = NULL;
	struct qbuf q;
	bool present;
	size_t old;
	int64_t x;
	int ret;

	if ((ret = open_obj(c, o, known, NULL)))
		return ret;
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		v = field(o, nums[i].key, &present);
		if (!present)
			continue;
		old = push_key(c, nums[i].key);
		if ((ret = get_int(c, v, nums[i].min, nums[i].max, &x)))
			return ret;
		*num_dst[i] = (unsigned)x;
		pop(c, old);
	}

	v = field(o, "log_level", &present);
	if (present) {
		size_t i;

		old = push_key(c, "log_level");
		if ((ret = get_str(c, v, &str)))
			return ret;
		for (i = 0; i < 4 && strcasecmp(str, levels[i]); i++)
			;
		if (i == 4 && !strcasecmp(str, "warning"))
			i = NVMG_LOG_WARN;
		if (i == 4)
			return fail(c, "%s is not a log level (error, warn, info or debug)",
				    quote(&q, str));
		conf->log_level = (enum nvmg_log_level)i;
		pop(c, old);
	}

	v = field(o, "fuse", &present);
	if (present) {
		old = push_key(c, "fuse");
		if ((ret = parse_fuse(c, conf, v)))
			return ret;
		pop(c, old);
	}
	v = field(o, "control", &present);
	if (present) {
		old = push_key(c, "control");
		if ((ret = parse_control(c, conf, v)))
			return ret;
		pop(c, old);
	}
	return 0;
}

/* ---- entry points ---- */

static int parse_root(struct ctx *c, struct nvmg_conf *conf, struct json_object *root)
{
	static const char *const known[] = { "hosts", "ports", "subsystems", "nvmegate", NULL };
	struct json_object *v;
	bool present;
	size_t old;
	int ret;

	if (!json_object_is_type(root, json_type_object))
		return fail(c, "the top level must be a JSON object");
	if ((ret = check_keys(c, root, known, NULL)))
		return ret;

	/* Subsystems before ports: ports refer to subsystems by NQN. */
	static const struct {
		const char *key;
		int (*fn)(struct ctx *, struct nvmg_conf *, struct json_object *);
	} sections[] = {
		{ "hosts", parse_hosts },
		{ "subsystems", parse_subsystems },
		{ "ports", parse_ports },
		{ "nvmegate", parse_nvmegate },
	};
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		v = field(root, sections[i].key, &present);
		if (!present)
			continue;
		old = push_key(c, sections[i].key);
		if ((ret = sections[i].fn(c, conf, v)))
			return ret;
		pop(c, old);
	}
	return 0;
}

/* buf must be NUL-terminated at buf[len]. */
static int parse_buf(const char *buf, size_t len, struct nvmg_conf **out, char *err,
		     size_t errlen, const struct nvmg_conf_env *env)
{
	struct ctx c = { .err = err, .errlen = errlen, .env = env };
	struct json_tokener *tok;
	struct json_object *root;
	struct nvmg_conf *conf;
	int ret;

	*out = NULL;
	if (len > INT_MAX - 1)
		return fail_code(&c, -EFBIG, "config is too large");
	tok = json_tokener_new();
	if (!tok)
		return oom(&c);
	/* Strict: the format is nvmetcli's (Python json), so no comments or
	 * trailing commas that only this parser would understand. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* len + 1 feeds the terminating NUL, which ends a top-level value. */
	root = json_tokener_parse_ex(tok, buf, (int)len + 1);
	if (!root) {
		enum json_tokener_error e = json_tokener_get_error(tok);
		size_t end = json_tokener_get_parse_end(tok), line = 1, col = 1;

		for (size_t i = 0; i < end && i < len; i++, col++)
			if (buf[i] == '\n')
				line++, col = 0;
		json_tokener_free(tok);
		if (e == json_tokener_success) /* the document is just "null" */
			return fail(&c, "the top level must be a JSON object");
		if (e == json_tokener_continue)
			return fail(&c, "invalid JSON at line %zu, column %zu: unexpected end "
					"of data", line, col);
		return fail(&c, "invalid JSON at line %zu, column %zu: %s", line, col,
			    json_tokener_error_desc(e));
	}
	json_tokener_free(tok);

	conf = calloc(1, sizeof(*conf));
	if (!conf) {
		json_object_put(root);
		return oom(&c);
	}
	conf->log_level = NVMG_LOG_INFO;
	conf->handshake_timeout_ms = 10000;
	conf->max_pending_sockets = 128;
	conf->max_queues_per_host = 1024;
	ret = parse_root(&c, conf, root);
	json_object_put(root);
	if (ret) {
		nvmg_conf_free(conf);
		return ret;
	}
	*out = conf;
	return 0;
}

int nvmg_conf_parse(const char *json, struct nvmg_conf **out, char *err, size_t errlen,
		    const struct nvmg_conf_env *env)
{
	return parse_buf(json, strlen(json), out, err, errlen, env);
}

/* A relative mountpoint belongs next to the config file, wherever the
 * daemon was started from: `make run` keeps both under run/. */
static int absolute_path(struct ctx *c, const char *file, const char *key, size_t max, char **mnt)
{
	const char *slash = strrchr(file, '/');
	char *dir, *real, *abs = NULL;
	int n;

	dir = slash ? strndup(file, (size_t)(slash - file) + (slash == file)) : strdup(".");
	if (!dir)
		return oom(c);
	real = realpath(dir, NULL);
	if (!real) {
		int e = errno;

		free(dir);
		return fail_code(c, -e, "%s: cannot resolve the config file's folder: %s", key,
				 strerror(e));
	}
	n = asprintf(&abs, "%s%s%s", real, strcmp(real, "/") ? "/" : "", *mnt);
	free(real);
	free(dir);
	if (n < 0)
		return oom(c);
	if (strlen(abs) >= max) {
		free(abs);
		return fail(c, "%s: %s is longer than %zu bytes", key, abs, max - 1);
	}
	free(*mnt);
	*mnt = abs;
	return 0;
}

/* Relative paths in "nvmegate" are relative to the config file's folder. */
static int absolute_paths(struct ctx *c, const char *file, struct nvmg_conf **out)
{
	struct sockaddr_un sun;
	int ret = 0;

	if ((*out)->fuse_mountpoint && (*out)->fuse_mountpoint[0] != '/')
		ret = absolute_path(c, file, "nvmegate.fuse.mountpoint", PATH_MAX,
				    &(*out)->fuse_mountpoint);
	if (!ret && (*out)->control_socket && (*out)->control_socket[0] != '/')
		ret = absolute_path(c, file, "nvmegate.control.socket", sizeof(sun.sun_path),
				    &(*out)->control_socket);
	if (ret) {
		nvmg_conf_free(*out);
		*out = NULL;
	}
	return ret;
}

int nvmg_conf_parse_at(const char *json, const char *file, struct nvmg_conf **out, char *err,
		       size_t errlen, const struct nvmg_conf_env *env)
{
	struct ctx c = { .err = err, .errlen = errlen };
	int ret = parse_buf(json, strlen(json), out, err, errlen, env);

	return ret ? ret : absolute_paths(&c, file, out);
}

int nvmg_conf_load(const char *file, struct nvmg_conf **out, char *err, size_t errlen,
		   const struct nvmg_conf_env *env)
{
	return nvmg_conf_load_text(file, out, NULL, err, errlen, env);
}

int nvmg_conf_load_text(const char *file, struct nvmg_conf **out, char **text, char *err,
			size_t errlen, const struct nvmg_conf_env *env)
{
	struct ctx c = { .err = err, .errlen = errlen };
	size_t len = 0, cap = 0;
	char *buf = NULL;
	struct stat st;
	int fd, ret;

	*out = NULL;
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_code(&c, -errno, "cannot open %s: %s", file, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return fail_code(&c, -EISDIR, "cannot read %s: %s", file, strerror(EISDIR));
	}
	/* Read to EOF rather than trusting st_size: pipes and /dev/stdin work too. */
	for (;;) {
		ssize_t r;

		if (cap - len < 2) {
			char *nb;

			cap = cap ? cap * 2 : 8192;
			if (cap > CONF_FILE_MAX + 2) {
				ret = fail_code(&c, -EFBIG, "%s is larger than %d bytes", file,
						CONF_FILE_MAX);
				goto out;
			}
			if (!(nb = realloc(buf, cap))) {
				ret = oom(&c);
				goto out;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = fail_code(&c, -errno, "cannot read %s: %s", file, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len)) {
		ret = fail(&c, "%s is not a text file (it contains a NUL byte)", file);
		goto out;
	}
	ret = parse_buf(buf, len, out, err, errlen, env);
	if (!ret)
		ret = absolute_paths(&c, file, out);
	if (!ret && text) {
		*text = buf;
		buf = NULL;
	}
out:
	free(buf);
	close(fd);
	return ret;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void nvmg_conf_free(struct nvmg_conf *conf)
{
	if (!conf)
		return;
	free_strv(conf->hosts, conf->nr_hosts);
	for (size_t i = 0; i < conf->nr_ports; i++) {
		free(conf->ports[i].traddr);
		free_strv(conf->ports[i].subsystems, conf->ports[i].nr_subsystems);
	}
	free(conf->ports);
	for (size_t i = 0; i < conf->nr_subsys; i++) {
		struct nvmg_conf_subsys *s = &conf->subsys[i];

		free(s->nqn);
		free_strv(s->allowed_hosts, s->nr_allowed_hosts);
		free(s->serial);
		free(s->model);
		for (size_t j = 0; j < s->nr_ns; j++)
			free(s->ns[j].path);
		free(s->ns);
	}
	free(conf->subsys);
	free(conf->fuse_mountpoint);
	free(conf->control_socket);
	free(conf->control_group);
	for (size_t i = 0; i < conf->nr_fuse_aliases; i++) {
		free(conf->fuse_aliases[i].nqn);
		free(conf->fuse_aliases[i].name);
	}
	free(conf->fuse_aliases);
	free(conf);
}
