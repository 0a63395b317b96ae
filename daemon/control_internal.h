/* Shared by the control command files. */
#ifndef NVMG_CONTROL_INTERNAL_H
#define NVMG_CONTROL_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

struct json_object;
struct nvmg_daemon;

/* {"ok": true, "result": result} (an empty object for NULL). */
struct json_object *ctl_ok(struct json_object *result);
/* {"ok": false, "error": msg, "usage": usage}; usage marks bad arguments
 * (the CLI exits 2) as opposed to an operation that failed (exit 1). */
struct json_object *ctl_fail(bool usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Typed arguments; on a bad one return -EINVAL with *fail set. */
int ctl_str(struct json_object *req, const char *key, bool required, const char **out,
	    struct json_object **fail);
int ctl_u64(struct json_object *req, const char *key, bool required, uint64_t max, uint64_t *out,
	    struct json_object **fail);
/* Configurations applied since start (d->changes, read under d->lock). */
uint64_t ctl_changes(struct nvmg_daemon *d);

/* control_show.c */
struct json_object *ctl_cmd_status(struct nvmg_daemon *d, struct json_object *req);
struct json_object *ctl_cmd_list(struct nvmg_daemon *d, struct json_object *req);
struct json_object *ctl_cmd_stats(struct nvmg_daemon *d, struct json_object *req);

#endif
