/* Building the target model from a validated config, and applying
 * namespace changes from a reload. Called from the main thread. */
#ifndef NVMG_SUBSYS_H
#define NVMG_SUBSYS_H

#include "nvme/core.h"

int nvmg_target_build(struct nvmg_target *t, const struct nvmg_conf *conf, char *err, size_t errlen);
/* Apply namespace additions/removals; subsystems and ports are fixed
 * for now. Returns 0 or -errno with err filled (nothing changed then). */
int nvmg_target_reload(struct nvmg_target *t, const struct nvmg_conf *conf, char *err, size_t errlen);
/* Change a namespace's size (bytes; 0 re-reads the backend's size) and
 * raise the namespace-attribute event. *blocks gets the new NSZE. Returns 0
 * or -errno with err filled. */
int nvmg_target_resize_ns(struct nvmg_target *t, const char *nqn, uint32_t nsid, uint64_t bytes,
			  uint64_t *blocks, char *err, size_t errlen);
/* Flush every namespace's backend (shutdown). Returns 0 or the first error. */
int nvmg_target_flush_all(struct nvmg_target *t);
void nvmg_target_destroy(struct nvmg_target *t);

#endif
