/* Kernel TLS keys and socket options (see tcp_ktls.h). */
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <string.h>
#include <sys/socket.h>
#include "lib/parse.h"
#include "net/tcp_ktls.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* HKDF-Expand-Label(secret, label, "", len) of RFC 8446 7.1. */
static int expand_label(const EVP_MD *md, const uint8_t *secret, size_t slen, const char *label,
			uint8_t *out, size_t len)
{
	uint8_t info[2 + 1 + 6 + 16 + 1];
	size_t ll = strlen(label), n = 0;
	EVP_PKEY_CTX *pc;
	int ok;

	info[n++] = (uint8_t)(len >> 8);
	info[n++] = (uint8_t)len;
	info[n++] = (uint8_t)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	memcpy(info + n + 6, label, ll);
	n += 6 + ll;
	info[n++] = 0; /* empty context */
	pc = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	ok = pc && EVP_PKEY_derive_init(pc) > 0 &&
	     EVP_PKEY_CTX_set_hkdf_mode(pc, EVP_PKEY_HKDEF_MODE_EXPAND_ONLY) > 0 &&
	     EVP_PKEY_CTX_set_hkdf_md(pc, md) > 0 &&
	     EVP_PKEY_CTX_set1_hkdf_key(pc, secret, (int)slen) > 0 &&
	     EVP_PKEY_CTX_add1_hkdf_info(pc, info, (int)n) > 0 && EVP_PKEY_derive(pc, out, &len) > 0;
	EVP_PKEY_CTX_free(pc);
	return ok ? 0 : -EINVAL;
}

int tcp_ktls_derive(uint16_t cipher, const uint8_t *secret, size_t len, struct tcp_ktls_keys *k)
{
	const EVP_MD *md;

	memset(k, 0, sizeof(*k));
	switch (cipher) {
	case 0x1301:
		md = EVP_sha256();
		k->key_len = 16;
		break;
	case 0x1302:
		md = EVP_sha384();
		k->key_len = 32;
		break;
	default:
		return -EINVAL;
	}
	if (len != (size_t)EVP_MD_get_size(md))
		return -EINVAL;
	k->cipher = cipher;
	if (expand_label(md, secret, len, "key", k->key, k->key_len) ||
	    expand_label(md, secret, len, "iv", k->iv, sizeof(k->iv))) {
		OPENSSL_cleanse(k, sizeof(*k));
		return -EINVAL;
	}
	return 0;
}

int tcp_ktls_attach(int fd)
{
	if (!setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")))
		return 0;
	/* Already attached (the other direction went first). */
	return errno == EEXIST ? 0 : -errno;
}

/* The kernel's layout: TLS 1.3's 12-byte IV is its 4-byte "salt" and
 * 8-byte "iv"; the record sequence number is big-endian. */
#define FILL_INFO(ci, type, k, seq)                                            \
	do {                                                                   \
		(ci).info.version = TLS_1_3_VERSION;                           \
		(ci).info.cipher_type = (type);                                \
		memcpy((ci).salt, (k)->iv, 4);                                 \
		memcpy((ci).iv, (k)->iv + 4, 8);                               \
		memcpy((ci).key, (k)->key, sizeof((ci).key));                  \
		for (int i_ = 0; i_ < 8; i_++)                                 \
			(ci).rec_seq[i_] = (uint8_t)((seq) >> (56 - 8 * i_));  \
	} while (0)

int tcp_ktls_set(int fd, int tx, const struct tcp_ktls_keys *k, uint64_t seq)
{
	int opt = tx ? TLS_TX : TLS_RX, ret;

	if (k->cipher == 0x1301) {
		struct tls12_crypto_info_aes_gcm_128 ci = { 0 };

		FILL_INFO(ci, TLS_CIPHER_AES_GCM_128, k, seq);
		ret = setsockopt(fd, SOL_TLS, opt, &ci, sizeof(ci));
		OPENSSL_cleanse(&ci, sizeof(ci));
	} else if (k->cipher == 0x1302) {
		struct tls12_crypto_info_aes_gcm_256 ci = { 0 };

		FILL_INFO(ci, TLS_CIPHER_AES_GCM_256, k, seq);
		ret = setsockopt(fd, SOL_TLS, opt, &ci, sizeof(ci));
		OPENSSL_cleanse(&ci, sizeof(ci));
	} else {
		return -EINVAL;
	}
	return ret ? -errno : 0;
}

size_t tcp_ktls_keylog_secret(const char *line, const char *label, uint8_t *out)
{
	size_t ll = strlen(label), n = 0;
	const char *p;

	if (strncmp(line, label, ll) || line[ll] != ' ')
		return 0;
	p = strchr(line + ll + 1, ' '); /* past the client random */
	if (!p)
		return 0;
	for (p++; p[0] && p[1] && n < KTLS_SECRET_MAX; p += 2) {
		int hi = nvmg_hexval(p[0]), lo = nvmg_hexval(p[1]);

		if (hi < 0 || lo < 0)
			break;
		out[n++] = (uint8_t)(hi << 4 | lo);
	}
	if (*p) { /* trailing garbage or an odd digit */
		OPENSSL_cleanse(out, n);
		return 0;
	}
	return n;
}
