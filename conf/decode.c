/* The table walker (see decode.h) and the scalar readers under it. Values
 * arrive as nvmetcli writes them: strings ("16384", "1") or JSON numbers
 * and booleans alike. */
#include "conf/decode.h"
#include "lib/parse.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- key paths and messages ---- */

size_t nvmg_dec_push_key(struct nvmg_dec *d, const char *key)
{
	size_t old = d->plen;

	if (d->plen && d->plen < sizeof(d->path) - 1)
		d->path[d->plen++] = '.';
	/* Unknown keys come from the user: keep messages on one line. */
	for (const char *p = key; *p && d->plen < sizeof(d->path) - 1; p++) {
		unsigned char ch = (unsigned char)*p;
		d->path[d->plen++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	d->path[d->plen] = '\0';
	return old;
}

size_t nvmg_dec_push_idx(struct nvmg_dec *d, size_t i)
{
	size_t old = d->plen;
	int n = snprintf(d->path + d->plen, sizeof(d->path) - d->plen, "[%zu]", i);

	if (n > 0)
		d->plen += (size_t)n < sizeof(d->path) - d->plen ? (size_t)n
								 : sizeof(d->path) - d->plen - 1;
	return old;
}

void nvmg_dec_pop(struct nvmg_dec *d, size_t old)
{
	d->plen = old;
	d->path[old] = '\0';
}

int nvmg_dec_fail_code(struct nvmg_dec *d, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (d->err && d->errlen)
		snprintf(d->err, d->errlen, "%s%s%s", d->path, d->plen ? ": " : "", msg);
	return code;
}

int nvmg_dec_oom(struct nvmg_dec *d)
{
	return nvmg_dec_fail_code(d, -ENOMEM, "out of memory");
}

void nvmg_dec_warn(struct nvmg_dec *d, const char *fmt, ...)
{
	char msg[512], line[sizeof(msg) + sizeof(d->path) + 2];
	va_list ap;

	if (!d->env || !d->env->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "%s: %s", d->path, msg);
	d->env->warn(d->env->ctx, line);
}

const char *nvmg_dec_quote(struct nvmg_dec_quoted *q, const char *s)
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

const char *nvmg_dec_vtext(struct nvmg_dec_quoted *q, struct json_object *v)
{
	if (json_object_is_type(v, json_type_string))
		return nvmg_dec_quote(q, json_object_get_string(v));
	snprintf(q->s, sizeof(q->s), "%.60s", json_object_get_string(v));
	return q->s;
}

/* ---- scalars: strings ("16384") and JSON values (16384) alike ---- */

/* JSON strings may carry \u0000, which C strings would silently truncate. */
bool nvmg_dec_has_nul(struct json_object *v)
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

enum pv { PV_OK, PV_TYPE, PV_VALUE };

static enum pv parse_i64(struct json_object *v, int64_t *out)
{
	switch (json_object_get_type(v)) {
	case json_type_int:
		*out = json_object_get_int64(v); /* saturates; range checks reject that */
		return PV_OK;
	case json_type_string:
		if (nvmg_dec_has_nul(v) || parse_i64_str(json_object_get_string(v), out))
			return PV_VALUE;
		return PV_OK;
	default:
		return PV_TYPE;
	}
}

int nvmg_dec_parse_int(struct json_object *v, int64_t *out)
{
	return parse_i64(v, out) == PV_OK ? 0 : -EINVAL;
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

int nvmg_dec_int(struct nvmg_dec *d, struct json_object *v, int64_t min, int64_t max,
		 int64_t *out)
{
	struct nvmg_dec_quoted q;

	switch (parse_i64(v, out)) {
	case PV_TYPE:
		return nvmg_dec_fail(d, "expected an integer");
	case PV_VALUE:
		return nvmg_dec_fail(d, "%s is not an integer", nvmg_dec_vtext(&q, v));
	case PV_OK:
		break;
	}
	if (*out < min || *out > max)
		return nvmg_dec_fail(d, "%.40s is out of range (%" PRId64 "..%" PRId64 ")",
				     json_object_get_string(v), min, max);
	return 0;
}

static int get_bool(struct nvmg_dec *d, struct json_object *v, bool *out)
{
	struct nvmg_dec_quoted q;

	switch (parse_bool(v, out)) {
	case PV_TYPE:
		return nvmg_dec_fail(d, "expected a boolean");
	case PV_VALUE:
		return nvmg_dec_fail(d, "%s is not a boolean (use true/false or 1/0)",
				     nvmg_dec_vtext(&q, v));
	case PV_OK:
		break;
	}
	return 0;
}

int nvmg_dec_str(struct nvmg_dec *d, struct json_object *v, const char **out)
{
	if (!json_object_is_type(v, json_type_string))
		return nvmg_dec_fail(d, "expected a string");
	if (nvmg_dec_has_nul(v))
		return nvmg_dec_fail(d, "contains a NUL character");
	*out = json_object_get_string(v);
	return 0;
}

int nvmg_dec_strdup(struct nvmg_dec *d, const char *s, char **out)
{
	*out = strdup(s);
	return *out ? 0 : nvmg_dec_oom(d);
}

static int want(struct nvmg_dec *d, struct json_object *v, enum json_type t)
{
	if (json_object_is_type(v, t))
		return 0;
	return nvmg_dec_fail(d, "expected %s", t == json_type_array ? "an array" : "an object");
}

static int get_nqn(struct nvmg_dec *d, struct json_object *v, const char **out)
{
	int ret = nvmg_dec_str(d, v, out);
	size_t len;

	if (ret)
		return ret;
	len = strlen(*out);
	if (!len)
		return nvmg_dec_fail(d, "must not be empty");
	if (len > NVMG_NQN_MAX)
		return nvmg_dec_fail(d, "NQN is %zu bytes long (at most %d)", len, NVMG_NQN_MAX);
	for (const char *p = *out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return nvmg_dec_fail(d, "NQN contains a control character");
	return 0;
}

/* ---- harmless values of keys we do not implement ---- */

bool nvmg_dec_false(const struct nvmg_dec_key *k, struct json_object *v, const void *base)
{
	bool b;

	(void)k, (void)base;
	return parse_bool(v, &b) == PV_OK && !b;
}

bool nvmg_dec_in_range(const struct nvmg_dec_key *k, struct json_object *v, const void *base)
{
	int64_t x;

	(void)base;
	return parse_i64(v, &x) == PV_OK && x >= k->min && x <= k->max;
}

bool nvmg_dec_in_strs(const struct nvmg_dec_key *k, struct json_object *v, const void *base)
{
	const char *s;
	size_t n;

	(void)base;
	if (!json_object_is_type(v, json_type_string))
		return false;
	s = json_object_get_string(v);
	n = strlen(s);
	for (const char *p = k->strs;; p++) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);

		if (len == n && !strncasecmp(p, s, n))
			return true;
		if (!bar)
			return false;
		p = bar;
	}
}

bool nvmg_dec_empty_array(const struct nvmg_dec_key *k, struct json_object *v,
			  const void *base)
{
	(void)k, (void)base;
	return json_object_array_length(v) == 0;
}

bool nvmg_dec_only_keys(struct json_object *obj, const char *const *keys)
{
	if (!json_object_is_type(obj, json_type_object))
		return false;
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

/* ---- the walker ---- */

/* Any integer field; memcpy, as a custom row's field may be a byte array. */
static void store_int(void *field, size_t size, int64_t x)
{
	uint8_t u8 = (uint8_t)x;
	uint16_t u16 = (uint16_t)x;
	uint32_t u32 = (uint32_t)x;
	uint64_t u64 = (uint64_t)x;
	const void *src = size == 1 ? (void *)&u8 : size == 2 ? (void *)&u16
			: size == 4 ? (void *)&u32 : (void *)&u64;

	if (size == 1 || size == 2 || size == 4 || size == 8)
		memcpy(field, src, size);
}

static const struct nvmg_dec_key *find_key(const struct nvmg_dec_table *t, const char *key)
{
	for (size_t i = 0; i < t->nr; i++)
		if (t->keys[i].key && !strcmp(t->keys[i].key, key))
			return &t->keys[i];
	return NULL;
}

/* Defaults of the table and of the objects decoded into the same model
 * struct, whether or not the file has them. */
static void set_defaults(const struct nvmg_dec_table *t, void *base)
{
	for (size_t i = 0; i < t->nr; i++) {
		const struct nvmg_dec_key *k = &t->keys[i];

		if (k->type == NVMG_DEC_OBJECT)
			set_defaults(k->sub, (char *)base + k->off);
		else if (k->type == NVMG_DEC_INT || k->type == NVMG_DEC_BOOL ||
			 k->type == NVMG_DEC_ENUM || k->type == NVMG_DEC_CUSTOM)
			store_int((char *)base + k->off, k->size, k->dflt);
	}
}

static int dec_enum(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		    void *field)
{
	const struct nvmg_dec_enum *e = k->names;
	struct nvmg_dec_quoted q;
	const char *s;
	int ret = nvmg_dec_str(d, v, &s);

	if (ret)
		return ret;
	for (size_t i = 0; e->names[i].name; i++)
		if (!strcasecmp(s, e->names[i].name)) {
			store_int(field, k->size, e->names[i].value);
			return 0;
		}
	return nvmg_dec_fail(d, "%s%s%s", e->pre, nvmg_dec_quote(&q, s), e->post);
}

static int dec_value(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		     void *base);

/* One array element: a row without a key, decoded at base. */
static int dec_elem(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		    void *base)
{
	int ret;

	if (k->type == NVMG_DEC_OBJECT)
		return nvmg_dec_element(d, v, k->sub, (char *)base + k->off);
	if ((ret = dec_value(d, k, v, base)))
		return ret;
	return k->check ? k->check(d, k, base) : 0;
}

static int dec_array(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		     void *base)
{
	size_t n, saved_idx = d->idx;
	void *saved_arr = d->arr, *arr = NULL;
	int ret;

	if ((ret = want(d, v, json_type_array)))
		return ret;
	n = json_object_array_length(v);
	if (n && !(arr = calloc(n, k->esize)))
		return nvmg_dec_oom(d);
	/* Set the length first: the model is freed whole on an error. */
	memcpy((char *)base + k->off, &arr, sizeof(arr));
	memcpy((char *)base + k->aux, &n, sizeof(n));
	if (k->check && (ret = k->check(d, k, base)))
		return ret;
	for (size_t i = 0; i < n && !ret; i++) {
		size_t old = nvmg_dec_push_idx(d, i);

		d->arr = arr;
		d->idx = i;
		ret = dec_elem(d, k->elem, json_object_array_get_idx(v, i),
			       (char *)arr + i * k->esize);
		if (!ret)
			nvmg_dec_pop(d, old);
	}
	d->arr = saved_arr;
	d->idx = saved_idx;
	return ret;
}

/* One value of row K (its key already on the path) into base. */
static int dec_value(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		     void *base)
{
	void *field = (char *)base + k->off;
	const char *s = NULL;
	int64_t x;
	bool b;
	int ret;

	switch (k->type) {
	case NVMG_DEC_STR:
		if ((ret = nvmg_dec_str(d, v, &s)))
			return ret;
		if ((k->flags & NVMG_DEC_NONEMPTY) && !*s)
			return nvmg_dec_fail(d, "must not be empty");
		return nvmg_dec_strdup(d, s, field);
	case NVMG_DEC_NQN:
		if ((ret = get_nqn(d, v, &s)))
			return ret;
		return nvmg_dec_strdup(d, s, field);
	case NVMG_DEC_BOOL:
		if ((ret = get_bool(d, v, &b)))
			return ret;
		*(bool *)field = b;
		return 0;
	case NVMG_DEC_INT:
		if ((ret = nvmg_dec_int(d, v, k->min, k->max, &x)))
			return ret;
		store_int(field, k->size, x);
		return 0;
	case NVMG_DEC_ENUM:
		return dec_enum(d, k, v, field);
	case NVMG_DEC_OBJECT:
		return nvmg_dec_object(d, v, k->sub, field);
	case NVMG_DEC_ARRAY:
		return dec_array(d, k, v, base);
	case NVMG_DEC_CUSTOM:
		return k->fn(d, k, v, base);
	case NVMG_DEC_NONE:
	case NVMG_DEC_CHECK:
		break;
	}
	return 0;
}

/* A warned or refused key: only its JSON type is checked. */
static int dec_rule(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		    const void *base)
{
	int ret = 0;

	if (k->type == NVMG_DEC_ARRAY || k->type == NVMG_DEC_OBJECT)
		ret = want(d, v, k->type == NVMG_DEC_ARRAY ? json_type_array : json_type_object);
	if (ret || (k->harmless && k->harmless(k, v, base)))
		return ret;
	if (k->rule == NVMG_DEC_REFUSE)
		return nvmg_dec_fail(d, "%s", k->msg);
	nvmg_dec_warn(d, "%s", k->msg ? k->msg : "not implemented, ignored");
	return 0;
}

static int dec_row(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	struct json_object *v = NULL;
	size_t old;
	int ret;

	if (k->type == NVMG_DEC_CHECK) {
		/* A check may name the key it fails on. */
		old = d->plen;
		if ((ret = k->fn(d, k, NULL, base)))
			return ret;
		nvmg_dec_pop(d, old);
		return 0;
	}
	old = nvmg_dec_push_key(d, k->key);
	if (!json_object_object_get_ex(d->obj, k->key, &v)) {
		if (k->flags & NVMG_DEC_REQUIRED)
			return nvmg_dec_fail(d, "missing required key");
	} else if (k->rule != NVMG_DEC_ACCEPT) {
		if ((ret = dec_rule(d, k, v, base)))
			return ret;
	} else {
		if ((ret = dec_value(d, k, v, base)))
			return ret;
		if (k->check && k->type != NVMG_DEC_ARRAY && (ret = k->check(d, k, base)))
			return ret;
	}
	nvmg_dec_pop(d, old);
	return 0;
}

int nvmg_dec_object(struct nvmg_dec *d, struct json_object *obj,
		    const struct nvmg_dec_table *t, void *base)
{
	struct json_object *saved = d->obj;
	int ret = want(d, obj, json_type_object);

	if (ret)
		return ret;
	/* Unknown keys first, in the file's order: they are most often typos. */
	json_object_object_foreach(obj, key, val) {
		(void)val;
		if (!find_key(t, key)) {
			nvmg_dec_push_key(d, key);
			return nvmg_dec_fail(d, "unknown key");
		}
	}
	d->obj = obj;
	for (size_t i = 0; i < t->nr && !ret; i++)
		ret = dec_row(d, &t->keys[i], base);
	d->obj = saved;
	return ret;
}

int nvmg_dec_element(struct nvmg_dec *d, struct json_object *v,
		     const struct nvmg_dec_table *t, void *base)
{
	set_defaults(t, base);
	return nvmg_dec_object(d, v, t, base);
}
