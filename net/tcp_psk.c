/* NVMe/TCP TLS PSK identities and derivations (see tcp_psk.h). */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include "net/tcp_psk.h"

static const EVP_MD *hash_md(uint8_t hash)
{
	return hash == 1 ? EVP_sha256() : hash == 2 ? EVP_sha384() : NULL;
}

static size_t hash_len(uint8_t hash)
{
	return hash == 1 ? 32 : hash == 2 ? 48 : 0;
}

static bool nqn_ok(const char *s, size_t n)
{
	/* NVMe Base 2.0: an NQN is at most 223 bytes */
	return n > 0 && n <= 223 && !memchr(s, ' ', n) && !memchr(s, '\0', n);
}

int nvmg_psk_id_parse(const void *identity, size_t len, struct nvmg_psk_id *out)
{
	const char *s = identity, *end = s + len, *f[3] = { 0 }, *fe[3] = { 0 };
	unsigned nf = 0;
	size_t dlen;

	memset(out, 0, sizeof(*out));
	/* "NVMe" V "R" HH " " */
	if (len < 10 || memcmp(s, "NVMe", 4) || (s[4] != '0' && s[4] != '1') || s[5] != 'R' ||
	    s[6] != '0' || (s[7] != '1' && s[7] != '2') || s[8] != ' ')
		return -EINVAL;
	out->version = (unsigned)(s[4] - '0');
	out->hash = (uint8_t)(s[7] - '0');
	for (const char *p = s + 9; p < end;) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));

		if (nf == 3)
			return -EINVAL;
		f[nf] = p;
		fe[nf++] = sp ? sp : end;
		if (!sp)
			break;
		p = sp + 1;
		if (p == end)
			return -EINVAL; /* trailing space */
	}
	if (nf != 2 + out->version)
		return -EINVAL;
	for (unsigned i = 0; i < 2; i++)
		if (!nqn_ok(f[i], (size_t)(fe[i] - f[i])))
			return -EINVAL;
	memcpy(out->hostnqn, f[0], (size_t)(fe[0] - f[0]));
	memcpy(out->subnqn, f[1], (size_t)(fe[1] - f[1]));
	if (out->version == 1) {
		/* base64 of the hash: 44 or 64 characters */
		dlen = (size_t)(fe[2] - f[2]);
		if (dlen != (hash_len(out->hash) + 2) / 3 * 4)
			return -EINVAL;
		for (size_t i = 0; i < dlen; i++) {
			char ch = f[2][i];

			if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			      (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' || ch == '='))
				return -EINVAL;
		}
		memcpy(out->digest, f[2], dlen);
	}
	return 0;
}

