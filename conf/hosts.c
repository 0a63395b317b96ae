/* "hosts": [{"nqn": NQN, "dhchap": {...}}], the hosts subsystems may allow. */
#include "conf/sections.h"

#include <stdlib.h>
#include <string.h>

/* nvmetcli writes "dhchap" for every host; hash and dhgroup always have
 * values, and only a secret turns DH-HMAC-CHAP on. */
static bool dhchap_unset(const struct nvmg_dec_key *k, struct json_object *v, const void *base)
{
	static const char *const secrets[] = { "key", "ctrl_key" };
	struct json_object *x;

	(void)k, (void)base;
	if (!json_object_is_type(v, json_type_object))
		return false;
	for (size_t i = 0; i < 2; i++)
		if (json_object_object_get_ex(v, secrets[i], &x) &&
		    !(json_object_is_type(x, json_type_string) && !json_object_get_string_len(x)))
			return false;
	return true;
}

typedef struct nvmg_conf_host host_t;

/* "psk": the host's configured TLS PSK as `nvme gen-tls-key` prints it
 * (our extension: nvmetcli has no place for it; the Linux target reads
 * the same key from its keyring). Checked, never shown in a message. */
static int dec_psk(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		   void *base)
{
	host_t *h = base;
	const char *s = NULL;
	char why[128];
	int ret = nvmg_dec_str(d, v, &s);

	(void)k;
	if (ret || !*s)
		return ret;
	if (nvmg_parse_tls_psk(s, &h->psk, why, sizeof(why)))
		return nvmg_dec_fail(d, "%s", why);
	h->has_psk = true;
	return 0;
}

static int host_unique(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	const host_t *hosts = d->arr;

	(void)k;
	for (size_t j = 0; j < d->idx; j++)
		if (!strcmp(hosts[j].nqn, ((host_t *)base)->nqn))
			return nvmg_dec_fail(d, "duplicate host NQN (also hosts[%zu])", j);
	return 0;
}

static const struct nvmg_dec_key host_keys[] = {
	/* Refused: ignoring the key would admit the host unauthenticated. */
	{ .key = "dhchap", .rule = NVMG_DEC_REFUSE, .harmless = dhchap_unset,
	  .msg = "DH-HMAC-CHAP authentication is not supported yet" },
	{ .key = "psk", .type = NVMG_DEC_CUSTOM, .fn = dec_psk },
	{ .key = "nqn", .type = NVMG_DEC_NQN, .flags = NVMG_DEC_REQUIRED, NVMG_DEC_FIELD(host_t, nqn),
	  .check = host_unique },
};

static const struct nvmg_dec_table host_table = NVMG_DEC_TABLE(host_keys);

const struct nvmg_dec_key nvmg_conf_host = { .type = NVMG_DEC_OBJECT, .sub = &host_table };

void nvmg_conf_host_free(struct nvmg_conf_host *h)
{
	free(h->nqn);
}
