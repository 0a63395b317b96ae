/* The cryptography of DH-HMAC-CHAP (NVMe Base 2.x, 8.3.4.5), over
 * OpenSSL 3's EVP interfaces: the hashes by HashID, the key transformation,
 * the augmented challenge, the two responses and the FFDHE session. The
 * protocol (nvme/auth.c) calls these; nothing here knows a queue. */
#ifndef NVMG_AUTH_CRYPTO_H
#define NVMG_AUTH_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/secret.h"

#define NVMG_AUTH_MAX_HL 64       /* SHA-512 */
#define NVMG_AUTH_MAX_DHV 1024    /* ffdhe8192's public value and shared secret */

/* Digest length of HashID 1..3 (32, 48, 64), 0 for any other. */
size_t nvmg_auth_hash_len(uint8_t hash);
/* "hmac(sha256)" etc. for HashID 1..3, NULL otherwise; and back (0 if none). */
const char *nvmg_auth_hash_name(uint8_t hash);
uint8_t nvmg_auth_hash_id(const char *name);
/* "null", "ffdhe2048" .. "ffdhe8192" for group 0..5, NULL otherwise; and back
 * (-1 if none). */
const char *nvmg_auth_dhgroup_name(uint8_t gid);
int nvmg_auth_dhgroup_id(const char *name);
/* Bytes of a group's public value and shared secret (its prime's); 0 for
 * null or an unknown group. */
size_t nvmg_auth_dhgroup_len(uint8_t gid);

/* The transformed key (8.3.4.5.7): the key itself for HH 00, else
 * HMAC-H(key, nqn || "NVMe-over-Fabrics") with the key's own hash H.
 * out holds NVMG_SECRET_MAX bytes; *out_len is set. 0 or -EINVAL. */
int nvmg_auth_transform_key(const struct nvmg_secret *key, const char *nqn, uint8_t *out,
			    size_t *out_len);
/* The augmented challenge when a DH group is used:
 * HMAC-H(H(session key), challenge), hl bytes into out. 0 or -EINVAL. */
int nvmg_auth_augmented_challenge(uint8_t hash, const uint8_t *skey, size_t skey_len,
				  const uint8_t *chal, uint8_t *out);
/* A response: HMAC-H(key, chal || le32 seq || le16 tid || SC_C(0) || who ||
 * nqn1 || 0x00 || nqn2), where who is "HostHost" (the host's response,
 * nqn1 = host NQN) or "Controller" (ours, nqn1 = subsystem NQN). chal is the
 * (possibly augmented) challenge of the hash's length. 0 or -EINVAL. */
int nvmg_auth_response(uint8_t hash, const uint8_t *key, size_t key_len, const uint8_t *chal,
		       uint32_t seq, uint16_t tid, const char *who, const char *nqn1,
		       const char *nqn2, uint8_t *out);

/* A fresh FFDHE key pair in a named group (1..5). NULL on failure. */
struct nvmg_dh;
struct nvmg_dh *nvmg_dh_new(uint8_t gid);
void nvmg_dh_free(struct nvmg_dh *dh);
/* Our public value, big-endian, zero-padded to nvmg_auth_dhgroup_len(). */
int nvmg_dh_public(const struct nvmg_dh *dh, uint8_t *out, size_t len);
/* The shared secret with the peer's public value (len bytes, the group's
 * length), zero-padded like Linux's: 0, or -EINVAL for a value that is not a
 * valid public key of the group (0, 1, p-1 or beyond p). */
int nvmg_dh_shared(const struct nvmg_dh *dh, const uint8_t *peer, size_t len, uint8_t *out);

/* Random bytes for challenges and sequence numbers: 0 or -EIO. */
int nvmg_auth_random(void *out, size_t len);

#endif
