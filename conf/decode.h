/* A declarative JSON decoder for the config: a section is a table of rows,
 * one per key (its type, range, default, where it goes in the model and the
 * nvmetcli rule for it), and one walker reads any table. The idea is SPDK's
 * spdk_json_decode_object; the rules (nvmetcli values arrive as strings or
 * numbers alike, unknown keys are refused with their path) are ours.
 *
 * A table is read in row order, and that order is the order of the checks:
 * which error the user sees first when a file has several. Before any row,
 * every key of the object must name a row ("unknown key" otherwise). */
#ifndef NVMG_CONF_DECODE_H
#define NVMG_CONF_DECODE_H

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"

struct nvmg_dec {
	char *err;
	size_t errlen;
	const struct nvmg_conf_env *env;
	void *root;              /* the whole model: sections refer to each other */
	struct json_object *obj; /* the object whose rows are being read */
	void *arr;               /* innermost array being decoded, and the index */
	size_t idx;              /* of the element being decoded in it */
	size_t plen;
	char path[512];          /* key path of the value being checked */
};

enum nvmg_dec_type {
	NVMG_DEC_NONE,   /* not decoded: a warned or refused key */
	NVMG_DEC_STR,    /* char *, strdup'ed */
	NVMG_DEC_NQN,    /* char *: a string that is a valid NQN */
	NVMG_DEC_BOOL,   /* bool: true/false, 1/0, "1"/"0", "yes"/"no", ... */
	NVMG_DEC_INT,    /* any integer field: JSON number or string, in min..max */
	NVMG_DEC_ENUM,   /* int-sized field: one of names (case-insensitive) */
	NVMG_DEC_OBJECT, /* sub-table, decoded into base + off */
	NVMG_DEC_ARRAY,  /* calloc'ed array at off, its length at aux, of elem */
	NVMG_DEC_CUSTOM, /* fn decodes the value */
	NVMG_DEC_CHECK,  /* no key: fn checks what the rows above decoded */
};

/* What nvmetcli writes and we do about it. */
enum nvmg_dec_rule {
	NVMG_DEC_ACCEPT, /* decoded */
	NVMG_DEC_WARN,   /* not implemented: warned once unless harmless */
	NVMG_DEC_REFUSE, /* not implemented and unsafe to ignore: fails unless harmless */
};

#define NVMG_DEC_REQUIRED 1u /* absent: "missing required key" */
#define NVMG_DEC_NONEMPTY 2u /* STR: "must not be empty" */

struct nvmg_dec_key;
typedef int (*nvmg_dec_fn)(struct nvmg_dec *d, const struct nvmg_dec_key *k,
			   struct json_object *v, void *base);
typedef int (*nvmg_dec_check_fn)(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base);
typedef bool (*nvmg_dec_harmless_fn)(const struct nvmg_dec_key *k, struct json_object *v,
				     const void *base);

struct nvmg_dec_enum {
	const char *pre, *post; /* the message around the quoted bad value */
	struct {
		const char *name;
		int value;
	} names[8];             /* ends at a NULL name */
};

struct nvmg_dec_table {
	const struct nvmg_dec_key *keys;
	size_t nr;
};

struct nvmg_dec_key {
	const char *key;
	enum nvmg_dec_type type;
	enum nvmg_dec_rule rule;
	unsigned flags;
	size_t off, size;       /* the field in the struct the table decodes */
	size_t aux;             /* ARRAY: offset of the size_t length */
	int64_t min, max;       /* INT: range; WARN with nvmg_dec_in_range: harmless range */
	int64_t dflt;           /* INT, BOOL, ENUM, scalar CUSTOM: set before decoding */
	const char *strs;       /* nvmg_dec_in_strs: harmless values, '|'-separated */
	const char *msg;        /* WARN (default "not implemented, ignored"), REFUSE */
	const struct nvmg_dec_enum *names;     /* ENUM */
	const struct nvmg_dec_table *sub;      /* OBJECT */
	const struct nvmg_dec_key *elem;       /* ARRAY: how one element decodes */
	size_t esize;                          /* ARRAY: one element's size */
	nvmg_dec_fn fn;                        /* CUSTOM, CHECK */
	nvmg_dec_check_fn check;               /* after the value is stored (ARRAY:
						* before its elements) */
	nvmg_dec_harmless_fn harmless;         /* WARN, REFUSE; NULL: never */
};

#define NVMG_DEC_FIELD(type, member) \
	.off = offsetof(type, member), .size = sizeof(((type *)0)->member)
#define NVMG_DEC_TABLE(rows) { (rows), sizeof(rows) / sizeof((rows)[0]) }

/* Decode OBJ with TABLE into BASE: defaults, then the rows in order. */
int nvmg_dec_element(struct nvmg_dec *d, struct json_object *obj,
		     const struct nvmg_dec_table *t, void *base);
int nvmg_dec_object(struct nvmg_dec *d, struct json_object *obj,
		    const struct nvmg_dec_table *t, void *base);

/* Harmless predicates for WARN and REFUSE rows. */
bool nvmg_dec_false(const struct nvmg_dec_key *k, struct json_object *v, const void *base);
bool nvmg_dec_in_range(const struct nvmg_dec_key *k, struct json_object *v, const void *base);
bool nvmg_dec_in_strs(const struct nvmg_dec_key *k, struct json_object *v, const void *base);
bool nvmg_dec_empty_array(const struct nvmg_dec_key *k, struct json_object *v,
			  const void *base);
/* Whether OBJ is an object whose keys are all in the NULL-terminated list. */
bool nvmg_dec_only_keys(struct json_object *obj, const char *const *keys);

/* Key paths: push returns what pop restores. */
size_t nvmg_dec_push_key(struct nvmg_dec *d, const char *key);
size_t nvmg_dec_push_idx(struct nvmg_dec *d, size_t i);
void nvmg_dec_pop(struct nvmg_dec *d, size_t old);

/* "<key path>: <message>" into err; returns code. */
int __attribute__((format(printf, 3, 4)))
nvmg_dec_fail_code(struct nvmg_dec *d, int code, const char *fmt, ...);
#define nvmg_dec_fail(d, ...) nvmg_dec_fail_code(d, -EINVAL, __VA_ARGS__)
int nvmg_dec_oom(struct nvmg_dec *d);
/* "<key path>: <message>" through env->warn. */
void __attribute__((format(printf, 2, 3))) nvmg_dec_warn(struct nvmg_dec *d, const char *fmt, ...);

/* A user string, quoted, escaped and shortened for a one-line message. */
struct nvmg_dec_quoted {
	char s[128];
};
const char *nvmg_dec_quote(struct nvmg_dec_quoted *q, const char *s);
/* A value for a message: strings quoted, other JSON as written. */
const char *nvmg_dec_vtext(struct nvmg_dec_quoted *q, struct json_object *v);

/* The scalar readers the types use, for custom decoders. */
int nvmg_dec_str(struct nvmg_dec *d, struct json_object *v, const char **out);
int nvmg_dec_int(struct nvmg_dec *d, struct json_object *v, int64_t min, int64_t max,
		 int64_t *out);
/* An integer as nvmetcli writes it, or -EINVAL; no message. */
int nvmg_dec_parse_int(struct json_object *v, int64_t *out);
bool nvmg_dec_has_nul(struct json_object *v);
int nvmg_dec_strdup(struct nvmg_dec *d, const char *s, char **out);

#endif
