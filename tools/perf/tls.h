/* nvmegate-perf's TLS 1.3 PSK client (TP 8011), the host side of
 * net/tcp_tls.c: the PSK and identity derived from the configured key as
 * libnvme inserts them into the Linux host's keyring (net/tcp_psk.h),
 * offered to OpenSSL, and the blocking socket I/O of the setup path.
 * The records go through the channel the target uses too
 * (net/tls_chan.h); the engine drives it with io_uring. */
#ifndef NVMG_PERF_TLS_H
#define NVMG_PERF_TLS_H

#include <stddef.h>
#include <stdint.h>
#include "net/tls_chan.h"

struct perf_opts;

/* Blocking handshake on fd (its timeouts apply). NULL on failure, reported. */
struct tls_chan *perf_tls_connect(int fd, const struct perf_opts *o, uint16_t qid);
void perf_tls_free(struct tls_chan *ch);
/* Blocking, for the setup path: n bytes into records (flushed) and out,
 * or n bytes of plaintext in. 0 or -1 (reported by the caller). */
int perf_tls_send(struct tls_chan *ch, int fd, const void *p, size_t n);
int perf_tls_recv(struct tls_chan *ch, int fd, void *p, size_t n);

#endif
