/* Shared by resv.c and resv_ptpl.c only. */
#ifndef NVMG_RESV_INT_H
#define NVMG_RESV_INT_H

#include "nvme/resv.h"

/* Append a registrant (caller holds r->lock or owns r). NULL: no memory. */
struct nvmg_resv_reg *nvmg_resv_add_reg(struct nvmg_resv *r, const uint8_t hostid[16], uint64_t rkey);
/* The state file of nqn's namespace nsid in dir; malloc'ed, NULL: no memory. */
char *nvmg_resv_state_path(const char *dir, const char *nqn, uint32_t nsid);
/* Write r's state to r->path atomically; 0 or -errno. Caller holds r->lock. */
int nvmg_resv_save(struct nvmg_resv *r);
/* Remove the state file (PTPL turned off); 0 or -errno. */
int nvmg_resv_unsave(struct nvmg_resv *r);
/* Restore r from r->path if it exists (then PTPL is on). 0 or -errno with err. */
int nvmg_resv_load(struct nvmg_resv *r, char *err, size_t errlen);

#endif
