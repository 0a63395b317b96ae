/* Kernel TLS for an NVMe/TCP connection whose TLS 1.3 handshake OpenSSL
 * did (tcp_tls.c). Once the session is established, the application
 * traffic secrets OpenSSL derived (learnt through its key log callback)
 * become AES-GCM keys and IVs that setsockopt(TLS_TX / TLS_RX) hands to
 * the socket; from then on the kernel seals and opens the records and the
 * connection sends and receives plaintext like a plain one: no copy into
 * and out of OpenSSL, and the kernel may batch records as it batches
 * segments. Each direction switches on its own, at a record boundary,
 * with the record sequence number OpenSSL reached; where the kernel has
 * no "tls" ULP (this build machine) our own record layer takes over
 * (tls_chan.h). */
#ifndef NVMG_TCP_KTLS_H
#define NVMG_TCP_KTLS_H

#include <stdint.h>
#include "net/tls_rec.h"

/* Attach the "tls" ULP to fd (once; calling again is harmless). 0, or
 * -errno: -ENOENT/-ENOPROTOOPT/-EOPNOTSUPP mean the kernel has no
 * kernel TLS. */
int tcp_ktls_attach(int fd);

/* Hand one direction's keys to fd (tx: TLS_TX, else TLS_RX), whose next
 * record in that direction has sequence number seq. 0 or -errno. */
int tcp_ktls_set(int fd, int tx, const struct tls13_keys *k, uint64_t seq);

#endif
