/* NVMe/TCP TLS PSKs (NVMe/TCP 1.1 section 3.6.1.3, TP 8011 and TP 8018):
 * the PSK identity a host sends in its ClientHello, and the keys derived
 * from the configured PSK (the `nvme gen-tls-key` interchange key):
 *
 *   retained = HKDF-Expand-Label(HKDF-Extract(0, configured), "HostNQN",
 *                                hostnqn, L)
 *   digest   = base64(HMAC(retained, "<hostnqn> <subnqn> NVMe-over-Fabrics"))
 *   identity = "NVMe0R<hh> <hostnqn> <subnqn>"            (version 0)
 *            | "NVMe1R<hh> <hostnqn> <subnqn> <digest>"   (version 1)
 *   TLS PSK  = HKDF-Expand-Label(HKDF-Extract(0, retained), "nvme-tls-psk",
 *                                v0: identity | v1: "<hh> <digest>", L)
 *
 * with the hash <hh> of the key (01 SHA-256, 02 SHA-384) and L its length.
 * Two spellings of HKDF-Expand-Label's info are in use:
 *  - LIBNVME: what libnvme up to 1.15 computes (nvme-cli 2.x `tls-key
 *    --insert`, `check-tls-key --insert`, `connect --tls-key`, so what a
 *    Linux 6.12 host's .nvme keyring holds): little-endian u16 L, then
 *    "tls13 " label context with no length bytes (its vectors:
 *    test_data_identity_compat in libnvme's test/psk.c);
 *  - RFC8446: the HkdfLabel structure of RFC 8446 7.1 (SPDK, libnvme
 *    1.16+ by default, Linux 6.13+'s secure concatenation).
 * A version 1 identity's digest tells them apart (it is computed from the
 * retained PSK); a version 0 one cannot, and is taken as LIBNVME.
 *
 * Part of the framing layer: the target and nvmegate-perf both use it. */
#ifndef NVMG_TCP_PSK_H
#define NVMG_TCP_PSK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/secret.h"
#include "nvme/spec.h"

#define NVMG_PSK_MAX 48                /* SHA-384 */
#define NVMG_PSK_DIGEST_MAX 65         /* base64 of 48 bytes, NUL */
#define NVMG_PSK_ID_MAX (2 * NVME_NQN_LENGTH + NVMG_PSK_DIGEST_MAX + 16)

enum nvmg_psk_kdf { NVMG_PSK_KDF_LIBNVME, NVMG_PSK_KDF_RFC8446 };

struct nvmg_psk_id {
	unsigned version;              /* 0 or 1 */
	uint8_t hash;                  /* 1 SHA-256, 2 SHA-384 */
	char hostnqn[NVME_NQN_LENGTH];
	char subnqn[NVME_NQN_LENGTH];
	char digest[NVMG_PSK_DIGEST_MAX]; /* version 1 */
};

/* Parse an identity of len bytes (not NUL-terminated). 0 or -EINVAL. Only
 * retained ('R') identities: generated ones ('G') come from DH-HMAC-CHAP's
 * secure concatenation, which this target does not offer. */
int nvmg_psk_id_parse(const void *identity, size_t len, struct nvmg_psk_id *out);
/* The identity string of id (digest used for version 1). Returns its
 * length, or -ENOSPC. */
int nvmg_psk_id_format(const struct nvmg_psk_id *id, char *buf, size_t len);

/* The steps, for tests and both ends. key->len bytes out; 0 or -EINVAL. */
int nvmg_psk_retained(const struct nvmg_secret *key, const char *hostnqn, enum nvmg_psk_kdf kdf,
		      uint8_t *retained);
int nvmg_psk_digest(uint8_t hash, const uint8_t *retained, size_t len, const char *hostnqn,
		    const char *subnqn, char digest[NVMG_PSK_DIGEST_MAX]);
int nvmg_psk_tls(const struct nvmg_psk_id *id, enum nvmg_psk_kdf kdf, const uint8_t *retained,
		 size_t len, uint8_t *tls_psk);

/* Target side: the TLS PSK for a host's identity, given that host's
 * configured key. -EACCES when the identity does not belong to the key
 * (wrong hash, digest of another key or other NQNs). *len is key->len. */
int nvmg_psk_accept(const struct nvmg_secret *key, const struct nvmg_psk_id *id,
		    uint8_t tls_psk[NVMG_PSK_MAX], size_t *len);
/* Host side: fill id (version as asked) and the TLS PSK for hostnqn and
 * subnqn, as libnvme inserts it into the keyring. 0 or -EINVAL. */
int nvmg_psk_connect(const struct nvmg_secret *key, const char *hostnqn, const char *subnqn,
		     unsigned version, enum nvmg_psk_kdf kdf, struct nvmg_psk_id *id,
		     uint8_t tls_psk[NVMG_PSK_MAX]);

#endif
