/* "hosts": [{"nqn": NQN, "dhchap": {...}}], the hosts subsystems may allow,
 * and what each must prove. */
#include "conf/sections.h"

#include <stdlib.h>
#include <string.h>

#include "lib/secret.h"

typedef struct nvmg_conf_host host_t;

/* ---- "dhchap": {"key", "ctrl_key", "hash", "dhgroup"}, as nvmetcli saves
 * a host's configfs dhchap_* attributes; "" is no key. */

/* A DHHC-1 secret, checked (format, CRC) rather than trusted. A transformed
 * key (HH 01..03) must be as long as its hash's digest, as nvme
 * gen-dhchap-key makes it: Linux 6.12 keys the response's HMAC with the
 * transformed key but the secret's length, so no other length interoperates. */
static int dec_secret(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
		      void *base)
{
	static const size_t digest[] = { 0, 32, 48, 64 };
	host_t *h = base;
	bool ctrl = !strcmp(k->key, "ctrl_key");
	struct nvmg_secret *key = ctrl ? &h->dhchap_ctrl_key : &h->dhchap_key;
	const char *s;
	char why[128];
	int ret = nvmg_dec_str(d, v, &s);

	if (ret || !*s)
		return ret;
	if (nvmg_parse_dhchap_secret(s, key, why, sizeof(why)))
		return nvmg_dec_fail(d, "%s", why);
	if (key->hash && key->len != digest[key->hash]) {
		size_t len = key->len;
		uint8_t hash = key->hash;

		nvmg_secret_wipe(key);
		return nvmg_dec_fail(d, "the key is %zu bytes long; a DHHC-1:%02x key must be %zu",
				     len, hash, digest[hash]);
	}
	*(ctrl ? &h->has_dhchap_ctrl_key : &h->has_dhchap_key) = true;
	return 0;
}

/* Bidirectional authentication proves the host first. */
static int dhchap_check(struct nvmg_dec *d, const struct nvmg_dec_key *k, struct json_object *v,
			void *base)
{
	const host_t *h = base;

	(void)k, (void)v;
	if (h->has_dhchap_ctrl_key && !h->has_dhchap_key) {
		nvmg_dec_push_key(d, "ctrl_key");
		return nvmg_dec_fail(d, "a controller key needs a host key (\"key\")");
	}
	return 0;
}

static const struct nvmg_dec_enum dhchap_hashes = {
	"hash ", " is not hmac(sha256), hmac(sha384) or hmac(sha512)",
	{ { "hmac(sha256)", 1 }, { "hmac(sha384)", 2 }, { "hmac(sha512)", 3 } },
};

static const struct nvmg_dec_enum dhchap_groups = {
	"DH group ", " is not null, ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144 or ffdhe8192",
	{ { "null", 0 }, { "ffdhe2048", 1 }, { "ffdhe3072", 2 }, { "ffdhe4096", 3 },
	  { "ffdhe6144", 4 }, { "ffdhe8192", 5 } },
};

/* The hash and group are the ones the exchange must use (the host offers
 * several, as Linux's does); unset, nvmetcli's defaults. */
static const struct nvmg_dec_key dhchap_keys[] = {
	{ .key = "key", .type = NVMG_DEC_CUSTOM, .fn = dec_secret },
	{ .key = "ctrl_key", .type = NVMG_DEC_CUSTOM, .fn = dec_secret },
	{ .key = "hash", .type = NVMG_DEC_ENUM, NVMG_DEC_FIELD(host_t, dhchap_hash),
	  .names = &dhchap_hashes, .dflt = 1 },
	{ .key = "dhgroup", .type = NVMG_DEC_ENUM, NVMG_DEC_FIELD(host_t, dhchap_dhgroup),
	  .names = &dhchap_groups, .dflt = 0 },
	{ .type = NVMG_DEC_CHECK, .fn = dhchap_check },
};
static const struct nvmg_dec_table dhchap_table = NVMG_DEC_TABLE(dhchap_keys);

static int host_unique(struct nvmg_dec *d, const struct nvmg_dec_key *k, void *base)
{
	const host_t *hosts = d->arr;

	(void)k;
	for (size_t j = 0; j < d->idx; j++)
		if (!strcmp(hosts[j].nqn, ((host_t *)base)->nqn))
			return nvmg_dec_fail(d, "duplicate host NQN (also hosts[%zu])", j);
	return 0;
}

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

static const struct nvmg_dec_key host_keys[] = {
	/* Decoded into the host's own fields (no offset). */
	{ .key = "dhchap", .type = NVMG_DEC_OBJECT, .sub = &dhchap_table },
	{ .key = "nqn", .type = NVMG_DEC_NQN, .flags = NVMG_DEC_REQUIRED, NVMG_DEC_FIELD(host_t, nqn),
	  .check = host_unique },
	{ .key = "psk", .type = NVMG_DEC_CUSTOM, .fn = dec_psk },
};

static const struct nvmg_dec_table host_table = NVMG_DEC_TABLE(host_keys);

const struct nvmg_dec_key nvmg_conf_host = { .type = NVMG_DEC_OBJECT, .sub = &host_table };

void nvmg_conf_host_free(struct nvmg_conf_host *h)
{
	nvmg_secret_wipe(&h->dhchap_key);
	nvmg_secret_wipe(&h->dhchap_ctrl_key);
	nvmg_secret_wipe(&h->psk);
	free(h->nqn);
}
