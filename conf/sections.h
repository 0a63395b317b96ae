/* The config's sections, one file each: what conf/config.c's root table
 * decodes "hosts", "subsystems", "ports" and "nvmegate" with. */
#ifndef NVMG_CONF_SECTIONS_H
#define NVMG_CONF_SECTIONS_H

#include "conf/decode.h"

/* conf/hosts.c: one "hosts" element (struct nvmg_conf_host) */
extern const struct nvmg_dec_key nvmg_conf_host;
/* conf/subsystems.c: one "subsystems" element (struct nvmg_conf_subsys) */
extern const struct nvmg_dec_key nvmg_conf_subsys;
/* conf/ports.c: one "ports" element (struct nvmg_conf_port) */
extern const struct nvmg_dec_key nvmg_conf_port;
/* conf/ports.c: after both sections, every namespace's ANA group is one
 * some port defines (a root CHECK row). */
int nvmg_conf_ana_check(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
			void *base);
/* conf/nvmegate.c: "nvmegate", into struct nvmg_conf */
extern const struct nvmg_dec_table nvmg_conf_nvmegate;

/* Frees what one "hosts" entry holds (not the entry). */
void nvmg_conf_host_free(struct nvmg_conf_host *h);

#endif
