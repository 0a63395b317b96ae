/* TLS 1.3 record protection with AES-GCM (see tls_rec.h). */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <string.h>
#include "lib/parse.h"
#include "net/tls_rec.h"

static const EVP_MD *suite_md(uint16_t cipher)
{
	return cipher == 0x1301 ? EVP_sha256() : cipher == 0x1302 ? EVP_sha384() : NULL;
}

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

int tls13_derive_keys(uint16_t cipher, const uint8_t *secret, size_t len, struct tls13_keys *k)
{
	const EVP_MD *md = suite_md(cipher);

	memset(k, 0, sizeof(*k));
	if (!md || len != (size_t)EVP_MD_get_size(md))
		return -EINVAL;
	k->cipher = cipher;
	k->key_len = cipher == 0x1301 ? 16 : 32;
	if (expand_label(md, secret, len, "key", k->key, k->key_len) ||
	    expand_label(md, secret, len, "iv", k->iv, sizeof(k->iv))) {
		OPENSSL_cleanse(k, sizeof(*k));
		return -EINVAL;
	}
	return 0;
}

int tls13_next_secret(uint16_t cipher, uint8_t *secret, size_t len)
{
	const EVP_MD *md = suite_md(cipher);
	uint8_t next[TLS13_SECRET_MAX];
	int ret;

	if (!md || len != (size_t)EVP_MD_get_size(md))
		return -EINVAL;
	ret = expand_label(md, secret, len, "traffic upd", next, len);
	if (!ret)
		memcpy(secret, next, len);
	OPENSSL_cleanse(next, sizeof(next));
	return ret;
}

