/* Small helpers every layer uses. Intrusive lists are <sys/queue.h>. */
#ifndef NVMG_UTIL_H
#define NVMG_UTIL_H

#include <stddef.h>

#define nvmg_container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define NVMG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
