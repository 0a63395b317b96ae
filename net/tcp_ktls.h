/* Kernel TLS for an NVMe/TCP connection whose TLS 1.3 handshake OpenSSL
 * did (tcp_tls.c). Once the session is established, the application
 * traffic secrets OpenSSL derived (learnt through its key log callback)
 * become AES-GCM keys and IVs that setsockopt(TLS_TX / TLS_RX) hands to
 * the socket; from then on the kernel seals and opens the records and the
 * connection sends and receives plaintext like a plain one: no copy into
 * and out of OpenSSL, and the kernel may batch records as it batches
 * segments. Each direction switches on its own, at a record boundary,
 * with the record sequence number OpenSSL reached; where the kernel has
 * no "tls" ULP (this build machine) OpenSSL keeps the record layer. */
#ifndef NVMG_TCP_KTLS_H
#define NVMG_TCP_KTLS_H

#include <stddef.h>
#include <stdint.h>

#define KTLS_SECRET_MAX 48 /* SHA-384 */

/* One direction's traffic keys, ready for the socket. */
struct tcp_ktls_keys {
	uint16_t cipher;  /* 0x1301 TLS_AES_128_GCM_SHA256, 0x1302 _256_GCM_SHA384 */
	uint8_t key[32];
	uint8_t iv[12];
	uint8_t key_len;
};

/* The key and IV of RFC 8446 7.3 from a traffic secret of the suite's
 * hash (HKDF-Expand-Label "key" and "iv" with an empty context).
 * 0, or -EINVAL for an unknown suite or a secret of the wrong length. */
int tcp_ktls_derive(uint16_t cipher, const uint8_t *secret, size_t len, struct tcp_ktls_keys *k);

/* Attach the "tls" ULP to fd (once; calling again is harmless). 0, or
 * -errno: -ENOENT/-ENOPROTOOPT/-EOPNOTSUPP mean the kernel has no
 * kernel TLS. */
int tcp_ktls_attach(int fd);

/* Hand one direction's keys to fd (tx: TLS_TX, else TLS_RX), whose next
 * record in that direction has sequence number seq. 0 or -errno. */
int tcp_ktls_set(int fd, int tx, const struct tcp_ktls_keys *k, uint64_t seq);

/* A key log line OpenSSL gave ("CLIENT_TRAFFIC_SECRET_0 <random> <hex>"):
 * the secret of label into out (up to KTLS_SECRET_MAX bytes). Its length,
 * or 0 when the line is another label or malformed. */
size_t tcp_ktls_keylog_secret(const char *line, const char *label, uint8_t *out);

#endif
