/* Small helpers every layer uses. Intrusive lists are <sys/queue.h>. */
#ifndef NVMG_UTIL_H
#define NVMG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define nvmg_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define NVMG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The environment switch name is set to value (the NVMEGATED_* switches
 * that tests and A/B benchmarks flip; man/nvmegated.8 lists them). */
static inline bool nvmg_env_is(const char *name, const char *value)
{
	const char *v = getenv(name);

	return v && !strcmp(v, value);
}

#endif
