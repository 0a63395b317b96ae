/* DH-HMAC-CHAP's hashes, key transformation, responses and FFDHE session
 * (see auth_crypto.h), on OpenSSL 3's EVP_MAC, EVP_Digest and EVP_PKEY. */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/dh.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include "nvme/auth_crypto.h"

static const struct {
	const char *hmac, *digest;
	size_t len;
} hashes[] = {
	[1] = { "hmac(sha256)", "SHA256", 32 },
	[2] = { "hmac(sha384)", "SHA384", 48 },
	[3] = { "hmac(sha512)", "SHA512", 64 },
};

/* The names are nvmetcli's (configfs dhchap_dhgroup); the lengths the
 * primes' of RFC 7919. */
static const struct {
	const char *name;
	size_t len;
} groups[] = {
	{ "null", 0 }, { "ffdhe2048", 256 }, { "ffdhe3072", 384 },
	{ "ffdhe4096", 512 }, { "ffdhe6144", 768 }, { "ffdhe8192", 1024 },
};

size_t nvmg_auth_hash_len(uint8_t hash)
{
	return hash >= 1 && hash <= 3 ? hashes[hash].len : 0;
}

const char *nvmg_auth_hash_name(uint8_t hash)
{
	return hash >= 1 && hash <= 3 ? hashes[hash].hmac : NULL;
}

uint8_t nvmg_auth_hash_id(const char *name)
{
	for (uint8_t i = 1; i <= 3; i++)
		if (!strcasecmp(name, hashes[i].hmac))
			return i;
	return 0;
}

const char *nvmg_auth_dhgroup_name(uint8_t gid)
{
	return gid < sizeof(groups) / sizeof(groups[0]) ? groups[gid].name : NULL;
}

int nvmg_auth_dhgroup_id(const char *name)
{
	for (int i = 0; i < (int)(sizeof(groups) / sizeof(groups[0])); i++)
		if (!strcasecmp(name, groups[i].name))
			return i;
	return -1;
}

size_t nvmg_auth_dhgroup_len(uint8_t gid)
{
	return gid < sizeof(groups) / sizeof(groups[0]) ? groups[gid].len : 0;
}

int nvmg_auth_random(void *out, size_t len)
{
	return RAND_bytes(out, (int)len) == 1 ? 0 : -EIO;
}

/* ---- HMAC over a list of pieces ---- */

struct piece {
	const void *p;
	size_t len;
};

static int hmac(uint8_t hash, const uint8_t *key, size_t key_len, const struct piece *pc,
		size_t n, uint8_t *out)
{
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t outl = 0;
	int ret = -EINVAL;

	if (!nvmg_auth_hash_len(hash))
		return -EINVAL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)hashes[hash].digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!mac || !(ctx = EVP_MAC_CTX_new(mac)) || !EVP_MAC_init(ctx, key, key_len, params))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (pc[i].len && !EVP_MAC_update(ctx, pc[i].p, pc[i].len))
			goto out;
	if (EVP_MAC_final(ctx, out, &outl, NVMG_AUTH_MAX_HL) && outl == hashes[hash].len)
		ret = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ret;
}

int nvmg_auth_transform_key(const struct nvmg_secret *key, const char *nqn, uint8_t *out,
			    size_t *out_len)
{
	const struct piece pc[] = { { nqn, strlen(nqn) }, { "NVMe-over-Fabrics", 17 } };

	if (key->hash == 0) {
		memcpy(out, key->key, key->len);
		*out_len = key->len;
		return 0;
	}
	if (hmac(key->hash, key->key, key->len, pc, 2, out))
		return -EINVAL;
	*out_len = nvmg_auth_hash_len(key->hash);
	return 0;
}

int nvmg_auth_augmented_challenge(uint8_t hash, const uint8_t *skey, size_t skey_len,
				  const uint8_t *chal, uint8_t *out)
{
	uint8_t hkey[NVMG_AUTH_MAX_HL];
	size_t hl = nvmg_auth_hash_len(hash);
	struct piece pc = { chal, hl };
	int ret;

	if (!hl || !EVP_Digest(skey, skey_len, hkey, NULL, EVP_get_digestbyname(hashes[hash].digest),
			       NULL))
		return -EINVAL;
	ret = hmac(hash, hkey, hl, &pc, 1, out);
	OPENSSL_cleanse(hkey, sizeof(hkey));
	return ret;
}

