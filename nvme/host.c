/* The target's table of "hosts" entries (see host.h). */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nvme/host.h"
#include "nvme/subsys.h"

int nvmg_hosts_build(const struct nvmg_conf *conf, struct nvmg_host **out, size_t *n)
{
	struct nvmg_host *h = calloc(conf->nr_hosts + 1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < conf->nr_hosts; i++) {
		const struct nvmg_conf_host *c = &conf->hosts[i];

		/* The config checked the NQN's length. */
		snprintf(h[i].nqn, sizeof(h[i].nqn), "%s", c->nqn);
		h[i].has_dhchap_key = c->has_dhchap_key;
		h[i].has_dhchap_ctrl_key = c->has_dhchap_ctrl_key;
		h[i].has_psk = c->has_psk;
		h[i].dhchap_key = c->dhchap_key;
		h[i].dhchap_ctrl_key = c->dhchap_ctrl_key;
		h[i].psk = c->psk;
		h[i].dhchap_hash = c->dhchap_hash;
		h[i].dhchap_dhgroup = c->dhchap_dhgroup;
	}
	*out = h;
	*n = conf->nr_hosts;
	return 0;
}

void nvmg_host_wipe(struct nvmg_host *h)
{
	OPENSSL_cleanse(h, sizeof(*h));
}

void nvmg_hosts_free(struct nvmg_host *hosts, size_t n)
{
	if (!hosts)
		return;
	OPENSSL_cleanse(hosts, n * sizeof(*hosts));
	free(hosts);
}

void nvmg_target_set_hosts(struct nvmg_target *t, struct nvmg_host *hosts, size_t n)
{
	struct nvmg_host *old;
	size_t nr_old;

	pthread_rwlock_wrlock(&t->model_lock);
	old = t->hosts;
	nr_old = t->nr_hosts;
	t->hosts = hosts;
	t->nr_hosts = n;
	pthread_rwlock_unlock(&t->model_lock);
	nvmg_hosts_free(old, nr_old);
}

int nvmg_target_find_host(struct nvmg_target *t, const char *hostnqn, struct nvmg_host *out)
{
	int ret = -ENOENT;

	pthread_rwlock_rdlock(&t->model_lock);
	for (size_t i = 0; i < t->nr_hosts; i++) {
		if (!strcmp(t->hosts[i].nqn, hostnqn)) {
			*out = t->hosts[i];
			ret = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&t->model_lock);
	return ret;
}
