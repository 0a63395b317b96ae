/* The config loader (conf/: JSON text -> validated model) on random text,
 * with the environment the unit tests give it (only "tcp" is a transport;
 * a path starting "bad:" is not a device).
 *
 * A refusal is one line of reason and no model. An accepted config is a
 * model the rest of the daemon may trust without checking again: NQNs
 * non-empty within 223 bytes, each subsystem's NSIDs valid and distinct,
 * LBA sizes 512 or 4096, port IDs distinct, exported subsystems that
 * exist, CNTLID ranges in order, secrets of a length their hash allows. */
#include <errno.h>
#include "tests/fuzz/fuzz.h"
#include "conf/config.h"

static int on_path(const char *path, const char *shown, uint32_t lba_size, char *why, size_t len)
{
	FUZZ_CHECK(lba_size == 512 || lba_size == 4096);
	if (strncmp(path, "bad:", 4))
		return 0;
	snprintf(why, len, "%s is not a device", shown);
	return -EINVAL;
}

static int on_trtype(void *ctx, const char *trtype, const char *shown, char *why, size_t len)
{
	(void)ctx;
	if (!strcasecmp(trtype, "tcp"))
		return 0;
	snprintf(why, len, "transport %s is not registered", shown);
	return -EINVAL;
}

static void on_warn(void *ctx, const char *msg)
{
	(void)ctx;
	FUZZ_CHECK(msg && msg[0]);
}

static const struct nvmg_conf_env env = {
	.warn = on_warn, .check_path = on_path, .check_trtype = on_trtype,
};

static bool nqn_ok(const char *nqn)
{
	return nqn && nqn[0] && strlen(nqn) <= NVMG_NQN_MAX;
}

static bool secret_ok(const struct nvmg_secret *k)
{
	return k->hash <= 3 && (k->len == 32 || k->len == 48 || k->len == 64);
}

static void check_model(const struct nvmg_conf *c)
{
	for (size_t i = 0; i < c->nr_subsys; i++) {
		const struct nvmg_conf_subsys *s = &c->subsys[i];

		FUZZ_CHECK(nqn_ok(s->nqn));
		FUZZ_CHECK(s->cntlid_min <= s->cntlid_max);
		for (size_t h = 0; h < s->nr_allowed_hosts; h++)
			FUZZ_CHECK(nqn_ok(s->allowed_hosts[h]));
		for (size_t n = 0; n < s->nr_ns; n++) {
			FUZZ_CHECK(s->ns[n].nsid && s->ns[n].nsid != 0xffffffffu);
			FUZZ_CHECK(s->ns[n].lba_size == 512 || s->ns[n].lba_size == 4096);
			FUZZ_CHECK(!s->ns[n].enable || (s->ns[n].path && s->ns[n].path[0]));
			for (size_t m = 0; m < n; m++)
				FUZZ_CHECK(s->ns[m].nsid != s->ns[n].nsid);
		}
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(c->subsys[j].nqn, s->nqn));
	}
	for (size_t i = 0; i < c->nr_ports; i++) {
		const struct nvmg_conf_port *p = &c->ports[i];

		FUZZ_CHECK(!strcasecmp(p->trtype, "tcp"));
		FUZZ_CHECK(p->traddr && p->traddr[0]);
		FUZZ_CHECK(!p->tls_required || p->tls);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(c->ports[j].portid != p->portid);
		for (size_t e = 0; e < p->nr_subsystems; e++) {
			bool found = false;

			for (size_t k = 0; k < c->nr_subsys && !found; k++)
				found = !strcmp(c->subsys[k].nqn, p->subsystems[e]);
			FUZZ_CHECK(found);
		}
	}
	for (size_t i = 0; i < c->nr_hosts; i++) {
		const struct nvmg_conf_host *h = &c->hosts[i];

		FUZZ_CHECK(nqn_ok(h->nqn));
		FUZZ_CHECK(!h->has_dhchap_key || secret_ok(&h->dhchap_key));
		FUZZ_CHECK(!h->has_dhchap_ctrl_key || secret_ok(&h->dhchap_ctrl_key));
		FUZZ_CHECK(!h->has_psk || (h->psk.hash >= 1 && h->psk.hash <= 2));
		FUZZ_CHECK(h->dhchap_hash <= 3 && h->dhchap_dhgroup <= 5);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *json = malloc(size + 1), err[512];
	struct nvmg_conf *conf = (void *)1;
	int ret;

	memcpy(json, data, size);
	json[size] = '\0';
	err[0] = '\0';
	ret = nvmg_conf_parse(json, &conf, err, sizeof(err), &env);
	if (ret) {
		FUZZ_CHECK(ret < 0 && !conf);
		FUZZ_CHECK(err[0] && !strchr(err, '\n') && strlen(err) < sizeof(err));
	} else {
		FUZZ_CHECK(conf);
		check_model(conf);
		nvmg_conf_free(conf);
	}
	free(json);
	return 0;
}
