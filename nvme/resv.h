/* NVMe persistent reservations (NVM command set): Reservation Register,
 * Report, Acquire and Release, the access check on I/O, the Reservation
 * Notification log page and its events, the Reservation Notification Mask
 * and Reservation Persistence features, and Persist Through Power Loss
 * kept in a state file.
 *
 * A host is known by the Host Identifier of its Connect (ctrl->hostid):
 * all the controllers of one host share its registration. Reservation
 * state is per namespace object and per process: two nvmegated serving
 * one subsystem do not share it (README, "Reservations"). */
#ifndef NVMG_RESV_H
#define NVMG_RESV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "nvme/core.h"

struct nvmg_resv_reg {
	uint8_t hostid[16];
	uint64_t rkey;
};

/* Reservation Notification Mask (feature 82h), kept per host. */
struct nvmg_resv_mask {
	uint8_t hostid[16];
	uint32_t mask;
};

struct nvmg_resv {
	/* The reservation type, 0 when none: the only field the I/O path
	 * reads without the lock, so a namespace without a reservation costs
	 * one relaxed load. Written under lock. */
	_Atomic uint8_t rtype;
	pthread_mutex_t lock;     /* everything below */
	uint8_t holder[16];       /* types 1-4; in 5-6 every registrant holds it */
	uint32_t gen;
	bool ptpl;
	uint32_t nsid;
	char *dir, *path;         /* state folder and file; NULL: no PTPL */
	struct nvmg_resv_reg *regs; /* in registration order */
	size_t nr_regs, cap_regs;
	struct nvmg_resv_mask *masks;
	size_t nr_masks;
};

/* Reservation state for namespace nsid of subsystem nqn. dir is the folder
 * of PTPL state files (NULL: Persist Through Power Loss unsupported); a
 * state file there is restored. Returns 0 or -errno with err filled (a
 * state file that cannot be read refuses the namespace: starting without
 * it would silently drop a fence). */
int nvmg_resv_create(struct nvmg_resv **out, const char *dir, const char *nqn, uint32_t nsid,
		     char *err, size_t errlen);
void nvmg_resv_free(struct nvmg_resv *r);

/* io_cmd.c: the four reservation opcodes are parsed here. */
bool nvmg_resv_opcode(uint8_t opcode);
uint16_t nvmg_resv_parse(struct nvmg_req *req);

/* io_cmd.c, once req->ns is set: Reservation Conflict for a command the
 * requesting host may not run on that namespace now, else 0. */
uint16_t nvmg_resv_check_slow(struct nvmg_req *req, struct nvmg_resv *r);
static inline uint16_t nvmg_resv_check(struct nvmg_req *req)
{
	struct nvmg_resv *r = req->ns->resv;

	if (!r || !atomic_load_explicit(&r->rtype, memory_order_relaxed))
		return 0;
	return nvmg_resv_check_slow(req, r);
}

/* Identify Namespace RESCAP. */
uint8_t nvmg_resv_rescap(const struct nvmg_ns *ns);
/* Get/Set Features 82h and 83h (admin.c sets them as req->execute). */
void nvmg_resv_get_features(struct nvmg_req *req);
void nvmg_resv_set_features(struct nvmg_req *req);
/* Get Log Page 80h: the controller's oldest notification, consumed. */
void nvmg_resv_log_page(struct nvmg_req *req, uint64_t off, bool rae);
/* Commands Supported and Effects entries of the reservation commands. */
void nvmg_resv_cmd_effects(uint32_t *iocs);

#endif
