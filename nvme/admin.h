/* Helpers shared by the admin command files (admin.c, identify.c,
 * log_page.c, features.c, discovery.c); not part of the core's contract. */
#ifndef NVMG_ADMIN_H
#define NVMG_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "nvme/core.h"

#define NVMG_VERSION "0.1"
/* Identify Controller NN: every NSID a host may see is <= this. */
#define NVMG_MIN_NN 1024

/* Command Sequence Error unless CC.EN and CSTS.RDY are both set. */
uint16_t nvmg_admin_check_enabled(struct nvmg_ctrl *c);
/* Get Log Page: data length from NUMDL/NUMDU. */
uint16_t nvmg_admin_parse_get_log_page(struct nvmg_req *req);
/* Get/Set Features: FID support for this controller type, data length. */
uint16_t nvmg_admin_parse_features(struct nvmg_req *req, bool set);
void nvmg_admin_execute_keep_alive(struct nvmg_req *req);

/* ASCII field of n bytes, space padded, not NUL terminated. */
void nvmg_copy_padded(char *dst, size_t n, const char *src);
/* Identify Controller NN for s: max(NVMG_MIN_NN, highest NSID). */
uint32_t nvmg_subsys_nn(struct nvmg_subsys *s);
/* Any namespace of s whose backend has a volatile write cache. */
bool nvmg_subsys_has_vwc(struct nvmg_subsys *s);
/* Set a completion's Dword 0. */
static inline void nvmg_req_set_dw0(struct nvmg_req *req, uint32_t dw0)
{
	req->cqe.result = htole64(dw0);
}

#endif