int nvmg_auth_response(uint8_t hash, const uint8_t *key, size_t key_len, const uint8_t *chal,
		       uint32_t seq, uint16_t tid, const char *who, const char *nqn1,
		       const char *nqn2, uint8_t *out)
{
	uint8_t s[4] = { (uint8_t)seq, (uint8_t)(seq >> 8), (uint8_t)(seq >> 16),
			 (uint8_t)(seq >> 24) };
	uint8_t t[2] = { (uint8_t)tid, (uint8_t)(tid >> 8) };
	uint8_t zero = 0;
	const struct piece pc[] = {
		{ chal, nvmg_auth_hash_len(hash) }, { s, 4 }, { t, 2 },
		{ &zero, 1 }, /* SC_C: no secure channel concatenation */
		{ who, strlen(who) }, { nqn1, strlen(nqn1) }, { &zero, 1 }, { nqn2, strlen(nqn2) },
	};

	return hmac(hash, key, key_len, pc, sizeof(pc) / sizeof(pc[0]), out);
}

/* ---- FFDHE ---- */

struct nvmg_dh {
	EVP_PKEY *pkey;
	uint8_t gid;
};

struct nvmg_dh *nvmg_dh_new(uint8_t gid)
{
	struct nvmg_dh *dh;
	EVP_PKEY_CTX *ctx;
	OSSL_PARAM params[2];

	if (!nvmg_auth_dhgroup_len(gid) || !(dh = OPENSSL_zalloc(sizeof(*dh))))
		return NULL;
	dh->gid = gid;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     (char *)groups[gid].name, 0);
	params[1] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0 || !EVP_PKEY_CTX_set_params(ctx, params) ||
	    EVP_PKEY_generate(ctx, &dh->pkey) <= 0) {
		EVP_PKEY_CTX_free(ctx);
		OPENSSL_free(dh);
		return NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return dh;
}

void nvmg_dh_free(struct nvmg_dh *dh)
{
	if (!dh)
		return;
	EVP_PKEY_free(dh->pkey);
	OPENSSL_free(dh);
}

int nvmg_dh_public(const struct nvmg_dh *dh, uint8_t *out, size_t len)
{
	BIGNUM *pub = NULL;
	int ret = -EINVAL;

	if (len == nvmg_auth_dhgroup_len(dh->gid) &&
	    EVP_PKEY_get_bn_param(dh->pkey, OSSL_PKEY_PARAM_PUB_KEY, &pub) &&
	    BN_bn2binpad(pub, out, (int)len) == (int)len)
		ret = 0;
	BN_free(pub);
	return ret;
}

/* The peer's value as a key of our group, when 1 < y < p - 1: the only
 * check a safe-prime group needs (the other small subgroup is {1, p-1}). */
static EVP_PKEY *peer_key(const struct nvmg_dh *dh, const uint8_t *peer, size_t len)
{
	BIGNUM *y = BN_bin2bn(peer, (int)len, NULL), *p = NULL, *pm1 = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	if (!y || !EVP_PKEY_get_bn_param(dh->pkey, OSSL_PKEY_PARAM_FFC_P, &p) ||
	    !(pm1 = BN_dup(p)) || !BN_sub_word(pm1, 1))
		goto out;
	if (BN_cmp(y, BN_value_one()) <= 0 || BN_cmp(y, pm1) >= 0)
		goto out;
	if (!(bld = OSSL_PARAM_BLD_new()) ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, groups[dh->gid].name, 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, y) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)))
		goto out;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		key = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(y);
	BN_free(p);
	BN_free(pm1);
	return key;
}

int nvmg_dh_shared(const struct nvmg_dh *dh, const uint8_t *peer, size_t len, uint8_t *out)
{
	EVP_PKEY *pk;
	EVP_PKEY_CTX *ctx = NULL;
	size_t outl = len;
	int ret = -EINVAL;

	if (len != nvmg_auth_dhgroup_len(dh->gid) || !(pk = peer_key(dh, peer, len)))
		return -EINVAL;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, dh->pkey, NULL);
	/* Padded to the prime's length, as the Linux host's kpp computes it. */
	if (ctx && EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_CTX_set_dh_pad(ctx, 1) > 0 &&
	    EVP_PKEY_derive_set_peer_ex(ctx, pk, 0) > 0 && EVP_PKEY_derive(ctx, out, &outl) > 0 &&
	    outl == len)
		ret = 0;
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return ret;
}
