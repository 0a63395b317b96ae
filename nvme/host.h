/* The "hosts" entries the target knows: what each host must prove
 * (DH-HMAC-CHAP secrets, its TLS PSK). Built with the model, replaced
 * whole by a reload, read by copy under the model lock. */
#ifndef NVMG_HOST_H
#define NVMG_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/secret.h"
#include "nvme/spec.h"

struct nvmg_target;
struct nvmg_conf;

struct nvmg_host {
	char nqn[NVME_NQN_LENGTH];
	bool has_dhchap_key, has_dhchap_ctrl_key, has_psk;
	struct nvmg_secret dhchap_key, dhchap_ctrl_key, psk;
	uint8_t dhchap_hash, dhchap_dhgroup;
};

/* A table built from conf's "hosts" (*out, *n): 0 or -ENOMEM. */
int nvmg_hosts_build(const struct nvmg_conf *conf, struct nvmg_host **out, size_t *n);
/* Wipes the secrets, then frees. */
void nvmg_hosts_free(struct nvmg_host *hosts, size_t n);
/* Install a built table (the old one is wiped and freed). Any thread. */
void nvmg_target_set_hosts(struct nvmg_target *t, struct nvmg_host *hosts, size_t n);
/* Copy hostnqn's entry into *out: 0, or -ENOENT when no entry names it.
 * Any thread. Wipe the copy (nvmg_host_wipe) when done. */
int nvmg_target_find_host(struct nvmg_target *t, const char *hostnqn, struct nvmg_host *out);
void nvmg_host_wipe(struct nvmg_host *h);

#endif
