/* TLS 1.3 record protection (RFC 8446 5.2-5.4, 7.1-7.3) with AES-GCM,
 * for the data path once OpenSSL finished the handshake: the traffic
 * keys from a traffic secret (also what kernel TLS takes, tcp_ktls.h),
 * KeyUpdate's next secret, and one direction's record sealing and
 * opening through EVP. OpenSSL's SSL layer would copy every record into
 * its own buffer and out again; here a record is sealed straight from
 * the caller's pieces into the output and opened straight into where its
 * plaintext belongs (tls_chan.c decides where). The AEAD itself is
 * OpenSSL's; only the framing (header, nonce, inner content type,
 * padding) is ours, and it is small. */
#ifndef NVMG_TLS_REC_H
#define NVMG_TLS_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define TLS13_SECRET_MAX 48 /* SHA-384 */

#define TLS_REC_HDR 5
#define TLS_REC_TAG 16
#define TLS_REC_MAX_PLAIN 16384u                         /* 2^14 (5.1) */
#define TLS_REC_MAX_CIPHER (TLS_REC_MAX_PLAIN + 256u)    /* 5.2 */
/* A whole record of n content bytes: header, content, type, tag. */
#define TLS_REC_SIZE(n) (TLS_REC_HDR + (n) + 1 + TLS_REC_TAG)

enum {
	TLS_CT_CHANGE_CIPHER_SPEC = 20,
	TLS_CT_ALERT = 21,
	TLS_CT_HANDSHAKE = 22,
	TLS_CT_APPLICATION_DATA = 23,
};

#define TLS_HS_KEY_UPDATE 24
#define TLS_HS_NEW_SESSION_TICKET 4

/* One direction's traffic keys (what kernel TLS takes too). */
struct tls13_keys {
	uint16_t cipher; /* 0x1301 TLS_AES_128_GCM_SHA256, 0x1302 _256_GCM_SHA384 */
	uint8_t key[32];
	uint8_t iv[12];
	uint8_t key_len;
};

/* The key and IV of RFC 8446 7.3 from a traffic secret of the suite's
 * hash (HKDF-Expand-Label "key" and "iv" with an empty context).
 * 0, or -EINVAL for an unknown suite or a secret of the wrong length. */
int tls13_derive_keys(uint16_t cipher, const uint8_t *secret, size_t len, struct tls13_keys *k);

/* KeyUpdate (7.2): secret becomes the next generation's, in place. */
int tls13_next_secret(uint16_t cipher, uint8_t *secret, size_t len);

/* A key log line OpenSSL gave ("CLIENT_TRAFFIC_SECRET_0 <random> <hex>"):
 * the secret of label into out (up to TLS13_SECRET_MAX bytes). Its
 * length, or 0 when the line is another label or malformed. */
size_t tls13_keylog_secret(const char *line, const char *label, uint8_t *out);

/* One direction of a session: sealing (enc) or opening. The secret is
 * kept (KeyUpdate derives the next from it) and wiped by fini. */
struct tls_rec {
	struct evp_cipher_ctx_st *ctx;
	uint16_t cipher;
	bool enc;
	uint8_t secret_len;
	uint8_t secret[TLS13_SECRET_MAX];
	uint8_t iv[12];
	uint64_t seq; /* of the next record */
};

/* 0, -EINVAL (suite, secret) or -ENOMEM. */
int tls_rec_init(struct tls_rec *r, bool enc, uint16_t cipher, const uint8_t *secret, size_t len,
		 uint64_t seq);
void tls_rec_fini(struct tls_rec *r);
/* The next generation of keys (after a KeyUpdate sent or received). */
int tls_rec_update(struct tls_rec *r);

/* One record of type carrying n bytes (n <= 2^14) of the pieces, from
 * off bytes into the first, sealed into out, which has TLS_REC_SIZE(n)
 * bytes. 0 or -EIO. */
int tls_rec_seal(struct tls_rec *r, uint8_t type, const struct iovec *iov, int niov, size_t off,
		 size_t n, uint8_t *out);

/* The record header at hdr: 0 when it may be opened (its body, of *len
 * bytes, follows), -EPROTO when not (wrong type or version, a length
 * outside 17..2^14+256): the session cannot go on. */
int tls_rec_check_header(const uint8_t *hdr, size_t *len);

/* Opens the record at rec (header and body, TLS_REC_HDR + len bytes)
 * into out, which has room for len - TLS_REC_TAG bytes (out may be
 * rec + TLS_REC_HDR: in place). On success the content is out[0, *n),
 * of inner type *type, with the padding and the type byte beyond it.
 * -EBADMSG when authentication fails, -EPROTO for an inner plaintext
 * that is all padding or too long. */
int tls_rec_open(struct tls_rec *r, const uint8_t *rec, size_t len, uint8_t *out, size_t *n,
		 uint8_t *type);

#endif
