/* The two secret formats nvme-cli prints and the Linux host and target
 * read, parsed in one place for the config, the core and the tools:
 *   DHHC-1:HH:<base64 of key || CRC-32>:         nvme gen-dhchap-key
 *   NVMeTLSkey-1:HH:<base64 of PSK || CRC-32>:   nvme gen-tls-key
 * HH names the hash the secret is to be transformed with (00 = none) and
 * the CRC-32 (IEEE, little-endian) guards against a mistyped key. A
 * secret is checked, not trusted: prefix, hash, length, base64 and CRC. */
#ifndef NVMG_SECRET_H
#define NVMG_SECRET_H

#include <stddef.h>
#include <stdint.h>

#define NVMG_SECRET_MAX 64

struct nvmg_secret {
	uint8_t hash;                 /* HH: 0 none, 1 SHA-256, 2 SHA-384, 3 SHA-512 */
	uint8_t key[NVMG_SECRET_MAX];
	size_t len;                   /* bytes of key */
};

/* A DH-HMAC-CHAP secret: HH 00..03, a 32, 48 or 64-byte key. Returns 0 or
 * -EINVAL with the reason in err (no key material in it). */
int nvmg_parse_dhchap_secret(const char *s, struct nvmg_secret *out, char *err, size_t errlen);
/* A TLS PSK in the interchange format: HH 01 with a 32-byte PSK or 02 with
 * a 48-byte one. Returns 0 or -EINVAL with the reason in err. */
int nvmg_parse_tls_psk(const char *s, struct nvmg_secret *out, char *err, size_t errlen);
/* Wipe a secret's bytes (explicit_bzero: not optimised away). */
void nvmg_secret_wipe(struct nvmg_secret *s);

#endif
