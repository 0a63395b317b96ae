/* Shared by resv.c and resv_ptpl.c only. */
#ifndef NVMG_RESV_INT_H
#define NVMG_RESV_INT_H

#include "nvme/resv.h"

#define NVMG_RESV_LOG_QUEUE 64 /* notifications a controller keeps until read */

/* A controller's Reservation Notification log: a queue of pages, each
 * read once (ctrl->resv_log, under ctrl->lock). */
struct nvmg_resv_log {
	uint64_t lpc;             /* Log Page Count of the last page made */
	struct {
		uint64_t lpc;
		uint32_t nsid;
		uint8_t type;
	} q[NVMG_RESV_LOG_QUEUE];
	unsigned head, nr;
};


/* What a command may have to undo (resv_ptpl.c). */
struct nvmg_resv_snapshot {
	struct nvmg_resv_reg *regs;
	size_t nr_regs;
	uint8_t rtype, holder[16];
	uint32_t gen;
	bool ptpl;
};

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

/* Before a command changes r (r->lock held): false when out of memory. */
bool nvmg_resv_snapshot(struct nvmg_resv *r, struct nvmg_resv_snapshot *s);
/* After it: with status 0, write the state file (PTPL on) or remove it (PTPL
 * just turned off); a failed write restores the snapshot and returns
 * Internal Error. Frees the snapshot; returns the command's status. */
uint16_t nvmg_resv_commit(struct nvmg_resv *r, struct nvmg_resv_snapshot *s, uint16_t status);
/* The Reservation Notification Mask host hostid set on r (r->lock held). */
uint32_t nvmg_resv_mask_of(struct nvmg_resv *r, const uint8_t hostid[16]);

#endif
