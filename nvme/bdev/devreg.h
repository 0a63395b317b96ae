/* A registry of shared devices: one PCIe controller serves all of its
 * namespaces, whichever subsystems export them. Keyed by a string (the PCI
 * address), reference counted, thread-safe. The target owns one (the
 * daemon's namespaces), nvmegate-bdev-perf its own: no process-wide state. */
#ifndef NVMG_DEVREG_H
#define NVMG_DEVREG_H

#include <stddef.h>

struct nvmg_devreg;

/* NULL when out of memory. */
struct nvmg_devreg *nvmg_devreg_create(void);
/* Every device must have been put. */
void nvmg_devreg_destroy(struct nvmg_devreg *reg);
/* Returns the device for key, opening it with open(key, err, errlen, ret)
 * on first use (under the registry lock). *ret gets 0 or -errno. */
void *nvmg_devreg_get(struct nvmg_devreg *reg, const char *key,
		      void *(*open)(const char *key, char *err, size_t errlen, int *ret), char *err,
		      size_t errlen, int *ret);
/* Drops a reference; the last one calls close(dev) (under the lock). */
void nvmg_devreg_put(struct nvmg_devreg *reg, const char *key, void (*close)(void *dev));

#endif
