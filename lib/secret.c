/* DHHC-1 and NVMeTLSkey-1 secrets (see secret.h). */
#include <errno.h>
#include <isa-l/crc.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "lib/parse.h"
#include "lib/secret.h"

/* "PREFIX:HH:BASE64:" → hash HH and the bytes before the CRC. */
static int parse_secret(const char *s, const char *prefix, struct nvmg_secret *out, char *err,
			size_t errlen)
{
	size_t plen = strlen(prefix), blen;
	uint8_t raw[NVMG_SECRET_MAX + 4 + 3];
	const char *b64, *end;
	int hi, lo, n, pad = 0;
	uint32_t crc;

	if (strncmp(s, prefix, plen) || s[plen] != ':') {
		snprintf(err, errlen, "not a %s secret (%s:HH:BASE64:)", prefix, prefix);
		return -EINVAL;
	}
	s += plen + 1;
	hi = nvmg_hexval(s[0]);
	lo = hi < 0 ? -1 : nvmg_hexval(s[1]);
	if (lo < 0 || s[2] != ':') {
		snprintf(err, errlen, "the hash field is not two hex digits");
		return -EINVAL;
	}
	b64 = s + 3;
	end = strchr(b64, ':');
	if (!end || end[1]) {
		snprintf(err, errlen, "the key must end with ':' and nothing after it");
		return -EINVAL;
	}
	blen = (size_t)(end - b64);
	/* Longest valid: 68 bytes → 92 base64 characters. */
	if (blen == 0 || blen % 4 || blen / 4 * 3 > sizeof(raw)) {
		snprintf(err, errlen, "the key has a wrong length");
		return -EINVAL;
	}
	for (size_t i = 0; i < blen; i++) {
		char c = b64[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  c == '+' || c == '/' || (c == '=' && i >= blen - 2);

		if (!ok || (pad && c != '=')) {
			snprintf(err, errlen, "the key is not base64");
			return -EINVAL;
		}
		pad += c == '=';
	}
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)blen);
	if (n < 0 || n - pad < 4) {
		snprintf(err, errlen, "the key is not base64");
		return -EINVAL;
	}
	n -= pad;
	n -= 4;
	crc = crc32_gzip_refl(0, raw, (uint64_t)n);
	if ((uint32_t)(raw[n] | raw[n + 1] << 8 | raw[n + 2] << 16 | (uint32_t)raw[n + 3] << 24) != crc) {
		OPENSSL_cleanse(raw, sizeof(raw));
		snprintf(err, errlen, "the key's CRC does not match (a typing error?)");
		return -EINVAL;
	}
	if ((size_t)n > sizeof(out->key)) {
		OPENSSL_cleanse(raw, sizeof(raw));
		snprintf(err, errlen, "the key is %d bytes long", n);
		return -EINVAL;
	}
	out->hash = (uint8_t)(hi << 4 | lo);
	memcpy(out->key, raw, (size_t)n);
	out->len = (size_t)n;
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

int nvmg_parse_dhchap_secret(const char *s, struct nvmg_secret *out, char *err, size_t errlen)
{
	struct nvmg_secret k;
	int ret = parse_secret(s, "DHHC-1", &k, err, errlen);

	if (ret)
		return ret;
	if (k.hash > 3)
		snprintf(err, errlen, "hash %02x is not 00 (none), 01, 02 or 03 (SHA-256/384/512)",
			 k.hash);
	else if (k.len != 32 && k.len != 48 && k.len != 64)
		snprintf(err, errlen, "the key is %zu bytes long (32, 48 or 64)", k.len);
	else
		ret = 1;
	if (ret == 1)
		*out = k;
	nvmg_secret_wipe(&k);
	return ret == 1 ? 0 : -EINVAL;
}

int nvmg_parse_tls_psk(const char *s, struct nvmg_secret *out, char *err, size_t errlen)
{
	struct nvmg_secret k;
	int ret = parse_secret(s, "NVMeTLSkey-1", &k, err, errlen);

	if (ret)
		return ret;
	if (k.hash != 1 && k.hash != 2)
		snprintf(err, errlen, "hash %02x is not 01 (SHA-256) or 02 (SHA-384)", k.hash);
	else if (k.len != (k.hash == 1 ? 32u : 48u))
		snprintf(err, errlen, "the PSK is %zu bytes long (%u for hash %02x)", k.len,
			 k.hash == 1 ? 32u : 48u, k.hash);
	else
		ret = 1;
	if (ret == 1)
		*out = k;
	nvmg_secret_wipe(&k);
	return ret == 1 ? 0 : -EINVAL;
}

void nvmg_secret_wipe(struct nvmg_secret *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
}