size_t tls13_keylog_secret(const char *line, const char *label, uint8_t *out)
{
	size_t ll = strlen(label), n = 0;
	const char *p;

	if (strncmp(line, label, ll) || line[ll] != ' ')
		return 0;
	p = strchr(line + ll + 1, ' '); /* past the client random */
	if (!p)
		return 0;
	for (p++; p[0] && p[1] && n < TLS13_SECRET_MAX; p += 2) {
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

/* The generation's key into the context, its IV kept for the nonces. */
static int rec_keys(struct tls_rec *r)
{
	struct tls13_keys k;
	int ok, ret = tls13_derive_keys(r->cipher, r->secret, r->secret_len, &k);

	if (ret)
		return ret;
	memcpy(r->iv, k.iv, sizeof(r->iv));
	ok = r->enc ? EVP_EncryptInit_ex(r->ctx, NULL, NULL, k.key, NULL)
		    : EVP_DecryptInit_ex(r->ctx, NULL, NULL, k.key, NULL);
	OPENSSL_cleanse(&k, sizeof(k));
	return ok ? 0 : -EINVAL;
}

int tls_rec_init(struct tls_rec *r, bool enc, uint16_t cipher, const uint8_t *secret, size_t len,
		 uint64_t seq)
{
	const EVP_CIPHER *aead = cipher == 0x1301 ? EVP_aes_128_gcm()
			       : cipher == 0x1302 ? EVP_aes_256_gcm() : NULL;
	int ok, ret;

	memset(r, 0, sizeof(*r));
	if (!aead || len > sizeof(r->secret))
		return -EINVAL;
	r->ctx = EVP_CIPHER_CTX_new();
	if (!r->ctx)
		return -ENOMEM;
	/* The suite once; each record then only sets its nonce. */
	ok = enc ? EVP_EncryptInit_ex(r->ctx, aead, NULL, NULL, NULL)
		 : EVP_DecryptInit_ex(r->ctx, aead, NULL, NULL, NULL);
	r->cipher = cipher;
	r->enc = enc;
	r->secret_len = (uint8_t)len;
	memcpy(r->secret, secret, len);
	r->seq = seq;
	ret = ok ? rec_keys(r) : -ENOMEM;
	if (ret)
		tls_rec_fini(r);
	return ret;
}

void tls_rec_fini(struct tls_rec *r)
{
	EVP_CIPHER_CTX_free(r->ctx); /* clears its key schedule */
	OPENSSL_cleanse(r, sizeof(*r));
}

int tls_rec_update(struct tls_rec *r)
{
	int ret = tls13_next_secret(r->cipher, r->secret, r->secret_len);

	if (!ret)
		ret = rec_keys(r);
	r->seq = 0;
	return ret;
}

/* 5.3: the IV with the record's sequence number XORed into its end. */
static void nonce(const struct tls_rec *r, uint8_t out[12])
{
	memcpy(out, r->iv, 12);
	for (int i = 0; i < 8; i++)
		out[11 - i] ^= (uint8_t)(r->seq >> (8 * i));
}

int tls_rec_seal(struct tls_rec *r, uint8_t type, const struct iovec *iov, int niov, size_t off,
		 size_t n, uint8_t *out)
{
	size_t body = n + 1 + TLS_REC_TAG, done = 0;
	uint8_t iv[12], *p = out + TLS_REC_HDR;
	int len, ok;

	if (n > TLS_REC_MAX_PLAIN)
		return -EIO;
	/* The outer header says application data for every type (5.2). */
	out[0] = TLS_CT_APPLICATION_DATA;
	out[1] = 3;
	out[2] = 3;
	out[3] = (uint8_t)(body >> 8);
	out[4] = (uint8_t)body;
	nonce(r, iv);
	ok = EVP_EncryptInit_ex(r->ctx, NULL, NULL, NULL, iv) &&
	     EVP_EncryptUpdate(r->ctx, NULL, &len, out, TLS_REC_HDR);
	for (int i = 0; ok && i < niov && done < n; i++, off = 0) {
		size_t k = iov[i].iov_len - off;

		if (k > n - done)
			k = n - done;
		ok = EVP_EncryptUpdate(r->ctx, p, &len, (const uint8_t *)iov[i].iov_base + off, (int)k);
		p += len;
		done += k;
	}
	ok = ok && done == n && EVP_EncryptUpdate(r->ctx, p, &len, &type, 1);
	p += ok ? len : 0;
	ok = ok && EVP_EncryptFinal_ex(r->ctx, p, &len);
	p += ok ? len : 0;
	ok = ok && p == out + TLS_REC_HDR + n + 1 &&
	     EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_GCM_GET_TAG, TLS_REC_TAG, p);
	if (!ok)
		return -EIO;
	r->seq++;
	return 0;
}

int tls_rec_check_header(const uint8_t *hdr, size_t *len)
{
	*len = (size_t)hdr[3] << 8 | hdr[4];
	/* After the handshake every record is protected, so its outer type
	 * is application data; a change_cipher_spec now is unexpected too
	 * (5: only before the peer's Finished). legacy_record_version is
	 * 0x0303 in every protected record. */
	if (hdr[0] != TLS_CT_APPLICATION_DATA || hdr[1] != 3 || hdr[2] != 3)
		return -EPROTO;
	return *len < 1 + TLS_REC_TAG || *len > TLS_REC_MAX_CIPHER ? -EPROTO : 0;
}

int tls_rec_open(struct tls_rec *r, const uint8_t *rec, size_t len, uint8_t *out, size_t *n,
		 uint8_t *type)
{
	size_t plain = len - TLS_REC_TAG;
	uint8_t iv[12];
	int l, fl, ok;

	nonce(r, iv);
	ok = EVP_DecryptInit_ex(r->ctx, NULL, NULL, NULL, iv) &&
	     EVP_DecryptUpdate(r->ctx, NULL, &l, rec, TLS_REC_HDR) &&
	     EVP_DecryptUpdate(r->ctx, out, &l, rec + TLS_REC_HDR, (int)plain) &&
	     EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_GCM_SET_TAG, TLS_REC_TAG,
				 (void *)(rec + TLS_REC_HDR + plain)) &&
	     EVP_DecryptFinal_ex(r->ctx, out + l, &fl) > 0;
	if (!ok)
		return -EBADMSG;
	r->seq++;
	/* 5.4: the type is the last non-zero byte; zeros after it pad. */
	while (plain && !out[plain - 1])
		plain--;
	if (!plain || plain > TLS_REC_MAX_PLAIN + 1)
		return -EPROTO;
	*type = out[plain - 1];
	*n = plain - 1;
	return 0;
}
