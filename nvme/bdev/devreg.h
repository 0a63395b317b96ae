/* Process-wide registry of shared devices: one PCIe controller serves
 * all of its namespaces, whichever subsystems export them. Keyed by a
 * string (the PCI address), reference counted, thread-safe. */
#ifndef NVMG_DEVREG_H
#define NVMG_DEVREG_H

#include <stddef.h>

/* Returns the device for key, opening it with open(key, arg, err, errlen)
 * on first use (under the registry lock). *ret gets 0 or -errno. */
void *nvmg_devreg_get(const char *key, void *(*open)(const char *key, char *err, size_t errlen, int *ret),
		      char *err, size_t errlen, int *ret);
/* Drops a reference; the last one calls close(dev) (under the lock). */
void nvmg_devreg_put(const char *key, void (*close)(void *dev));

#endif