int nvmg_psk_id_format(const struct nvmg_psk_id *id, char *buf, size_t len)
{
	int n;

	if (id->version == 0)
		n = snprintf(buf, len, "NVMe0R%02u %s %s", id->hash, id->hostnqn, id->subnqn);
	else
		n = snprintf(buf, len, "NVMe1R%02u %s %s %s", id->hash, id->hostnqn, id->subnqn,
			     id->digest);
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

/* HKDF-Extract with the zero salt, then HKDF-Expand-Label(prk, label,
 * context, l) in the spelling kdf names. */
static int hkdf_label(uint8_t hash, const uint8_t *ikm, size_t ikm_len, enum nvmg_psk_kdf kdf,
		      const char *label, const void *ctx, size_t ctx_len, uint8_t *out, size_t l)
{
	const EVP_MD *md = hash_md(hash);
	uint8_t zero[NVMG_PSK_MAX] = { 0 }, prk[EVP_MAX_MD_SIZE], t[EVP_MAX_MD_SIZE];
	uint8_t info[2 + 1 + 6 + 32 + 1 + NVMG_PSK_ID_MAX + 1];
	size_t hl = hash_len(hash), llen = strlen(label), n = 0, done = 0, tl = 0;
	unsigned prk_len = 0, olen;
	int ret = -EINVAL;

	if (!md || ctx_len > NVMG_PSK_ID_MAX || llen > 32 || l > 255 * hl)
		return -EINVAL;
	if (!HMAC(md, zero, (int)hl, ikm, ikm_len, prk, &prk_len))
		return -EINVAL;
	if (kdf == NVMG_PSK_KDF_RFC8446) {
		info[n++] = (uint8_t)(l >> 8);
		info[n++] = (uint8_t)l;
		info[n++] = (uint8_t)(6 + llen);
	} else {
		/* libnvme adds its uint16_t as it lies in memory (x86: LE). */
		info[n++] = (uint8_t)l;
		info[n++] = (uint8_t)(l >> 8);
	}
	memcpy(info + n, "tls13 ", 6);
	memcpy(info + n + 6, label, llen);
	n += 6 + llen;
	if (kdf == NVMG_PSK_KDF_RFC8446) {
		if (ctx_len > 255)
			return -EINVAL;
		info[n++] = (uint8_t)ctx_len;
	}
	memcpy(info + n, ctx, ctx_len);
	n += ctx_len;
	/* HKDF-Expand: T(i) = HMAC(prk, T(i-1) | info | i) */
	for (uint8_t i = 1; done < l; i++) {
		uint8_t buf[EVP_MAX_MD_SIZE + sizeof(info)];
		size_t bl = 0;

		memcpy(buf, t, tl);
		bl = tl;
		memcpy(buf + bl, info, n);
		bl += n;
		buf[bl++] = i;
		if (!HMAC(md, prk, (int)prk_len, buf, bl, t, &olen))
			goto out;
		OPENSSL_cleanse(buf, bl);
		tl = olen;
		memcpy(out + done, t, l - done < tl ? l - done : tl);
		done += l - done < tl ? l - done : tl;
	}
	ret = 0;
out:
	OPENSSL_cleanse(prk, sizeof(prk));
	OPENSSL_cleanse(t, sizeof(t));
	return ret;
}

int nvmg_psk_retained(const struct nvmg_secret *key, const char *hostnqn, enum nvmg_psk_kdf kdf,
		      uint8_t *retained)
{
	if (key->len != hash_len(key->hash))
		return -EINVAL;
	return hkdf_label(key->hash, key->key, key->len, kdf, "HostNQN", hostnqn, strlen(hostnqn),
			  retained, key->len);
}

int nvmg_psk_digest(uint8_t hash, const uint8_t *retained, size_t len, const char *hostnqn,
		    const char *subnqn, char digest[NVMG_PSK_DIGEST_MAX])
{
	const EVP_MD *md = hash_md(hash);
	char msg[2 * NVME_NQN_LENGTH + 32];
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned mlen = 0;
	int n = snprintf(msg, sizeof(msg), "%s %s NVMe-over-Fabrics", hostnqn, subnqn);

	if (!md || n < 0 || (size_t)n >= sizeof(msg) ||
	    !HMAC(md, retained, (int)len, (const uint8_t *)msg, (size_t)n, mac, &mlen))
		return -EINVAL;
	EVP_EncodeBlock((unsigned char *)digest, mac, (int)mlen);
	return 0;
}

int nvmg_psk_tls(const struct nvmg_psk_id *id, enum nvmg_psk_kdf kdf, const uint8_t *retained,
		 size_t len, uint8_t *tls_psk)
{
	char ctx[NVMG_PSK_ID_MAX];
	int n;

	/* Version 0: the whole identity; version 1: "<hh> <digest>". */
	if (id->version == 0)
		n = nvmg_psk_id_format(id, ctx, sizeof(ctx));
	else
		n = snprintf(ctx, sizeof(ctx), "%02u %s", id->hash, id->digest);
	if (n < 0)
		return -EINVAL;
	return hkdf_label(id->hash, retained, len, kdf, "nvme-tls-psk", ctx, (size_t)n, tls_psk,
			  len);
}

int nvmg_psk_accept(const struct nvmg_secret *key, const struct nvmg_psk_id *id,
		    uint8_t tls_psk[NVMG_PSK_MAX], size_t *len)
{
	static const enum nvmg_psk_kdf kdfs[] = { NVMG_PSK_KDF_LIBNVME, NVMG_PSK_KDF_RFC8446 };
	uint8_t retained[NVMG_PSK_MAX];
	char digest[NVMG_PSK_DIGEST_MAX];
	int ret = -EACCES;

	if (id->hash != key->hash || key->len != hash_len(key->hash))
		return -EACCES;
	for (size_t i = 0; i < (id->version ? 2 : 1); i++) {
		if (nvmg_psk_retained(key, id->hostnqn, kdfs[i], retained))
			break;
		if (id->version == 1) {
			if (nvmg_psk_digest(key->hash, retained, key->len, id->hostnqn, id->subnqn,
					    digest))
				break;
			if (CRYPTO_memcmp(digest, id->digest, strlen(digest) + 1))
				continue;
		}
		if (!nvmg_psk_tls(id, kdfs[i], retained, key->len, tls_psk)) {
			*len = key->len;
			ret = 0;
		}
		break;
	}
	OPENSSL_cleanse(retained, sizeof(retained));
	return ret;
}

int nvmg_psk_connect(const struct nvmg_secret *key, const char *hostnqn, const char *subnqn,
		     unsigned version, enum nvmg_psk_kdf kdf, struct nvmg_psk_id *id,
		     uint8_t tls_psk[NVMG_PSK_MAX])
{
	uint8_t retained[NVMG_PSK_MAX];
	int ret = -EINVAL;

	memset(id, 0, sizeof(*id));
	if (version > 1 || !nqn_ok(hostnqn, strlen(hostnqn)) || !nqn_ok(subnqn, strlen(subnqn)))
		return -EINVAL;
	id->version = version;
	id->hash = key->hash;
	strcpy(id->hostnqn, hostnqn);
	strcpy(id->subnqn, subnqn);
	if (nvmg_psk_retained(key, hostnqn, kdf, retained))
		goto out;
	if (version == 1 &&
	    nvmg_psk_digest(key->hash, retained, key->len, hostnqn, subnqn, id->digest))
		goto out;
	ret = nvmg_psk_tls(id, kdf, retained, key->len, tls_psk);
out:
	OPENSSL_cleanse(retained, sizeof(retained));
	return ret;
}
